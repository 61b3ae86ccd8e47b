"""The ``g2w-import`` command: options in, stages called, progress and exit codes out.

Exit codes: 0 everyone registered (or already was); 1 finished, but some rows are invalid,
duplicate or failed; 2 usage error or unreadable input, nothing sent; 3 stopped early, run again
to continue; 4 the API refused the token or does not know the webinar; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import click
from click.decorators import FC

from .errors import (
    ImporterError,
    InputError,
    JournalError,
    LimitReached,
    ReportError,
    RunStopped,
    UsageError,
)
from .models import Registrant, Result, Status

if TYPE_CHECKING:
    from collections import Counter

    import httpx

    from .client import Webinar
    from .journal import Journal
    from .register import Preparation, Registrar, RunOutcome
    from .sandbox import SandboxConfig
    from .validate import Plan

EXIT_OK, EXIT_ROWS, EXIT_USAGE, EXIT_STOPPED, EXIT_API, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SHOWN_PROBLEMS = 20

log = logging.getLogger("importer")


def echo(message: str = "", *, err: bool = True, **style: object) -> None:
    """A message for the person: on stderr unless said otherwise, coloured only on a terminal."""
    click.echo(click.style(message, **style) if style else message, err=err)  # type: ignore[arg-type]


def fail(message: str, code: int) -> NoReturn:
    """Print one line and exit with ``code``."""
    echo(f"Error: {message}", fg="red")
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="g2w-importer", prog_name="g2w-import")
def cli() -> None:
    """Register a spreadsheet of people for a GoTo Webinar and collect their join URLs."""


def main() -> None:
    """Console entry point."""
    cli(prog_name="g2w-import")


@dataclass(frozen=True)
class Target:
    """Where and as whom to register."""

    api_url: str
    organizer_key: str
    webinar_key: str
    token: str | None
    sandbox: SandboxConfig | None


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@click.option(
    "--webinar-key",
    metavar="KEY",
    help="The webinar's key: the long number in its GoTo Webinar URL or settings.",
)
@click.option(
    "--organizer-key",
    metavar="KEY",
    envvar="G2W_ORGANIZER_KEY",
    show_envvar=True,
    help="The organizer's key (from your GoTo developer account).",
)
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read the access token from this file. Default: $G2W_ACCESS_TOKEN.",
)
@click.option(
    "--api-url",
    envvar="G2W_API_URL",
    show_envvar=True,
    metavar="URL",
    help="The API's base URL.  [default: https://api.getgo.com/G2W/rest/v2]",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Register against the built-in simulated API: no account or token needed.",
)
@click.option(
    "--sheet",
    metavar="NAME",
    help="The Excel sheet to read (default: the first sheet with an e-mail column).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the report, .xlsx or .csv.  [default: FILE-joinurls.xlsx]",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check the file, show what would be sent, and send nothing.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1, max=1000),
    metavar="N",
    default=10.0,
    show_default=True,
    help="API calls per second: the API's rate limit (GoTo's default is 10).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    metavar="N",
    help="Requests in flight at most.  [default: twice the rate]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    metavar="SECONDS",
    default=30.0,
    show_default=True,
    help="Seconds to wait for one answer.",
)
@click.option(
    "--resend-confirmation/--no-resend-confirmation",
    default=False,
    show_default=True,
    help="Have GoTo e-mail the confirmation again to people already registered.",
)
@click.option(
    "--journal",
    "journal_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The run's journal (SQLite).  [default: one per webinar in your user data folder]",
)
@click.option(
    "--max-calls",
    type=click.IntRange(min=1),
    metavar="N",
    help="Make at most N API calls in this run (for a daily quota); run again to continue.",
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Stop (resumable) when the API has answered only 429 for this long.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation before sending.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or summary; errors only.")
@click.option("--verbose", "-v", is_flag=True, help="Log every API call (tokens are never shown).")
def register(
    file: Path,
    webinar_key: str | None,
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    sheet: str | None,
    out: Path | None,
    dry_run: bool,
    rate: float,
    concurrency: int | None,
    timeout: float,
    resend_confirmation: bool,
    journal_path: Path | None,
    max_calls: int | None,
    give_up_after: float,
    yes: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Register everyone in FILE (.csv, .txt, .xlsx or .xlsm) for a webinar.

    Every row is checked before anything is sent; the report lists each row with its status
    and join URL. Interrupted or stopped, the same command run again carries on where it
    stopped, and never registers anyone twice.
    """
    from . import reader, report, validate

    with _errors_translated():
        out_path = out or report.default_path(file)
        if out_path.suffix.lower() not in report.SUFFIXES:
            raise UsageError(f"--out {out_path.name}: the report must end in .xlsx or .csv")
        target = (
            None
            if dry_run
            else _target(
                sandbox=sandbox,
                api_url=api_url,
                organizer_key=organizer_key,
                webinar_key=webinar_key,
                token_file=token_file,
            )
        )
        table = reader.read_table(file, sheet=sheet)
        for note in table.notes:
            echo(f"Warning: {note}", fg="yellow")
        plan = validate.validate(table)
        if not quiet:
            _show_plan(plan)
        if dry_run:
            if not quiet:
                echo(f"Dry run: nothing was sent. {len(plan.registrants):,} rows would be sent.")
            sys.exit(EXIT_OK if len(plan.registrants) == len(table.rows) else EXIT_ROWS)
        assert target is not None
        _setup_logging(verbose, secrets=[target.token or ""])
        options = SendOptions(
            rate=rate,
            concurrency=concurrency,
            timeout=timeout,
            resend=resend_confirmation,
            confirm=not yes,
            quiet=quiet,
            max_calls=max_calls,
            give_up_after=give_up_after,
        )
        record = RunRecord()
        with _journal(target, journal_path) as journal:
            if not quiet:
                echo(f"Journal:  {journal.path}")
            try:
                asyncio.run(_send(plan, target, journal, options, record))
            except (KeyboardInterrupt, asyncio.CancelledError):
                record.interrupted = True
            except _Declined:
                echo("Nothing was sent.")
                sys.exit(EXIT_OK)
        table_report = report.build(plan, record.results)
        written = report.write(table_report, out_path)
        if written != out_path:
            echo(
                f"Warning: {out_path.name} could not be replaced (is it open?); "
                f"the report was written to {written.name} instead",
                fg="yellow",
            )
        counts = table_report.counts()
        if not quiet:
            _show_summary(counts, record.outcome)
        click.echo(f"Report: {written}")
        sys.exit(_finish(record, counts))


def _finish(record: RunRecord, counts: Counter[Status]) -> int:
    """Say how the run ended, and with which exit code."""
    stopped = record.outcome.stopped if record.outcome else None
    pending = counts[Status.PENDING]
    again = f"{pending:,} rows are pending: run the same command again to continue."
    if record.interrupted:
        echo(f"Interrupted. {again}", fg="yellow")
        return EXIT_INTERRUPTED
    if isinstance(stopped, LimitReached):
        echo(f"Stopped early: {stopped}. {again}", fg="yellow")
        return EXIT_STOPPED
    if stopped is not None:
        fail(f"{stopped}. {again}", EXIT_API)
    return EXIT_OK if all(status.ok for status in counts if counts[status]) else EXIT_ROWS


def _share(name: str, help: str) -> Callable[[FC], FC]:
    """An option for a share of calls, from 0 to 1."""
    return click.option(
        name,
        type=click.FloatRange(0, 1),
        metavar="SHARE",
        default=0.0,
        show_default=True,
        help=help,
    )


@cli.command("sandbox")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1 to listen on (0: any free port).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    metavar="N",
    default=10.0,
    show_default=True,
    help="Calls allowed in any one second, as GoTo's limit (0: no limit).",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    default=0.3,
    show_default=True,
    help="Seconds added to every answer.",
)
@_share("--error-rate", "Share of calls answered with HTTP 503.")
@_share("--throttle-rate", "Share of calls answered with HTTP 429 although within the rate.")
@_share("--slow-rate", "Share of registrations answered only after --slow-seconds.")
@click.option(
    "--slow-seconds",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    default=60.0,
    show_default=True,
    help="How late a slow answer comes.",
)
@_share("--drop-rate", "Share of registrations whose answer is lost (connection closed).")
@click.option(
    "--no-dedupe", is_flag=True, help="Register a repeated e-mail again instead of answering 409."
)
@click.option(
    "--conflict-keys", is_flag=True, help="Put registrantKey and joinUrl into 409 answers."
)
@click.option(
    "--expire-after",
    type=click.IntRange(min=0),
    metavar="N",
    help="Refuse the token (403 InvalidToken) from call N+1 on.",
)
@click.option(
    "--quota",
    type=click.IntRange(min=0),
    metavar="N",
    help="Refuse every call (403, quota exceeded) once N people are registered.",
)
@click.option("--seed", type=int, help="Seed for keys and faults, to repeat a run exactly.")
def sandbox_command(
    port: int,
    rate: float,
    latency: float,
    error_rate: float,
    throttle_rate: float,
    slow_rate: float,
    slow_seconds: float,
    drop_rate: float,
    no_dedupe: bool,
    conflict_keys: bool,
    expire_after: int | None,
    quota: int | None,
    seed: int | None,
) -> None:
    """Serve the simulated GoTo Webinar API on 127.0.0.1 until Ctrl-C."""
    from .sandbox import Sandbox, SandboxConfig, SandboxServer

    config = SandboxConfig(
        rate=rate,
        latency=latency,
        error_rate=error_rate,
        throttle_rate=throttle_rate,
        slow_rate=slow_rate,
        slow_seconds=slow_seconds,
        drop_rate=drop_rate,
        dedupe=not no_dedupe,
        conflict_keys=conflict_keys,
        expire_after_calls=expire_after,
        quota=quota,
        seed=seed,
    )
    state = Sandbox(config)

    async def serve() -> None:
        async with SandboxServer(state, port=port) as server:
            click.echo(f"Sandbox API on {server.api_url}")
            echo(
                f"  organizer key {state.organizer_key}, webinar key {state.webinar_key}; "
                "any access token is accepted"
            )
            echo(
                f"  try: G2W_ACCESS_TOKEN=demo g2w-import register samples/registrants.csv "
                f"--api-url {server.api_url} --organizer-key {state.organizer_key} "
                f"--webinar-key {state.webinar_key}"
            )
            echo("  Press Ctrl-C to stop.")
            sys.stdout.flush()
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        stats = state.stats
        echo(
            f"Sandbox stopped after {stats['calls']:,} calls ({stats['throttled']:,} answered "
            f"429); it held {len(state.registrants()):,} registrants."
        )
    except OSError as exc:
        fail(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port", EXIT_USAGE
        )


class _Declined(Exception):
    """The person answered no to the confirmation."""


@contextmanager
def _errors_translated() -> Iterator[None]:
    try:
        yield
    except (UsageError, InputError, JournalError) as exc:
        fail(str(exc), EXIT_USAGE)
    except LimitReached as exc:
        fail(f"{exc}; nothing more was sent. Run the same command again later.", EXIT_STOPPED)
    except RunStopped as exc:
        fail(f"{exc}. Nothing more was sent.", EXIT_API)
    except ReportError as exc:
        fail(str(exc), EXIT_ROWS)
    except ImporterError as exc:
        fail(str(exc), EXIT_ROWS)


def _target(
    *,
    sandbox: bool,
    api_url: str | None,
    organizer_key: str | None,
    webinar_key: str | None,
    token_file: Path | None,
) -> Target:
    from .client import API_URL
    from .sandbox import ORGANIZER_KEY, WEBINAR_KEY, SandboxConfig
    from .validate import check_key

    if sandbox:
        if api_url or token_file:
            raise UsageError(
                "--sandbox runs against the built-in API; leave out --api-url and --token-file"
            )
        return Target(
            "http://sandbox.invalid/G2W/rest/v2",
            check_key("--organizer-key", organizer_key or ORGANIZER_KEY),
            check_key("--webinar-key", webinar_key or WEBINAR_KEY),
            "sandbox-token",
            SandboxConfig(rate=10.0, latency=0.25),
        )
    if not webinar_key:
        raise UsageError("--webinar-key is required (or try --sandbox to see how it works)")
    if not organizer_key:
        raise UsageError("no organizer key: pass --organizer-key or set G2W_ORGANIZER_KEY")
    url = (api_url or API_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"--api-url '{url}' is not a web address; it starts with https://")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise UsageError(
            f"--api-url '{url}' is not encrypted; use https:// so that the "
            "access token is not sent in the clear"
        )
    return Target(
        url,
        check_key("--organizer-key", organizer_key),
        check_key("--webinar-key", webinar_key),
        _token(token_file),
        None,
    )


def _token(token_file: Path | None) -> str:
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: cannot be read ({exc.strerror})") from exc
        if not token:
            raise UsageError(f"--token-file {token_file}: the file is empty")
        return token
    token = os.environ.get("G2W_ACCESS_TOKEN", "").strip()
    if not token:
        raise UsageError("no access token: set G2W_ACCESS_TOKEN or pass --token-file")
    return token


class _Redact(logging.Filter):
    """Second line of defence: no secret survives into a log line."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "<hidden>")
            record.msg, record.args = message, None
        return True


def _setup_logging(verbose: bool, *, secrets: list[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redact(secrets))
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in ("httpx", "httpcore", "h11", "asyncio"):
        logging.getLogger(name).setLevel(
            logging.INFO if verbose and name == "httpx" else logging.WARNING
        )


def _show_plan(plan: Plan) -> None:
    table = plan.table
    echo(
        f"File:     {table.describe()} (header in line {table.header_line}, "
        f"{len(table.rows):,} rows)"
    )
    if plan.problems:
        echo(f"Invalid:  {len(plan.problems):,} rows will not be sent:", fg="yellow")
        for line, problems in list(plan.problems.items())[:SHOWN_PROBLEMS]:
            for problem in problems:
                echo(f"  row {line}, {problem}")
        if len(plan.problems) > SHOWN_PROBLEMS:
            echo(f"  … and {len(plan.problems) - SHOWN_PROBLEMS:,} more rows (see the report)")
    if plan.duplicates:
        echo(f"Repeated: {len(plan.duplicates):,} rows repeat an earlier e-mail and are skipped")
    ignored = [h for h in plan.ignored_headers if h]
    if ignored:
        echo(
            "Not sent: columns "
            + ", ".join(f"'{h}'" for h in ignored)
            + " match no GoTo field (kept in the report)"
        )


@dataclass(frozen=True)
class SendOptions:
    """How to send, as the command line says."""

    rate: float
    concurrency: int | None
    timeout: float
    resend: bool
    confirm: bool
    quiet: bool
    max_calls: int | None
    give_up_after: float


@dataclass
class RunRecord:
    """What a run has settled so far; it survives an interrupt, so the report can be written."""

    results: dict[int, Result] = field(default_factory=dict)
    outcome: RunOutcome | None = None
    interrupted: bool = False


@contextmanager
def _journal(target: Target, path: Path | None) -> Iterator[Journal]:
    """The webinar's journal, locked for this run; a throwaway one for the in-process sandbox."""
    from .journal import Journal, default_path

    with contextlib.ExitStack() as stack:
        if path is None and target.sandbox is not None:
            # The in-process sandbox starts empty every time: so must its journal.
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="g2w-sandbox-"))
            path = Path(folder) / "journal.sqlite3"
        path = path or default_path(target.organizer_key, target.webinar_key)
        yield stack.enter_context(
            Journal.open(path, organizer_key=target.organizer_key, webinar_key=target.webinar_key)
        )


async def _send(
    plan: Plan, target: Target, journal: Journal, options: SendOptions, record: RunRecord
) -> None:
    from .client import G2WClient
    from .progress import Progress
    from .register import Registrar, default_concurrency

    quiet = options.quiet
    workers = options.concurrency or default_concurrency(options.rate)
    async with _http_client(target, workers, options.timeout) as http:
        client = G2WClient(http, target.organizer_key, target.webinar_key)
        registrar = Registrar(
            client,
            rate=options.rate,
            concurrency=workers,
            resend=options.resend,
            journal=journal,
            max_calls=options.max_calls,
            give_up_after=options.give_up_after,
        )
        with _interrupts(registrar, record):
            webinar = await registrar.call(client.get_webinar)
            if not quiet:
                _show_webinar(webinar, sandbox=target.sandbox is not None)
            prepared = await registrar.prepare(list(plan.registrants))
            record.results.update(prepared.settled)
            if not quiet:
                _show_preparation(len(plan.registrants), prepared)
            to_send = prepared.to_send
            if not to_send or registrar.stopping:
                record.outcome = registrar.outcome()
                return
            if (
                options.confirm
                and sys.stdin.isatty()
                and sys.stderr.isatty()
                and not click.confirm(
                    f"Register {len(to_send):,} people for this webinar?", default=True, err=True
                )
            ):
                raise _Declined
            progress = Progress(
                len(to_send), sys.stderr, terminal=sys.stderr.isatty(), enabled=not quiet
            )

            def settled(registrant: Registrant, result: Result) -> None:
                record.results[result.line] = result
                progress.advance()

            try:
                record.outcome = await registrar.run(to_send, settled)
            finally:
                progress.finish()


@contextmanager
def _interrupts(registrar: Registrar, record: RunRecord) -> Iterator[None]:
    """Ctrl-C or SIGTERM once: finish the calls under way, then stop. Twice: stop at once."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def interrupted() -> None:
        if record.interrupted:
            task.cancel()
            return
        record.interrupted = True
        registrar.stop()
        echo()
        echo(
            "Stopping: letting the calls under way finish (Ctrl-C again stops at once).",
            fg="yellow",
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


def _show_preparation(total: int, prepared: Preparation) -> None:
    if prepared.resumed:
        echo(f"Resuming: {prepared.resumed:,} of {total:,} rows were settled by an earlier run.")
    if prepared.found:
        echo(f"Found:    {prepared.found:,} already registered in GoTo Webinar; not sent again.")
    echo(f"To send:  {len(prepared.to_send):,} registrants")


def _http_client(target: Target, workers: int, timeout: float) -> httpx.AsyncClient:
    import httpx

    from . import __version__
    from .client import BearerToken
    from .sandbox import Sandbox, SandboxTransport

    transport = SandboxTransport(Sandbox(target.sandbox)) if target.sandbox else None
    return httpx.AsyncClient(
        base_url=target.api_url,
        auth=BearerToken(target.token or ""),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        headers={"User-Agent": f"g2w-import/{__version__}"},
        transport=transport,
    )


def _show_webinar(webinar: Webinar, *, sandbox: bool) -> None:
    when = f", starts {webinar.starts}" if webinar.starts else ""
    where = " [sandbox: nothing reaches GoTo]" if sandbox else ""
    echo(f"Webinar:  {webinar.subject} ({webinar.key}{when}){where}")


def _show_summary(counts: Counter[Status], outcome: RunOutcome | None) -> None:
    parts = [
        f"{counts[status]:,} {status.value.replace('_', ' ')}"
        for status in Status
        if counts[status]
    ]
    colour = "green" if all(status.ok for status in counts if counts[status]) else "yellow"
    echo("Done: " + (", ".join(parts) or "no rows") + ".", fg=colour)
    if outcome is not None and outcome.throttled:
        echo(f"The API asked to slow down {outcome.throttled:,} times; the pace was adjusted.")
