"""The Python API: the same import as the command, for lists that live in a notebook or script.

    import importer
    result = importer.register(frame, webinar_key="8325357307900339981")
    result.exit_code, result.counts, result.to_pandas(), result.write("report.xlsx")
    problems = importer.check(frame, webinar_key="8325357307900339981").problems

Nothing is global: each call resolves its own credentials, opens its own connection and
journal, and leaves the process as it found it. :func:`register` runs in a thread of its own,
so it also works where an event loop is already running (Jupyter); Ctrl-C (or Jupyter's
"interrupt") stops it gracefully, as on the command line, and the outcome says what is pending.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import NotSignedIn
from importer.events import PlanView, Silent, StopSignal
from importer.goto.connection import Access
from importer.goto.session import DEFAULT_RATE
from importer.jobs import register as pipeline
from importer.model import Status
from importer.progress import Progress
from importer.read.reader import Source
from importer.report.outcome import Outcome

RESUME_HINT = "call importer.register() again with the same arguments"
#: no token anywhere, in the words of a Python caller
NOT_SIGNED_IN = (
    "not signed in: pass token=..., set G2W_ACCESS_TOKEN, or run g2w-import login once "
    "(the stored login is then used); sandbox=True tries it without GoTo"
)


@dataclass(frozen=True)
class ProgressReport:
    """How far a run has got, for a ``progress`` callback."""

    done: int
    total: int
    counts: Counter[Status]
    elapsed: float

    @property
    def rate(self) -> float:
        """Rows settled per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def left(self) -> float | None:
        """Seconds left at the rate so far, once there is one."""
        return (self.total - self.done) / self.rate if self.rate > 0 else None


ProgressCallback = Callable[[ProgressReport], None]


class _Listener(Silent):
    """The API's listener: silent, never asks; progress to a callback or a line on stderr."""

    def __init__(self, progress: ProgressCallback | bool | None) -> None:
        super().__init__()
        self.callback = progress if callable(progress) else None
        self.line = Progress(0, sys.stderr, terminal=False) if progress is True else None
        self.plans: list[PlanView] = []
        self.counts: Counter[Status] = Counter()
        self.total = 0
        self.started_at = time.monotonic()

    def plan(self, plan: PlanView) -> None:
        self.plans.append(plan)

    def started(self, total: int) -> None:
        self.total, self.started_at = total, time.monotonic()
        if self.line is not None:
            self.line = Progress(total, sys.stderr, terminal=False)

    def settled(self, status: Status, line: int) -> None:
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


async def register_async(
    source: Source,
    webinar_key: str | Sequence[str] | None = None,
    *,
    token: str | None = None,
    organizer_key: str | None = None,
    api_url: str | None = None,
    sandbox: bool = False,
    rate: float = DEFAULT_RATE,
    journal: str | Path | None = None,
    resend_confirmation: bool | None = None,
    progress: ProgressCallback | bool | None = None,
    sheet: str | None = None,
    concurrency: int | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - each answer's timeout, not the run's
    max_calls: int | None = None,
    give_up_after: float = 60.0,
    stop: StopSignal | None = None,
    dry_run: bool = False,
    verify: bool = True,
    include_hidden_rows: bool = False,
) -> Outcome:
    """Register everyone in ``source`` for the webinar(s); see :func:`register`."""
    keys = (webinar_key,) if isinstance(webinar_key, str) else tuple(webinar_key or ())
    options = pipeline.RunOptions(
        webinar_keys=keys,
        sheet=sheet,
        rate=rate,
        concurrency=concurrency,
        timeout=timeout,
        resend=resend_confirmation,
        journal=Path(journal) if journal is not None else None,
        max_calls=max_calls,
        give_up_after=give_up_after,
        dry_run=dry_run,
        verify=verify,
        include_hidden_rows=include_hidden_rows,
        resume_hint=RESUME_HINT,
    )
    access = Access(sandbox=sandbox, api_url=api_url, token=token, organizer_key=organizer_key)
    try:
        return await pipeline.run(source, access, options, _Listener(progress), stop)
    except NotSignedIn as exc:  # in Python's words, not the command line's
        raise NotSignedIn(NOT_SIGNED_IN) from exc


def register(
    source: Source,
    webinar_key: str | Sequence[str] | None = None,
    *,
    token: str | None = None,
    organizer_key: str | None = None,
    api_url: str | None = None,
    sandbox: bool = False,
    rate: float = DEFAULT_RATE,
    journal: str | Path | None = None,
    resend_confirmation: bool | None = None,
    progress: ProgressCallback | bool | None = None,
    sheet: str | None = None,
    concurrency: int | None = None,
    timeout: float = 30.0,
    max_calls: int | None = None,
    give_up_after: float = 60.0,
    stop: StopSignal | None = None,
    verify: bool = True,
    include_hidden_rows: bool = False,
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

    Returns the :class:`~importer.report.outcome.Outcome`; a run stopped by the API, a quota or an
    interrupt returns one too, with the rest ``pending`` and ``exit_code`` saying why. An input
    or setting that cannot be used raises :class:`~importer.errors.ImporterError` (its
    ``exit_code`` is 2) before anything is sent.
    """
    stop = stop or StopSignal()
    coroutine = register_async(
        source,
        webinar_key,
        token=token,
        organizer_key=organizer_key,
        api_url=api_url,
        sandbox=sandbox,
        rate=rate,
        journal=journal,
        resend_confirmation=resend_confirmation,
        progress=progress,
        sheet=sheet,
        concurrency=concurrency,
        timeout=timeout,
        max_calls=max_calls,
        give_up_after=give_up_after,
        stop=stop,
        verify=verify,
        include_hidden_rows=include_hidden_rows,
    )
    return _in_own_thread(coroutine, stop)


def check(
    source: Source,
    webinar_key: str | Sequence[str] | None = None,
    *,
    token: str | None = None,
    organizer_key: str | None = None,
    api_url: str | None = None,
    sandbox: bool = False,
    sheet: str | None = None,
    include_hidden_rows: bool = False,
) -> Outcome:
    """The dry run, as data: every row checked as :func:`register` would, nothing sent.

    With credentials (or ``sandbox=True``) only read-only calls are made: the webinar and its
    form, so that its required questions and allowed answers are checked too. Without any,
    the file alone is checked (``outcome.checked_against_webinar`` is then False).
    ``outcome.problems`` lists every problem of every row; ``exit_code`` is 0 when every row
    would be sent, 1 when some would not.
    """
    stop = StopSignal()
    coroutine = register_async(
        source,
        webinar_key,
        token=token,
        organizer_key=organizer_key,
        api_url=api_url,
        sandbox=sandbox,
        sheet=sheet,
        dry_run=True,
        stop=stop,
        include_hidden_rows=include_hidden_rows,
    )
    return _in_own_thread(coroutine, stop)


def _in_own_thread(coroutine: Coroutine[Any, Any, Outcome], stop: StopSignal) -> Outcome:
    """Run the import in a thread with its own event loop; a first Ctrl-C stops it gently."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="g2w-import") as pool:
        future: concurrent.futures.Future[Outcome] = pool.submit(asyncio.run, coroutine)
        try:
            return future.result()
        except KeyboardInterrupt:
            stop.set()
        try:
            return future.result()
        except KeyboardInterrupt:
            stop.abort()  # a second time: stop at once (the journal has everything settled)
            raise
