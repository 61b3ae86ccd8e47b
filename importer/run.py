"""One import, start to end: webinars, journals, the worker pool, interrupts.

``cli.py`` parses the command line and renders; this module does the work between reading the
file and writing the report, talking to the person only through a :class:`Console`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import InputError, UsageError
from .models import Form, Registrant, Result, Table

if TYPE_CHECKING:
    import httpx

    from .client import Webinar
    from .journal import Journal
    from .oauth import RefreshingAuth
    from .progress import Progress
    from .register import Preparation, Registrar, RunOutcome
    from .sandbox import SandboxConfig
    from .validate import Plan

SANDBOX_URL = "http://sandbox.invalid/G2W/rest/v2"


class Console(Protocol):
    """How a run talks to the person running it."""

    def say(self, message: str = "", colour: str | None = None) -> None:
        """A line of information."""

    def confirm(self, question: str) -> bool:
        """Ask before sending; True to go on (also when nobody can be asked)."""

    def progress(self, total: int) -> Progress:
        """A progress display for ``total`` rows."""

    def plan(self, plan: Plan, webinar: Webinar | None, prepared: Preparation | None) -> None:
        """Show what will be sent to one webinar."""


@dataclass(frozen=True)
class Connection:
    """Where and as whom to call the API."""

    api_url: str
    organizer_key: str
    auth: RefreshingAuth
    sandbox: SandboxConfig | None = None

    def secrets(self) -> list[str]:
        """Everything that must never be shown, as it stands now (tokens get renewed)."""
        current = self.auth.credentials
        return [
            s for s in (current.access_token, current.refresh_token, current.client_secret) if s
        ]


@dataclass(frozen=True)
class Options:
    """How to send, as the command line says."""

    rate: float
    concurrency: int | None
    timeout: float
    resend: bool
    confirm: bool
    max_calls: int | None
    give_up_after: float


@dataclass
class WebinarRun:
    """One webinar's part of a run."""

    key: str
    table: Table
    webinar: Webinar | None = None
    plan: Plan | None = None
    results: dict[int, Result] = field(default_factory=dict)
    outcome: RunOutcome | None = None
    to_send: list[Registrant] = field(default_factory=list)

    def final_plan(self) -> Plan:
        """The plan, checked against the webinar's form when the run got that far."""
        from .validate import validate

        return self.plan if self.plan is not None else validate(self.table)


@dataclass
class RunRecord:
    """What a run has settled so far; it survives an interrupt, so the report can be written."""

    webinars: list[WebinarRun]
    interrupted: bool = False

    @property
    def stopped(self) -> Exception | None:
        """Why the run stopped early, if the API or a limit stopped it."""
        return next(
            (
                w.outcome.stopped
                for w in self.webinars
                if w.outcome is not None and w.outcome.stopped is not None
            ),
            None,
        )


def split_by_webinar(table: Table, default_keys: tuple[str, ...]) -> dict[str, Table]:
    """Each webinar's rows: every row for every default key, or each row's own webinarKey cell.

    A cell in a ``webinarKey`` column overrides the defaults for its row; a row with neither is
    refused, as is a key that Excel has mangled, before anything is sent.
    """
    from .columns import fold
    from .validate import check_key, normalise

    column = next((i for i, h in enumerate(table.headers) if fold(h) == "webinarkey"), None)
    if column is None:
        if not default_keys:
            raise UsageError(
                f"{table.describe()}: no webinar named; pass --webinar-key, fill webinarKey on "
                "the Settings sheet, or add a webinarKey column"
            )
        return {key: table for key in default_keys}
    rows: dict[str, list[int]] = {key: [] for key in default_keys}
    for position, row in enumerate(table.rows):
        cell = normalise(row.cells[column])
        try:
            keys = (check_key(f"row {row.line}, webinarKey", cell),) if cell else default_keys
        except UsageError as exc:
            raise InputError(f"{table.describe()}: {exc}") from None
        if not keys:
            raise InputError(
                f"{table.describe()}: row {row.line}, webinarKey: is empty; fill in the "
                "webinar's key, or pass --webinar-key for rows without one"
            )
        for key in keys:
            rows.setdefault(key, []).append(position)
    return {key: _subset(table, positions) for key, positions in rows.items() if positions}


def _subset(table: Table, positions: list[int]) -> Table:
    from dataclasses import replace

    return replace(table, rows=tuple(table.rows[i] for i in positions))


@contextmanager
def journals(
    connection: Connection, keys: list[str], path: Path | None
) -> Iterator[dict[str, Journal]]:
    """Each webinar's journal, locked for this run; throwaway ones for the in-process sandbox."""
    from .journal import Journal, default_path

    if path is not None and len(keys) > 1:
        raise UsageError(
            "--journal names one journal, but this run has several webinars; leave --journal out"
        )
    with contextlib.ExitStack() as stack:
        folder = None
        if path is None and connection.sandbox is not None:
            # The in-process sandbox starts empty every time: so must its journals.
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="g2w-sandbox-")))
        opened = {}
        for key in keys:
            where = path or (
                folder / f"{key}.sqlite3" if folder else default_path(connection.organizer_key, key)
            )
            opened[key] = stack.enter_context(
                Journal.open(where, organizer_key=connection.organizer_key, webinar_key=key)
            )
        yield opened


async def send(
    record: RunRecord,
    connection: Connection,
    opened: dict[str, Journal],
    options: Options,
    console: Console,
) -> None:
    """Check every webinar's rows against its form, then register them, one webinar at a time.

    The webinars share one pace, so together they stay under the rate limit.
    """
    from .client import G2WClient
    from .register import Pacer, Registrar, default_concurrency
    from .validate import validate

    workers = options.concurrency or default_concurrency(options.rate)
    async with http_client(connection, workers, options.timeout) as http:
        pacer = Pacer(options.rate)
        registrars: list[Registrar] = []
        with _interrupts(record, registrars, console):
            for part in record.webinars:
                client = G2WClient(http, connection.organizer_key, part.key)
                registrar = Registrar(
                    client,
                    rate=options.rate,
                    concurrency=workers,
                    resend=options.resend,
                    journal=opened[part.key],
                    max_calls=options.max_calls,
                    give_up_after=options.give_up_after,
                    pacer=pacer,
                )
                registrars.append(registrar)
                part.webinar = await registrar.call(client.get_webinar)
                form: Form = await registrar.call(client.get_form)
                part.plan = validate(part.table, form)
                prepared = await registrar.prepare(list(part.plan.registrants))
                part.results.update(prepared.settled)
                part.to_send = prepared.to_send
                console.plan(part.plan, part.webinar, prepared)
                if record.interrupted:
                    return
            total = sum(len(part.to_send) for part in record.webinars)
            if not total:
                return
            people = "people" if len(record.webinars) == 1 else "registrations"
            if options.confirm and not console.confirm(f"Send {total:,} {people}?"):
                raise Declined
            progress = console.progress(total)
            try:
                for part, registrar in zip(record.webinars, registrars, strict=True):
                    if record.interrupted or record.stopped:
                        break

                    def settled(_: Registrant, result: Result, part: WebinarRun = part) -> None:
                        part.results[result.line] = result
                        progress.advance()

                    part.outcome = await registrar.run(part.to_send, settled)
            finally:
                progress.finish()


class Declined(Exception):
    """The person answered no when asked before sending."""


@contextmanager
def _interrupts(record: RunRecord, registrars: list[Registrar], console: Console) -> Iterator[None]:
    """Ctrl-C or SIGTERM once: finish the calls under way, then stop. Twice: stop at once."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def interrupted() -> None:
        if record.interrupted:
            task.cancel()
            return
        record.interrupted = True
        for registrar in registrars:
            registrar.stop()
        console.say()
        console.say(
            "Stopping: letting the calls under way finish (Ctrl-C again stops at once).", "yellow"
        )

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, interrupted)
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def http_client(connection: Connection, workers: int, timeout: float) -> httpx.AsyncClient:
    """The HTTP client for a run: the sandbox in-process, or the real API."""
    import httpx

    from . import __version__
    from .sandbox import Sandbox, SandboxTransport

    transport = SandboxTransport(Sandbox(connection.sandbox)) if connection.sandbox else None
    return httpx.AsyncClient(
        base_url=connection.api_url,
        auth=connection.auth,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        headers={"User-Agent": f"g2w-import/{__version__}"},
        transport=transport,
    )
