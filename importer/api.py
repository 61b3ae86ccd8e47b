"""The Python API: the same jobs as the commands, for lists that live in a notebook or script.

    import importer
    result = importer.register(frame, webinar_key="8325357307900339981")
    result.exit_code, result.counts, result.to_pandas(), result.write("report.xlsx")
    problems = importer.check(frame, webinar_key="8325357307900339981").problems
    listed = importer.export(webinar_key="8325357307900339981").to_pandas()
    importer.undo(webinar_key="8325357307900339981", source=frame)   # or importer.cancel(frame, …)

Every function takes the keyword arguments of :class:`Call` (credentials, pace, journal,
progress, stop) and returns an outcome with ``exit_code``, ``summary()``, ``to_pandas()`` and
``write(path)``. Nothing is global: each call resolves its own credentials, opens its own
connection and journal, and leaves the process as it found it. Each runs in a thread of its
own, so it also works where an event loop is already running (Jupyter); Ctrl-C (or Jupyter's
"interrupt") stops it gracefully, as on the command line, and the outcome says what is pending.
The ``…_async`` functions are the same, to be awaited.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

from importer.errors import NotSignedIn
from importer.events import Brief, PlanView, Silent, StopSignal
from importer.goto.connection import Access
from importer.jobs import cancel as cancelling
from importer.jobs import export as exporting
from importer.jobs import register as registering
from importer.jobs.common import Options
from importer.progress import Progress, ProgressReport
from importer.read.reader import Source
from importer.report.cancellations import Cancellations
from importer.report.outcome import Outcome
from importer.report.registrants import Exported

T = TypeVar("T")

#: no token anywhere, in the words of a Python caller
NOT_SIGNED_IN = (
    "not signed in: pass token=..., set G2W_ACCESS_TOKEN, or run g2w-import login once "
    "(the stored login is then used); sandbox=True tries it without GoTo"
)


ProgressCallback = Callable[[ProgressReport], None]


class _Listener(Silent):
    """The API's listener: silent, never asks; progress to a callback or a line on stderr."""

    def __init__(self, progress: ProgressCallback | bool | None) -> None:
        super().__init__()
        self.callback = progress if callable(progress) else None
        self.line = Progress(0, sys.stderr, terminal=False) if progress is True else None
        self.plans: list[PlanView | Brief] = []
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.started_at = time.monotonic()

    def plan(self, plan: PlanView | Brief) -> None:
        self.plans.append(plan)

    def started(self, total: int) -> None:
        self.total, self.started_at = total, time.monotonic()
        if self.line is not None:
            self.line = Progress(total, sys.stderr, terminal=False)

    def settled(self, status: str, line: int) -> None:
        self.counts[status] += 1
        if self.line is not None:
            self.line.advance()
        if self.callback is not None:
            elapsed = time.monotonic() - self.started_at
            done = sum(self.counts.values())
            self.callback(ProgressReport(done, self.total, Counter(self.counts), elapsed))

    def finished(self) -> None:
        if self.line is not None:
            self.line.finish()


class Call(TypedDict, total=False):
    """The keyword arguments every function of the Python API takes."""

    #: an access token (default: ``G2W_ACCESS_TOKEN``, then the stored login)
    token: str | None
    organizer_key: str | None
    api_url: str | None
    #: the built-in simulated API: nothing reaches GoTo
    sandbox: bool
    #: calls per second at most (GoTo's limit is 10)
    rate: float
    concurrency: int | None
    #: seconds to wait for each answer
    timeout: float
    max_calls: int | None
    give_up_after: float
    #: the journal to use instead of the webinar's own
    journal: str | Path | None
    #: the Excel sheet to read
    sheet: str | None
    #: True for a progress line on stderr, or a function called with a :class:`ProgressReport`
    #: after each row
    progress: ProgressCallback | bool | None
    #: stops the job from another thread, as Ctrl-C does
    stop: StopSignal | None


_CALL = frozenset(Call.__annotations__)
#: the keyword arguments that are the :class:`Options` of the same names (their defaults too)
_PACE = ("sheet", "rate", "concurrency", "timeout", "max_calls", "give_up_after")


def _prepared(
    call: Call, keys: str | Sequence[str] | None, name: str, **job: Any
) -> tuple[Access, Options, _Listener, StopSignal | None]:
    """The access, options, listener and stop of one call of ``importer.<name>()``, from its
    keyword arguments."""
    unknown = sorted(set(call) - _CALL)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}")
    webinar_keys = (keys,) if isinstance(keys, str) else keys
    if webinar_keys is not None and (
        not isinstance(webinar_keys, list | tuple)
        or not all(isinstance(key, str) for key in webinar_keys)
    ):
        raise TypeError(
            f"webinar_key must be a webinar's key as a string of digits (or, for register, a "
            f"list of them), not {type(keys).__name__}; the people go in source="
        )
    webinar_keys = tuple(webinar_keys or ())
    progress, stop = call.get("progress"), call.get("stop")
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise TypeError("progress= is True, False or a function called with a ProgressReport")
    if not (stop is None or isinstance(stop, StopSignal)):
        raise TypeError("stop= is an importer.StopSignal")
    journal = call.get("journal")
    paced: dict[str, Any] = {name: value for name, value in call.items() if name in _PACE}
    options = Options(
        webinar_keys=webinar_keys,
        journal=Path(journal) if journal is not None else None,
        **paced,
        resume_hint=f"call importer.{name}() again with the same arguments",
        again=f"call importer.{name}() again",
        **job,
    )
    access = Access(
        sandbox=call.get("sandbox", False),
        api_url=call.get("api_url"),
        token=call.get("token"),
        organizer_key=call.get("organizer_key"),
    )
    return access, options, _Listener(progress), stop


async def _signed_in(job: Awaitable[T]) -> T:
    """The job's outcome; not signed in, said in Python's words, not the command line's."""
    try:
        return await job
    except NotSignedIn as exc:
        raise NotSignedIn(NOT_SIGNED_IN) from exc


async def register_async(
    source: Source,
    webinar_key: str | Sequence[str] | None = None,
    *,
    resend_confirmation: bool | None = None,
    dry_run: bool = False,
    verify: bool = True,
    include_hidden_rows: bool = False,
    **call: Unpack[Call],
) -> Outcome:
    """Register everyone in ``source`` for the webinar(s); see :func:`register`."""
    access, options, listener, stop = _prepared(
        call,
        webinar_key,
        "register",
        resend=resend_confirmation,
        dry_run=dry_run,
        verify=verify,
        include_hidden_rows=include_hidden_rows,
    )
    return await _signed_in(registering.register(source, access, options, listener, stop))


async def cancel_async(
    source: Source,
    webinar_key: str | None = None,
    *,
    dry_run: bool = False,
    **call: Unpack[Call],
) -> Cancellations:
    """Cancel the registrations of the people in ``source``; see :func:`cancel`."""
    access, options, listener, stop = _prepared(call, webinar_key, "cancel", dry_run=dry_run)
    return await _signed_in(cancelling.cancel(source, access, options, listener, stop))


async def undo_async(
    webinar_key: str | None = None,
    *,
    source: Source | None = None,
    dry_run: bool = False,
    **call: Unpack[Call],
) -> Cancellations:
    """Cancel the registrations g2w-import made; see :func:`undo`."""
    access, options, listener, stop = _prepared(call, webinar_key, "undo", dry_run=dry_run)
    return await _signed_in(cancelling.undo(source, access, options, listener, stop))


async def export_async(
    webinar_key: str | None = None,
    *,
    merge: Source | None = None,
    answers: bool = True,
    dry_run: bool = False,
    **call: Unpack[Call],
) -> Exported:
    """Everyone registered for the webinar; see :func:`export`."""
    access, options, listener, stop = _prepared(
        call,
        webinar_key,
        "export",
        answers=answers,
        dry_run=dry_run,
    )
    return await _signed_in(exporting.export(merge, access, options, listener, stop))


def register(
    source: Source,
    webinar_key: str | Sequence[str] | None = None,
    *,
    resend_confirmation: bool | None = None,
    dry_run: bool = False,
    verify: bool = True,
    include_hidden_rows: bool = False,
    **call: Unpack[Call],
) -> Outcome:
    """Register everyone in ``source`` for a webinar, as ``g2w-import register`` does.

    ``source`` is a CSV or Excel file's path, a pandas DataFrame, or an iterable of mappings
    (one per person); columns are matched like a file's headers. ``webinar_key`` is one key or
    several (default: the file's Settings sheet). Without ``token`` the credentials come from
    where the command finds them: ``G2W_ACCESS_TOKEN``, then the stored login. ``sandbox=True``
    uses the built-in simulated API. ``progress`` is True for a progress line on stderr, or a
    function called with a :class:`ProgressReport` after each row. ``verify=False`` skips the
    check of every registered row against GoTo's registrant list once sending ends. Rows
    hidden in Excel (by a filter or by hand) are not sent, and are ``skipped_hidden`` in the
    outcome, unless ``include_hidden_rows=True``; ``sheet=`` reads any sheet, hidden ones too.

    Returns the :class:`~importer.report.outcome.Outcome`; a run stopped by the API, a quota or
    an interrupt returns one too, with the rest ``pending`` and ``exit_code`` saying why. An
    input or setting that cannot be used raises :class:`~importer.errors.ImporterError` (its
    ``exit_code`` is 2) before anything is sent.
    """
    return _in_own_thread(
        lambda stop: register_async(
            source,
            webinar_key,
            resend_confirmation=resend_confirmation,
            dry_run=dry_run,
            verify=verify,
            include_hidden_rows=include_hidden_rows,
            **_stopped_by(call, stop),
        ),
        call.get("stop"),
    )


def check(
    source: Source,
    webinar_key: str | Sequence[str] | None = None,
    *,
    include_hidden_rows: bool = False,
    **call: Unpack[Call],
) -> Outcome:
    """The dry run, as data: every row checked as :func:`register` would, nothing sent.

    With credentials (or ``sandbox=True``) only read-only calls are made: the webinar and its
    form, so that its required questions and allowed answers are checked too. Without any,
    the file alone is checked (``outcome.checked_against_webinar`` is then False).
    ``outcome.problems`` lists every problem of every row; ``exit_code`` is 0 when every row
    would be sent, 1 when some would not.
    """
    return register(
        source, webinar_key, dry_run=True, include_hidden_rows=include_hidden_rows, **call
    )


def cancel(
    source: Source,
    webinar_key: str | None = None,
    *,
    dry_run: bool = False,
    **call: Unpack[Call],
) -> Cancellations:
    """Cancel the registrations of the people in ``source`` (a file, a DataFrame or records;
    matched by e-mail, ignoring case), whoever registered them, as ``g2w-import cancel`` does.

    Returns the :class:`~importer.report.cancellations.Cancellations`: a row per person
    (``cancelled``, ``not_registered``, ``failed`` or ``pending``), ``exit_code``,
    ``to_pandas()`` and ``write(path)``. Called again after a stop, it carries on and cancels
    nobody twice. ``dry_run=True`` shows what would be cancelled and cancels nothing.
    """
    return _in_own_thread(
        lambda stop: cancel_async(source, webinar_key, dry_run=dry_run, **_stopped_by(call, stop)),
        call.get("stop"),
    )


def undo(
    webinar_key: str | None = None,
    *,
    source: Source | None = None,
    dry_run: bool = False,
    **call: Unpack[Call],
) -> Cancellations:
    """Cancel the registrations g2w-import made for the webinar, as its journal on this
    computer records them (only those of the people in ``source``, when given), as
    ``g2w-import undo`` does: people it found registered already, or who came through another
    channel, are left alone (``left_alone``).

    Returns the :class:`~importer.report.cancellations.Cancellations`, as :func:`cancel`.
    """
    return _in_own_thread(
        lambda stop: undo_async(
            webinar_key, source=source, dry_run=dry_run, **_stopped_by(call, stop)
        ),
        call.get("stop"),
    )


def export(
    webinar_key: str | None = None,
    *,
    merge: Source | None = None,
    answers: bool = True,
    dry_run: bool = False,
    **call: Unpack[Call],
) -> Exported:
    """Everyone registered for the webinar, whatever channel they came through, as
    ``g2w-import export`` does: names, e-mail, status, registration date, registrant key,
    join URL and (unless ``answers=False``, a call per registrant) the answers to custom
    questions. With ``merge`` (a file, a DataFrame or records), each of its rows instead, with
    the registrant key, join URL and status of the person of its e-mail.

    Returns the :class:`~importer.report.registrants.Exported`: ``to_pandas()`` is the list
    (a row per registrant, or per row of ``merge`` with its own index), ``write(path)``.
    """
    return _in_own_thread(
        lambda stop: export_async(
            webinar_key,
            merge=merge,
            answers=answers,
            dry_run=dry_run,
            **_stopped_by(call, stop),
        ),
        call.get("stop"),
    )


def _stopped_by(call: Call, stop: StopSignal) -> Call:
    """``call``, stopped by ``stop``."""
    given = call.copy()
    given["stop"] = stop
    return given


def _in_own_thread(
    job: Callable[[StopSignal], Coroutine[Any, Any, T]], stop: StopSignal | None
) -> T:
    """Run the job in a thread with its own event loop; a first Ctrl-C stops it gently."""
    stop = stop or StopSignal()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="g2w-import") as pool:
        future: concurrent.futures.Future[T] = pool.submit(asyncio.run, job(stop))
        try:
            return future.result()
        except KeyboardInterrupt:
            stop.set()
        try:
            return future.result()
        except KeyboardInterrupt:
            stop.abort()  # a second time: stop at once (the journal has everything settled)
            raise
