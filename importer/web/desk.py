"""The page's state: the file chosen, its check against the webinar, the import and its result.

One person works at one page, so there is one :class:`Desk`: one file, one check and one import
at a time. Checking a file (a dry run) and importing it take a while, so each runs in a thread
of its own with its own event loop, as the Python API runs an import, while the page keeps
answering and asks how far it has got. Every check and import is a call of
:func:`importer.jobs.register.run`; the desk only starts them, keeps what they said and writes the
report from the :class:`~importer.report.outcome.Outcome`.

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
import json
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from importer import report
from importer.errors import Busy, ImporterError, InputError, TooLarge
from importer.events import Brief, PlanView, Silent, StopSignal
from importer.files import write_atomically
from importer.goto.connection import Access
from importer.goto.session import DEFAULT_RATE
from importer.jobs import register as registering
from importer.jobs.common import Options
from importer.model import Status
from importer.progress import ProgressReport
from importer.read import reader, settings
from importer.read.columns import fold
from importer.report.outcome import Outcome, attention_path, build, default_path, write_attention

#: the largest file the page takes, in bytes (50 MB)
MAX_UPLOAD = 50_000_000
#: how to carry on after a stop, in the page's words (the report's Summary says it)
RESUME_HINT = (
    "choose the same file in g2w-import ui and press Continue (nobody is registered twice)"
)
#: how to carry on, in a pending row of a report made on the page
AGAIN = "press Continue in g2w-import ui"
#: characters that no file name gets, whatever system it came from
_UNSAFE = frozenset('<>:"/\\|?*')
_LAST_RUN = "last-run.json"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


BUSY = "an import is under way: stop it, or wait until it is over"


def default_folder() -> Path:
    """The page's folder in the user's data folder (``~/.local/share/g2w-import/ui`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("g2w-import", appauthor=False)) / "ui"


def private(folder: Path) -> Path:
    """``folder``, created if need be, readable and writable by the user alone."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if os.name == "posix":
        os.chmod(folder, 0o700)
    return folder


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


class Job:
    """A call of :func:`registering.register` in a thread of its own: a check, or an import."""

    def __init__(
        self,
        upload: Upload,
        keys: tuple[str, ...],
        *,
        dry_run: bool,
        then: Callable[[Job], None] | None = None,
        fallback: str | None = None,
    ) -> None:
        self.upload = upload
        #: the webinars asked for; empty: as the file says
        self.keys = keys
        #: the webinar chosen on the page, for a file that names none of its own
        self.fallback = fallback
        self.dry_run = dry_run
        self.listener = PageListener()
        self.stop = StopSignal()
        self.outcome: Outcome | None = None
        #: what to do once the job is over, in its thread
        self.then = then
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
    def stopping(self) -> bool:
        return self.stop.is_set() and not self.done.is_set()

    def _run(self, access: Access, options: Options) -> None:
        try:
            if self.fallback is not None and not self.keys:
                self.keys = self._keys_or_fallback(self.fallback)
                options = dataclasses.replace(options, webinar_keys=self.keys)
            outcome = asyncio.run(
                registering.register(self.upload.path, access, options, self.listener, self.stop)
            )
            if not self.dry_run:
                self._write(outcome)
            self.outcome = outcome
        except ImporterError as exc:
            self.error = str(exc)
        except Exception as exc:  # a bug must not leave the page waiting for ever
            self.error = f"the import failed unexpectedly ({type(exc).__name__}); see the terminal"
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
        try:
            table = reader.read(self.upload.path)
            named = settings.webinar_keys((), table)
        except ImporterError:
            return (fallback,)
        if named or any(fold(h) == "webinarkey" for h in table.headers):
            return ()
        return (fallback,)

    def _write(self, outcome: Outcome) -> None:
        """The report and the needs-attention file beside the upload, as the command writes,
        under the file's own name."""
        built = build(outcome, source_name=self.upload.name)
        self.built = built
        self.report_file = report.write(
            built, self.upload.report_path, self.report_notes.append, outcome.draft
        )
        self.attention_file = write_attention(
            built, self.upload.attention_path, note=self.report_notes.append
        )


def blocker(check: Job | None) -> str | None:
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
    """One person's page: the file, its latest check, the latest import."""

    access: Access
    folder: Path = field(default_factory=default_folder)
    rate: float = DEFAULT_RATE
    upload: Upload | None = None
    check: Job | None = None
    run: Job | None = None
    #: the upload is the file of an import that did not finish, chosen again at start
    restored: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        private(self.folder)
        self._restore()

    @property
    def sending(self) -> bool:
        """Whether an import is under way."""
        return self.run is not None and not self.run.done.is_set()

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
        if self.sending:
            raise Busy(BUSY)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = private(private(self.folder / "uploads") / f"{stamp}-{secrets.token_hex(3)}")
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
                if self.sending:  # Register was pressed while the file was arriving
                    raise Busy(BUSY)
                self.upload, self.restored = Upload(path, size), False
                job = self._new_check((), fallback=webinar)
        except BaseException:
            path.unlink(missing_ok=True)
            folder.rmdir()
            raise
        job.start(self.access, self._options((), dry_run=True))

    def start_check(self, keys: tuple[str, ...]) -> Job:
        """Check the file against the webinars ``keys`` (none: as the file says): a dry run."""
        with self._lock:
            if self.upload is None:
                raise InputError("no file chosen yet; choose the list of people first")
            if self.sending:
                raise Busy(BUSY)
            job = self._new_check(keys)
        job.start(self.access, self._options(keys, dry_run=True))
        return job

    def _new_check(self, keys: tuple[str, ...], fallback: str | None = None) -> Job:
        """A check of the upload that replaces the last one (called with the lock held)."""
        assert self.upload is not None
        if self.check is not None:
            self.check.stop.set()  # an older check of another choice: not needed any more
        self.check = Job(self.upload, keys, dry_run=True, fallback=fallback)
        self.run = None  # a new plan: the last import's report stays in its folder
        return self.check

    def start_import(self) -> Job:
        """Import the file for the webinars it was last checked against."""
        with self._lock:
            check = self.check
            if self.sending:
                raise Busy("an import is under way already")
            why = blocker(check)
            if why is not None or check is None or check.outcome is None:
                raise InputError(why or "choose the list of people first")
            keys = check.keys or tuple(part.key for part in check.outcome.webinars)
            job = self.run = Job(check.upload, keys, dry_run=False, then=self._ended)
        self._remember(job.upload, keys, finished=False)
        job.start(self.access, self._options(keys, dry_run=False))
        return job

    def stop(self) -> None:
        """Stop the import gracefully, as Ctrl-C does: the calls under way finish."""
        if self.run is not None:
            self.run.stop.set()

    def close(self, timeout: float = 60.0) -> None:
        """Stop whatever runs and wait for it: the journal and the report are then complete."""
        for job in (self.check, self.run):
            if job is not None:
                job.stop.set()
        for job in (self.check, self.run):
            if job is not None:
                job.wait(timeout)

    def _options(self, keys: tuple[str, ...], *, dry_run: bool) -> Options:
        return Options(
            webinar_keys=keys,
            rate=self.rate,
            dry_run=dry_run,
            resume_hint=RESUME_HINT,
            again=AGAIN,
            draft_report=not dry_run,  # the report is an XLSX file (Upload.report_path)
        )

    def _ended(self, job: Job) -> None:
        """Once an import is over: remember whether it finished, for the next start."""
        outcome = job.outcome
        finished = outcome is not None and not any(
            row.status is Status.PENDING for row in outcome.rows
        )
        self._remember(job.upload, job.keys, finished=finished)

    def _remember(self, upload: Upload, keys: tuple[str, ...], *, finished: bool) -> None:
        text = json.dumps({"file": str(upload.path), "webinars": list(keys), "finished": finished})
        write_atomically(self.folder / _LAST_RUN, lambda temp: _write_text(temp, text))

    def _restore(self) -> None:
        """Choose the file of an import that did not finish again, checked as it was."""
        try:
            last = json.loads((self.folder / _LAST_RUN).read_text("utf-8"))
            path, keys, finished = Path(last["file"]), tuple(last["webinars"]), last["finished"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        if finished or not path.is_file() or self.folder not in path.parents:
            return
        self.upload, self.restored = Upload(path, path.stat().st_size), True
        self.start_check(tuple(str(key) for key in keys))


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, "utf-8")
