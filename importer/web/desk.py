"""The page's state: the file chosen, its check against the webinar, the import and its result,
and the undo of that import or the export of a webinar's registrant list.

One person works at one page, so there is one :class:`Desk`: one file, one check, and one import,
undo or export at a time. Each of them takes a while, so each runs as a :class:`Job`, in a thread
of its own with its own event loop, as the Python API runs an import, while the page keeps
answering and asks how far it has got. A check and an import are calls of
:func:`importer.jobs.register.register`, an undo of :func:`importer.jobs.cancel.undo`, an export
of :func:`importer.jobs.export.export`; the desk only starts them, keeps what they said and writes
their reports from their outcomes.

Everything the page is given or makes (the uploaded files, their reports, templates) stays in one
folder that only the user can open. The last import is remembered there, so that one stopped by
closing the page, stopping the server or a quota is offered again at the next start: the journal
then makes sure that nobody is registered twice.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import functools
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from importer import report
from importer.errors import Busy, ImporterError, InputError, TooLarge
from importer.events import Brief, Listener, PlanView, Silent, StopSignal
from importer.files import private_folder, write_atomically
from importer.goto.connection import Access
from importer.goto.session import DEFAULT_RATE
from importer.jobs import cancel as cancelling
from importer.jobs import export as exporting
from importer.jobs import journals as keeping
from importer.jobs import register as registering
from importer.jobs.common import Done, Options
from importer.model import Status
from importer.progress import ProgressReport
from importer.read import reader, settings
from importer.read.columns import fold
from importer.report.cancellations import Cancellations
from importer.report.names import beside
from importer.report.outcome import Outcome, attention_path, build, default_path, write_attention
from importer.report.registrants import Exported

#: the largest file the page takes, in bytes (50 MB)
MAX_UPLOAD = 50_000_000
#: how to carry on after a stop, in the page's words (the report's Summary says it)
RESUME_HINT = (
    "choose the same file in g2w-import ui and press Continue (nobody is registered twice)"
)
#: how to carry on, in a pending row of a report made on the page
AGAIN = "press Continue in g2w-import ui"
#: the same two for an undo made on the page
UNDO_RESUME_HINT = (
    "choose the same file in g2w-import ui and press Undo this import again (nobody is "
    "cancelled twice)"
)
UNDO_AGAIN = "press Undo this import again in g2w-import ui"
#: the page's own folders for the files chosen on it (with their reports), and the lists it
#: exports
UPLOADS, EXPORTS = keeping.PAGE_COPIES
#: characters that no file name gets, whatever system it came from
_UNSAFE = frozenset('<>:"/\\|?*')
_LAST_RUN = "last-run.json"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


BUSY = "an import is under way: stop it, or wait until it is over"
BUSY_UNDO = "an undo is under way: stop it, or wait until it is over"
BUSY_EXPORT = "the registrant list is being read: stop it, or wait until it is over"

D = TypeVar("D", bound=Done)
#: a job of :mod:`importer.jobs`, its source given: what a :class:`Job` runs
Work = Callable[[Access, Options, Listener, StopSignal], Coroutine[Any, Any, D]]


def default_folder() -> Path:
    """The page's folder in the user's data folder (``~/.local/share/g2w-import/ui`` on Linux)."""
    return keeping.page_folder()


def too_large_message(name: str, size: int) -> str:
    """Why a file is refused for its size, and what to do instead."""
    return (
        f"{name}: is {size / 1e6:,.1f} MB, and the page takes files up to "
        f"{MAX_UPLOAD / 1e6:,.0f} MB; split the list into smaller files, or use "
        "g2w-import register in a terminal"
    )


def upload_name(name: str) -> str:
    """The name an uploaded file is kept under: no folder, nothing unsafe, a known suffix."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in _UNSAFE).strip().lstrip(".")
    suffix = Path(base).suffix.lower()
    if suffix not in reader.CSV_SUFFIXES | reader.EXCEL_SUFFIXES:
        raise InputError(
            f"{base or 'the file'}: {reader.unreadable_kind(suffix)}; save the list as .xlsx or "
            ".csv and choose it again"
        )
    return (Path(base).stem[:100] or "list") + suffix


class PageListener(Silent):
    """What a run tells the page: its notes, its plans, and its progress, safe across threads."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.plans: list[PlanView | Brief] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.total = 0
        self.started_at: float | None = None
        self.sending = False

    def note(self, message: str) -> None:
        with self.lock:
            self.notes.append(message)

    def plan(self, plan: PlanView | Brief) -> None:
        with self.lock:
            self.plans.append(plan)

    def confirm(self, question: str) -> bool:
        return True  # the Register button was the question

    def started(self, total: int) -> None:
        with self.lock:
            self.total, self.started_at, self.sending = total, time.monotonic(), True

    def settled(self, status: str, line: int) -> None:
        with self.lock:
            self.counts[status] += 1

    def finished(self) -> None:
        with self.lock:
            self.sending = False

    def progress(self) -> ProgressReport:
        """How far the sending has got, now."""
        with self.lock:
            done = sum(self.counts.values())
            elapsed = time.monotonic() - self.started_at if self.started_at is not None else 0.0
            return ProgressReport(done, self.total, collections.Counter(self.counts), elapsed)


@dataclass(frozen=True)
class Upload:
    """A file the page was given, kept in a folder of its own inside the page's folder."""

    path: Path
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def report_path(self) -> Path:
        return default_path(self.path)

    @property
    def attention_path(self) -> Path:
        return attention_path(self.path, self.report_path)


class Job(Generic[D]):
    """A job of :mod:`importer.jobs` in a thread of its own, with its own event loop: a check or
    an import (``register``), an undo, or an export; its outcome is a ``D``."""

    def __init__(
        self,
        work: Work[D],
        upload: Upload | None,
        keys: tuple[str, ...],
        *,
        dry_run: bool,
        what: str = "import",
        then: Callable[[Job[D]], None] | None = None,
        fallback: str | None = None,
        report_to: Callable[[D], Path] | None = None,
    ) -> None:
        #: the job, called with the access, the options, the listener and the stop
        self.work = work
        #: the file it reads (None for an export)
        self.upload = upload
        #: the webinars asked for; empty: as the file says
        self.keys = keys
        #: the webinar chosen on the page, for a file that names none of its own
        self.fallback = fallback
        self.dry_run = dry_run
        #: the job in a word, for the line that says it failed
        self.what = what
        self.listener = PageListener()
        self.stop = StopSignal()
        self.outcome: D | None = None
        #: what to do once the job is over, in its thread
        self.then = then
        #: where the report of an undo or an export goes, from its outcome (an import's goes
        #: beside the upload)
        self.report_to = report_to
        #: the report's table, the report written, and the rows needing attention (if any)
        self.built: report.Report | None = None
        self.report_file: Path | None = None
        self.attention_file: Path | None = None
        #: the one line that says why the job could not run (a file that cannot be used)
        self.error: str | None = None
        #: what writing the report said (an old report kept aside, a report written elsewhere)
        self.report_notes: list[str] = []
        self.done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, access: Access, options: Options) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(access, options), name="g2w-import-page", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job is over; False if it is not within ``timeout`` seconds."""
        return self.done.wait(timeout)

    @property
    def busy(self) -> bool:
        """Whether the job is under way."""
        return not self.done.is_set()

    @property
    def stopping(self) -> bool:
        return self.stop.is_set() and not self.done.is_set()

    def _run(self, access: Access, options: Options) -> None:
        try:
            if self.fallback is not None and not self.keys:
                self.keys = self._keys_or_fallback(self.fallback)
                options = dataclasses.replace(options, webinar_keys=self.keys)
            outcome = asyncio.run(self.work(access, options, self.listener, self.stop))
            if not self.dry_run:
                self._write(outcome)
            self.outcome = outcome
        except ImporterError as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug must not leave the page waiting for ever
            self.error = (
                f"the {self.what} failed unexpectedly ({type(exc).__name__}); see the terminal"
            )
            raise
        finally:
            try:
                if self.then is not None:
                    self.then(self)
            finally:
                self.done.set()

    def _keys_or_fallback(self, fallback: str) -> tuple[str, ...]:
        """The webinars to check the file against: none, so as the file says, when it names
        them itself (its Settings sheet, a webinarKey column); else ``fallback``, the page's
        choice (also for a file that cannot be read, which the check then says)."""
        assert self.upload is not None
        try:
            table = reader.read(self.upload.path)
            named = settings.webinar_keys((), table)
        except ImporterError:
            return (fallback,)
        if named or any(fold(h) == "webinarkey" for h in table.headers):
            return ()
        return (fallback,)

    def _write(self, outcome: D) -> None:
        """The job's report: an import's beside the upload with its needs-attention file, as the
        command writes them, under the file's own name; an undo's or an export's where
        ``report_to`` says."""
        if not isinstance(outcome, Outcome):
            assert self.report_to is not None
            self.report_file = outcome.write(self.report_to(outcome), self.report_notes.append)
            return
        assert self.upload is not None
        built = build(outcome, source_name=self.upload.name)
        self.built = built
        self.report_file = report.write(
            built, self.upload.report_path, self.report_notes.append, outcome.draft
        )
        self.attention_file = write_attention(
            built, self.upload.attention_path, note=self.report_notes.append
        )


def blocker(check: Job[Outcome] | None) -> str | None:
    """Why the checked file cannot be registered yet, in a line; None when it can."""
    if check is None:
        return "Choose the list of people first."
    if not check.done.is_set():
        return "The file is being checked."
    if check.error is not None:
        return check.error
    outcome = check.outcome
    assert outcome is not None
    if outcome.stopped is not None:
        return f"The check stopped: {outcome.stopped}."
    if any(not part.key for part in outcome.webinars):
        return "Choose the webinar: the rows are checked against its own form."
    if not outcome.checked_against_webinar:
        return (
            "Sign in first: the rows are checked against the webinar's own form before "
            "anything is sent."
        )
    if not any(row.status is Status.PENDING for row in outcome.rows):
        return "No row can be sent: correct the rows listed and choose the file again."
    return None


@dataclass
class Desk:
    """One person's page: the file, its latest check, the latest import, and the latest undo
    of that import and export of a registrant list."""

    access: Access
    folder: Path = field(default_factory=default_folder)
    rate: float = DEFAULT_RATE
    upload: Upload | None = None
    check: Job[Outcome] | None = None
    run: Job[Outcome] | None = None
    #: the upload is the file of an import that did not finish, chosen again at start
    restored: bool = False
    #: the undo of the import shown: first its plan (a dry run), then, once confirmed, the undo
    undo: Job[Cancellations] | None = None
    #: the latest export of a webinar's registrant list
    export: Job[Exported] | None = None
    #: days the page keeps the files given to it and made by it (0: until removed by hand)
    keep_days: int = field(default_factory=keeping.keep_days_from_environment)
    #: the webinars of the import restored at start
    _restored_keys: tuple[str, ...] = field(default=(), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        private_folder(self.folder)
        self.tidy()
        self._restore()

    def tidy(self, now: float | None = None) -> list[Path]:
        """Remove the uploads (with their reports) and exported lists older than
        :attr:`keep_days`, except the file of an import that did not finish; what was removed.
        """
        if self.keep_days == 0:
            return []
        limit = (time.time() if now is None else now) - self.keep_days * 86400
        unfinished = self._last_run()
        keep = unfinished[0].parent if unfinished is not None else None
        removed = []
        for each in (e for kind in keeping.PAGE_COPIES for e in _listed(self.folder / kind)):
            try:
                if each == keep or each.is_symlink() or each.lstat().st_mtime >= limit:
                    continue
                if each.is_dir():
                    shutil.rmtree(each)
                else:
                    each.unlink()
            except OSError:
                continue  # in use, or not the page's to remove: tried again at the next start
            removed.append(each)
        return removed

    @property
    def sending(self) -> bool:
        """Whether an import, an undo or an export is under way: one at a time."""
        return self._busy() is not None

    @property
    def undoable(self) -> tuple[str, ...]:
        """The webinars whose registrations Undo is offered for: those of the import shown,
        once it is over (finished or stopped), or of the import restored at start."""
        if self.run is not None:
            return () if self.run.busy else self.run.keys
        return self._restored_keys if self.restored and self.upload is not None else ()

    async def receive(
        self,
        name: str,
        chunks: AsyncIterator[bytes],
        length: int | None = None,
        *,
        webinar: str | None = None,
    ) -> None:
        """Keep an uploaded file and check it: ``name`` as the person's computer calls it,
        ``length`` as the request announced it (a file too large is refused before it is read),
        ``webinar`` the one chosen on the page, for a file that names none itself.
        """
        kept = upload_name(name)
        if length is not None and length > MAX_UPLOAD:
            raise TooLarge(too_large_message(kept, length))
        self._refuse_if_busy()
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = private_folder(
            private_folder(self.folder / UPLOADS) / f"{stamp}-{secrets.token_hex(3)}"
        )
        path = folder / kept
        size = 0
        try:
            with os.fdopen(os.open(path, _NEW_FILE, 0o600), "wb") as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise TooLarge(too_large_message(kept, size))
                    handle.write(chunk)
            with self._lock:
                self._refuse_if_busy()  # Register was pressed while the file was arriving
                self.upload, self.restored = Upload(path, size), False
                job = self._new_check((), fallback=webinar)
        except BaseException:
            path.unlink(missing_ok=True)
            folder.rmdir()
            raise
        job.start(self.access, self._options((), dry_run=True))

    def start_check(self, keys: tuple[str, ...]) -> Job[Outcome]:
        """Check the file against the webinars ``keys`` (none: as the file says): a dry run."""
        with self._lock:
            if self.upload is None:
                raise InputError("no file chosen yet; choose the list of people first")
            self._refuse_if_busy()
            job = self._new_check(keys)
        job.start(self.access, self._options(keys, dry_run=True))
        return job

    def _new_check(self, keys: tuple[str, ...], fallback: str | None = None) -> Job[Outcome]:
        """A check of the upload that replaces the last one (called with the lock held)."""
        assert self.upload is not None
        if self.check is not None:
            self.check.stop.set()  # an older check of another choice: not needed any more
        self.check = _registering(self.upload, keys, dry_run=True, fallback=fallback)
        self.run = None  # a new plan: the last import's report stays in its folder
        self.undo = None  # and so does its undo's
        return self.check

    def start_import(self) -> Job[Outcome]:
        """Import the file for the webinars it was last checked against."""
        with self._lock:
            check = self.check
            if self.run is not None and self.run.busy:
                raise Busy("an import is under way already")
            self._refuse_if_busy()
            why = blocker(check)
            if why is not None or check is None or check.outcome is None:
                raise InputError(why or "choose the list of people first")
            assert check.upload is not None
            keys = check.keys or tuple(part.key for part in check.outcome.webinars)
            job = self.run = _registering(check.upload, keys, dry_run=False, then=self._ended)
            self.undo = None
        self._remember(check.upload, keys, finished=False)
        job.start(self.access, self._options(keys, dry_run=False))
        return job

    def start_undo(self, key: str | None, *, confirmed: bool) -> Job[Cancellations]:
        """Undo the import shown (or restored) for the webinar ``key`` (None: its only one), for
        the people of its file alone: first its plan, a dry run that changes nothing; then,
        ``confirmed``, the undo itself, of the webinar whose plan was shown last."""
        with self._lock:
            self._refuse_if_busy()
            upload, keys = self.upload, self.undoable
            if upload is None or not keys:
                raise InputError("there is no import to undo here; register the list first")
            if key is None and len(keys) > 1:
                raise InputError(
                    "this import was for several webinars; choose the one to undo, then press "
                    "Undo this import"
                )
            key = key or keys[0]
            if key not in keys:
                raise InputError(
                    f"this import was not for webinar {key}; choose one of its webinars to undo"
                )
            plan = self.undo  # the plan shown, which the person confirmed
            if confirmed and (
                plan is None or not plan.dry_run or plan.outcome is None or plan.keys != (key,)
            ):
                raise InputError(
                    "press Undo this import first: it shows what will be cancelled, and nothing "
                    "is cancelled until you confirm"
                )
            several = len(keys) > 1

            def report_to(done: Cancellations) -> Path:
                """Beside the upload, ``guests-undone.xlsx``; with the webinar's key when the
                import was for several, so that each undo keeps its own report."""
                if several:
                    return beside(upload.path, f"{key}-undone.xlsx")
                return upload.path.with_name(done.default_report.name)

            job = self.undo = Job(
                functools.partial(cancelling.undo, upload.path),
                upload,
                (key,),
                dry_run=not confirmed,
                what="undo",
                report_to=report_to,
            )
        job.start(self.access, self._undo_options(key, dry_run=not confirmed))
        return job

    def keep(self) -> None:
        """Forget the undo's plan shown, for nothing is to be cancelled after all."""
        with self._lock:
            if self.undo is not None and self.undo.dry_run and not self.undo.busy:
                self.undo = None

    def start_export(self, key: str | None) -> Job[Exported]:
        """Export everyone registered for the webinar ``key`` (None: the one the file was
        checked against or imported for), with their join URLs and answers, into the page's
        folder."""
        with self._lock:
            self._refuse_if_busy()
            key = key or self._the_webinar()
            job = self.export = Job(
                functools.partial(exporting.export, None),
                None,
                (key,),
                dry_run=False,
                what="export",
                report_to=lambda done: (
                    private_folder(self.folder / EXPORTS) / done.default_report.name
                ),
            )
        job.start(self.access, Options(webinar_keys=(key,), rate=self.rate, answers=True))
        return job

    def _the_webinar(self) -> str:
        """The one webinar of the import shown, or else of the latest check."""
        keys: tuple[str, ...] = ()
        if self.run is not None:
            keys = self.run.keys
        elif self.check is not None and not self.check.busy:
            outcome = self.check.outcome
            keys = self.check.keys or (
                tuple(part.key for part in outcome.webinars if part.key) if outcome else ()
            )
        if len(keys) != 1:
            raise InputError(
                "choose the webinar first: its list of everyone registered is what is downloaded"
            )
        return keys[0]

    def stop(self) -> None:
        """Stop the import, undo or export under way gracefully, as Ctrl-C does: the calls
        under way finish."""
        for job in (self.run, self.undo, self.export):
            if job is not None and job.busy:
                job.stop.set()

    def close(self, timeout: float = 60.0) -> None:
        """Stop whatever runs and wait for it: the journal and the report are then complete."""
        jobs = [job for job in (self.check, self.run, self.undo, self.export) if job is not None]
        for job in jobs:
            job.stop.set()
        for job in jobs:
            job.wait(timeout)

    def _busy(self) -> str | None:
        """What is under way, in the words that refuse anything else meanwhile; None when
        nothing is (a check may be replaced at any time: it changes nothing)."""
        for job, why in ((self.run, BUSY), (self.undo, BUSY_UNDO), (self.export, BUSY_EXPORT)):
            if job is not None and job.busy:
                return why
        return None

    def _refuse_if_busy(self) -> None:
        why = self._busy()
        if why is not None:
            raise Busy(why)

    def _options(self, keys: tuple[str, ...], *, dry_run: bool) -> Options:
        return Options(
            webinar_keys=keys,
            rate=self.rate,
            dry_run=dry_run,
            resume_hint=RESUME_HINT,
            again=AGAIN,
            draft_report=not dry_run,  # the report is an XLSX file (Upload.report_path)
        )

    def _undo_options(self, key: str, *, dry_run: bool) -> Options:
        return Options(
            webinar_keys=(key,),
            rate=self.rate,
            dry_run=dry_run,
            resume_hint=UNDO_RESUME_HINT,
            again=UNDO_AGAIN,
        )

    def _ended(self, job: Job[Outcome]) -> None:
        """Once an import is over: remember whether it finished, for the next start."""
        outcome = job.outcome
        finished = outcome is not None and not any(
            row.status is Status.PENDING for row in outcome.rows
        )
        assert job.upload is not None
        self._remember(job.upload, job.keys, finished=finished)

    def _remember(self, upload: Upload, keys: tuple[str, ...], *, finished: bool) -> None:
        text = json.dumps({"file": str(upload.path), "webinars": list(keys), "finished": finished})
        write_atomically(self.folder / _LAST_RUN, lambda temp: _write_text(temp, text))

    def _last_run(self) -> tuple[Path, tuple[str, ...]] | None:
        """The file and webinars of the last import, if it did not finish and is still here."""
        try:
            last = json.loads((self.folder / _LAST_RUN).read_text("utf-8"))
            path, keys, finished = Path(last["file"]), tuple(last["webinars"]), last["finished"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if finished or not path.is_file() or self.folder not in path.parents:
            return None
        return path, tuple(str(key) for key in keys)

    def _restore(self) -> None:
        """Choose the file of an import that did not finish again, checked as it was."""
        last = self._last_run()
        if last is None:
            return
        path, self._restored_keys = last
        self.upload, self.restored = Upload(path, path.stat().st_size), True
        self.start_check(self._restored_keys)


def _listed(folder: Path) -> list[Path]:
    """What ``folder`` holds; nothing when it is not there."""
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _registering(
    upload: Upload,
    keys: tuple[str, ...],
    *,
    dry_run: bool,
    then: Callable[[Job[Outcome]], None] | None = None,
    fallback: str | None = None,
) -> Job[Outcome]:
    """A check (a dry run) or an import of ``upload`` for the webinars ``keys``."""
    return Job(
        functools.partial(registering.register, upload.path),
        upload,
        keys,
        dry_run=dry_run,
        then=then,
        fallback=fallback,
    )


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")
