"""What every job shares: its options, the connection it opens, and the webinar it works on.

:func:`open_connection` is the connection a front door asked for: GoTo, or the built-in sandbox.
:func:`connected` opens it for ``cancel``, ``undo`` and ``export``, with the webinar's journal
when asked for, one :class:`~importer.goto.session.ApiSession` (pace, retries, call budget,
stop), and reads the webinar, whose subject every plan shows first. A job that stops before its
plan was shown has changed nothing and ends in its error; after the plan, a job always ends in
an outcome.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from importer.engine.directory import Directory
from importer.engine.journal import Journal, default_path, webinar_journal
from importer.errors import UsageError
from importer.events import StopSignal
from importer.goto import credentials, lookup
from importer.goto.client import G2WClient
from importer.goto.connection import Access, Connection, paced
from importer.goto.oauth import RefreshingAuth
from importer.goto.session import DEFAULT_RATE, ApiSession
from importer.model import Table, Webinar
from importer.read import settings

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class Options:
    """How to run a job, as the front door was told: one type for ``register``, ``cancel``,
    ``undo`` and ``export`` (each reads the fields that concern it)."""

    #: the webinars (``register`` takes several; the others one)
    webinar_keys: tuple[str, ...] = ()
    #: the Excel sheet to read
    sheet: str | None = None
    rate: float = DEFAULT_RATE
    concurrency: int | None = None
    timeout: float = 30.0
    max_calls: int | None = None
    give_up_after: float = 60.0
    #: the journal to use instead of the webinar's own (``register``, ``cancel``, ``undo``)
    journal: Path | None = None
    #: show the plan, change nothing, write nothing (``register``: only read-only calls)
    dry_run: bool = False
    #: how to carry on after a stop, in the front door's words (for the report's Summary)
    resume_hint: str = "run the same command again"
    #: the same, briefly, for each row left pending
    again: str = "run the command again"
    #: ``register``: have GoTo e-mail the confirmation again to people already registered
    #: (None: the Settings sheet says)
    resend: bool | None = None
    #: ``register``: once sending ends, check every registered row against one read of the
    #: registrant list
    verify: bool = True
    #: ``register``: send the rows hidden in Excel too (by default they are reported, not sent)
    include_hidden_rows: bool = False
    #: ``register``: the front door writes an XLSX report, whose rows are written ahead while
    #: the check reads the registrant list (:class:`importer.report.Draft`)
    draft_report: bool = False
    #: ``export``: read each registrant's answers to the custom questions (a call each)
    answers: bool = True
    #: where the front door will write the report, when it was told (``export`` names it in
    #: its plan); a job itself writes nothing
    report: Path | None = None

    def __post_init__(self) -> None:
        """Refuse a pace or a budget that cannot be kept, in words every front door can use
        (the command line's options check the same ranges themselves)."""
        _within("the rate (calls a second)", self.rate, 0.1, 1000)
        _within("the timeout (seconds)", self.timeout, 1)
        _within("give_up_after (seconds)", self.give_up_after, 1)
        if self.concurrency is not None:
            _within("the concurrency", self.concurrency, 1, 256, whole=True)
        if self.max_calls is not None:
            _within("max_calls", self.max_calls, 1, whole=True)


def _within(
    what: str, value: float, low: float, high: float | None = None, *, whole: bool = False
) -> None:
    """Refuse ``value`` unless it is a number (a whole one if ``whole``) from ``low`` to
    ``high``."""
    number = isinstance(value, int if whole else int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value < low or (high is not None and value > high):
        span = f"from {low:g} to {high:g}" if high is not None else f"of {low:g} or more"
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"{what} must be {kind} {span}, not {value!r}")


class Done(Protocol):
    """What every job returns, and every front door reads: the outcome of a ``register``
    (:class:`~importer.report.outcome.Outcome`), ``cancel`` or ``undo``
    (:class:`~importer.report.cancellations.Cancellations`) or ``export``
    (:class:`~importer.report.registrants.Exported`)."""

    @property
    def dry_run(self) -> bool: ...

    @property
    def exit_code(self) -> int: ...

    @property
    def default_report(self) -> Path:
        """Where the report goes when nobody says."""

    def summary(self) -> str:
        """The counts, for ``Done: ….``"""

    def ending(self) -> str | None:
        """Why the job stopped early, if it did, and how to carry on."""

    def write(self, path: str | Path, note: Callable[[str], None] | None = None) -> Path:
        """Write the report; return where it went."""

    def to_pandas(self) -> pandas.DataFrame:
        """The report's rows as a DataFrame."""


def default_webinar(access: Access) -> str | None:
    """The webinar to use when none is named: the sandbox's first; for GoTo, none."""
    if not access.sandbox:
        return None
    from importer import sandbox  # the simulator is loaded only when asked for

    return sandbox.WEBINAR_KEY


@contextlib.asynccontextmanager
async def open_connection(access: Access, table: Table | None = None) -> AsyncIterator[Connection]:
    """The connection a front door asked for; ``table`` may name the organizer (old workbook).

    The organizer key comes from the front door, the file or the stored login; without one the
    connection's ``organizer_key`` is None, and the run asks the API (``lookup.organizer``).
    """
    given = access.organizer_key or os.environ.get("G2W_ORGANIZER_KEY", "").strip() or None
    organizer = settings.organizer_key(given, table)
    if access.sandbox:
        if access.api_url or access.token_file or access.token:
            unset = " (and unset G2W_API_URL)" if os.environ.get("G2W_API_URL") else ""
            raise UsageError(
                "--sandbox runs against the built-in API; leave out --api-url and --token-file"
                + unset
            )
        from importer import sandbox  # the simulator is loaded only when asked for

        with sandbox.connect(organizer_key=organizer) as connection:
            yield connection
        return
    found = credentials.resolve(access.token, access.token_file)
    given_url = access.api_url or os.environ.get("G2W_API_URL", "").strip()
    url = settings.api_url(given_url or found.credentials.api_url)
    organizer = organizer or found.credentials.organizer_key
    yield Connection(
        url,
        settings.check_key("--organizer-key", organizer) if organizer else None,
        RefreshingAuth(found.credentials, found.store, when_refused=found.when_refused),
        token_source=found.source,
    )


@dataclass(frozen=True)
class Run:
    """One job's way to one webinar: its client, the shared session, its journal."""

    connection: Connection
    session: ApiSession
    client: G2WClient
    webinar: Webinar
    workers: int
    journal: Journal | None

    def directory(self) -> Directory:
        """The webinar's registrant list, read through the session."""
        return Directory(self.session, self.client, self.webinar.registrant_count or 0)


def the_webinar(options: Options, table: Table | None, access: Access) -> str:
    """The one webinar of a ``cancel``, ``undo`` or ``export``: as given, or as the file's
    Settings sheet (or the sandbox) says."""
    keys = settings.webinar_keys(options.webinar_keys, table, default_webinar(access))
    if not keys:
        raise UsageError(
            "--webinar-key is required: the long number in the webinar's settings "
            "(g2w-import webinars lists them)"
        )
    if len(keys) > 1:
        raise UsageError(
            f"{len(keys)} webinars named: this works on one webinar at a time; name one "
            "with --webinar-key"
        )
    return keys[0]


@contextlib.asynccontextmanager
async def connected(
    access: Access,
    options: Options,
    stop: StopSignal | None,
    table: Table | None = None,
    *,
    journal: bool = False,
    existing: bool = False,
) -> AsyncIterator[Run]:
    """The webinar of ``options`` (or of ``table``'s Settings sheet), read, with its journal
    when ``journal`` is set: opened and locked, unless a dry run would have to create it.
    ``existing`` refuses to go on without one (there is nothing to undo)."""
    key = the_webinar(options, table, access)
    async with contextlib.AsyncExitStack() as stack:
        connection = await stack.enter_async_context(open_connection(access, table))
        http, session, workers = await paced(stack, connection, options, stop)
        organizer, _ = await lookup.organizer(connection, http, session)
        opened = None
        if journal:
            path = options.journal or default_path(organizer, key, connection.journal_folder)
            if existing and not path.exists():
                raise UsageError(
                    f"no journal of webinar {key} at {path}: g2w-import has registered nobody "
                    "for it from this computer, or its journal was removed (g2w-import journals "
                    "lists those kept); name the journal with --journal if it is elsewhere"
                )
            if path.exists() or not options.dry_run:
                opened = stack.enter_context(
                    webinar_journal(organizer, key, folder=connection.journal_folder, path=path)
                )
        client = G2WClient(http, organizer, key)
        webinar = await session.call(client.get_webinar, what=f"reading webinar {key}")
        if opened is not None:
            opened.remember(webinar)
        yield Run(connection, session, client, webinar, workers, opened)
