"""The ``g2w-import`` command: click commands only. Options in, one call, exit code out."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from click.decorators import FC

from . import credentials, files, lookup, oauth, pipeline, report, settings, template
from .connection import Access
from .console import Console, setup_logging
from .errors import EXIT_API, EXIT_CODES, EXIT_INTERRUPTED, EXIT_USAGE, ImporterError, UsageError
from .events import StopSignal
from .models import Form, Webinar
from .sandbox import Sandbox, SandboxConfig, SandboxServer
from .settings import API_URL, check_key

EXIT_EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES)


def echo(message: str = "", *, err: bool = True, colour: str | None = None) -> None:
    """A message for the person: on stderr unless said otherwise, coloured only on a terminal."""
    click.echo(click.style(message, fg=colour) if colour else message, err=err)


def fail(message: str, code: int) -> NoReturn:
    """Print one line and exit with ``code``."""
    echo(f"Error: {message}", colour="red")
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="g2w-importer", prog_name="g2w-import")
def cli() -> None:
    """Register a spreadsheet of people for a GoTo Webinar and collect their join URLs."""


def main() -> None:
    """Console entry point."""
    try:
        cli(prog_name="g2w-import")
    except KeyboardInterrupt:  # before a run took Ctrl-C over: nothing was sent yet
        echo("\nInterrupted before anything was sent.", colour="yellow")
        sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """The one place where errors become a line on stderr and an exit code."""
    try:
        yield
    except pipeline.Declined as exc:
        echo(str(exc))
        sys.exit(exc.exit_code)
    except ImporterError as exc:
        fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, asyncio.CancelledError):  # a second Ctrl-C: stop at once
        echo(
            "\nInterrupted. The journal keeps everything settled: run the same command again "
            "(it also writes the report).",
            colour="yellow",
        )
        sys.exit(EXIT_INTERRUPTED)


class _Interrupts:
    """Ctrl-C or SIGTERM once: no new rows, the calls under way finish, the report is written.
    Twice: the run stops at once (its journal has everything settled), or, if the report is
    being written, that is abandoned without leaving half a file. At the question before
    sending, once is enough: nothing was sent."""

    def __init__(self, stop: StopSignal, console: Console) -> None:
        self.stop = stop
        self.console = console
        #: whether the event loop is running (the run, or asyncio closing it)
        self.in_loop = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Interrupts:
        self._previous = {number: signal.signal(number, self._handle) for number in _SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.console.asking:
            raise KeyboardInterrupt
        if not self.stop.is_set():
            self.stop.set()
            self.console.say()
            self.console.say(
                "Stopping: letting the calls under way finish (interrupt again to stop at once).",
                "yellow",
            )
        elif not self.stop.abort() and not self.in_loop:
            files.abandon()
            self.console.line(
                "\nInterrupted while writing the report. The journal keeps everything "
                "settled: run the same command again (it also writes the report).",
                "yellow",
            )
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _api_options(*, several: bool = False, webinar: bool = True) -> Callable[[FC], FC]:
    """The options that say which webinar, as whom, and where the API is."""

    def apply(command: FC) -> FC:
        options = [
            *[
                click.option(
                    "--webinar-key",
                    "webinar_keys",
                    metavar="KEY",
                    multiple=several,
                    help="The webinar's key: the long number in its settings (see g2w-import "
                    "webinars)."
                    + (" Repeat it to register everyone for several webinars." if several else ""),
                )
            ][:webinar],
            click.option(
                "--organizer-key",
                metavar="KEY",
                envvar="G2W_ORGANIZER_KEY",
                show_envvar=True,
                help="The organizer's key.  [default: the login's]",
            ),
            click.option(
                "--token-file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Read the access token from this file (when $G2W_ACCESS_TOKEN is not set; "
                "instead of the stored login).",
            ),
            click.option(
                "--api-url",
                envvar="G2W_API_URL",
                show_envvar=True,
                metavar="URL",
                help=f"The API's base URL.  [default: {API_URL}]",
            ),
            click.option(
                "--sandbox",
                is_flag=True,
                help="Use the built-in simulated API: no account or token needed.",
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return apply


@cli.command(epilog=EXIT_EPILOG)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@_api_options(several=True)
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
    help="Check every row as a real run would (asking the API only what it can read), "
    "show the plan, and send nothing.",
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
    default=None,
    help="Have GoTo e-mail the confirmation again to people already registered.  "
    "[default: the Settings sheet's resendConfirmation, else no]",
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
    help="Stop (resumable) when the API has answered only 429s or errors, or could not be "
    "reached, for this long.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation before sending.")
@click.option("--quiet", "-q", is_flag=True, help="No progress or summary; errors only.")
@click.option("--verbose", "-v", is_flag=True, help="Log every API call (tokens are never shown).")
def register(
    file: Path,
    webinar_keys: tuple[str, ...],
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
    resend_confirmation: bool | None,
    journal_path: Path | None,
    max_calls: int | None,
    give_up_after: float,
    yes: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Register everyone in FILE (.csv, .txt, .xlsx or .xlsm) for a webinar.

    Every row is checked before anything is sent, against the webinar's own fields and
    questions; the report lists each row with its status and join URL. Interrupted or
    stopped, the same command run again carries on where it stopped, and never registers
    anyone twice.
    """
    console = Console(quiet=quiet, ask=not yes)
    stop = StopSignal()
    setup_logging(verbose)
    with _errors(), _Interrupts(stop, console) as interrupts:
        out_path = out or report.default_path(file)
        if out_path.suffix.lower() not in report.SUFFIXES:
            raise UsageError(f"--out {out_path.name}: the report must end in .xlsx or .csv")
        access = Access(
            sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
        )
        options = pipeline.RunOptions(
            webinar_keys=webinar_keys,
            sheet=sheet,
            rate=rate,
            concurrency=concurrency,
            timeout=timeout,
            resend=resend_confirmation,
            journal=journal_path,
            max_calls=max_calls,
            give_up_after=give_up_after,
            dry_run=dry_run,
            resume_hint=f"run the same command again: {_command_line()}",
        )
        interrupts.in_loop = True
        outcome = asyncio.run(pipeline.run(file, access, options, console, stop))
        interrupts.in_loop = False
        if dry_run:
            would = sum(1 for row in outcome.rows if row.status.value == "pending")
            checked = (
                ""
                if outcome.checked_against_webinar
                else " (the webinar's own questions are checked when sending)"
            )
            console.say(f"Dry run: nothing was sent. {would:,} rows would be sent{checked}.")
            sys.exit(outcome.exit_code)
        written = outcome.write(out_path)
        if written != out_path:
            echo(
                f"Warning: {out_path.name} could not be replaced (is it open?); "
                f"the report was written to {written.name} instead",
                colour="yellow",
            )
        attention = outcome.write_attention(report.attention_path(file, out_path))
        console.summary(outcome)
        if attention is not None:
            console.say(f"To fix:   {attention} (correct the rows and register that file)")
        console.ending(outcome)
        click.echo(f"Report: {written}")
    sys.exit(outcome.exit_code)


def _command_line() -> str:
    """The command as typed, to repeat in the report's Summary (never holds a token)."""
    return " ".join(["g2w-import", *sys.argv[1:]])


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
    help="Refuse each access token (403 InvalidToken) after N calls.",
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
        token_calls=expire_after,
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


@cli.command("template")
@click.argument(
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="registrants.xlsx",
    required=False,
)
@_api_options()
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def template_command(
    path: Path,
    webinar_keys: str | None,
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    force: bool,
) -> None:
    """Write the Excel template to fill in (PATH, default registrants.xlsx).

    With --webinar-key, the template gets a column for each of the webinar's custom
    questions, with drop-downs of the allowed answers, and the key on its Settings sheet.
    """
    with _errors():
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; choose another name, or add --force")
        if path.suffix.lower() != ".xlsx":
            raise UsageError(f"{path.name}: the template is an Excel workbook; name it .xlsx")
        webinar = form = None
        if webinar_keys or sandbox:
            access = Access(
                sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
            )
            webinar, form = asyncio.run(lookup.webinar_and_form(access, webinar_keys))
        try:
            template.build(path, webinar=webinar, form=form)
        except OSError as exc:
            raise UsageError(f"{path}: cannot be written ({exc.strerror})") from exc
        if webinar is not None and form is not None:
            echo(f"Template for '{webinar.subject}' with {len(form.questions)} custom questions.")
        click.echo(f"Template: {path}")


@cli.command()
@_api_options()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table.")
def fields(
    webinar_keys: str | None,
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    as_json: bool,
) -> None:
    """Show a webinar's registration fields and custom questions."""
    with _errors():
        access = Access(
            sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
        )
        webinar, form = asyncio.run(lookup.webinar_and_form(access, webinar_keys))
    if as_json:
        click.echo(json.dumps(_form_json(webinar, form), indent=2, ensure_ascii=False))
        return
    click.echo(f"{webinar.subject} (webinar {webinar.key})")
    zone = f" ({webinar.time_zone})" if webinar.time_zone else ""
    for start, end in webinar.times:
        click.echo(f"  {start} to {end or '?'}{zone}")
    click.echo("")
    rows: list[tuple[str, ...]] = [("field", "required", "max", "answers")]
    rows += [
        (f.name, "yes" if f.required else "", str(f.max_size or ""), ", ".join(f.answers))
        for f in form.fields
    ]
    _table_out(rows)
    click.echo("")
    if not form.questions:
        click.echo("No custom questions.")
        return
    rows = [("question", "required", "type", "max", "answers")]
    rows += [
        (
            q.text,
            "yes" if q.required else "",
            q.kind,
            str(q.max_size or ""),
            ", ".join(a.text for a in q.answers),
        )
        for q in form.questions
    ]
    _table_out(rows)


def _table_out(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
        if number == 0:
            click.echo("  ".join("-" * width for width in widths))


def _form_json(webinar: Webinar, form: Form) -> dict[str, object]:
    return {
        **_webinar_json(webinar),
        "fields": [
            {
                "field": f.name,
                "required": f.required,
                "maxSize": f.max_size,
                "answers": list(f.answers),
            }
            for f in form.fields
        ],
        "questions": [
            {
                "questionKey": q.key,
                "question": q.text,
                "required": q.required,
                "type": q.kind,
                "maxSize": q.max_size,
                "answers": [{"answerKey": a.key, "answer": a.text} for a in q.answers],
            }
            for q in form.questions
        ],
    }


@cli.command()
@click.option(
    "--client-id",
    envvar="G2W_CLIENT_ID",
    show_envvar=True,
    metavar="ID",
    help="Your GoTo OAuth client's id.",
)
@click.option(
    "--client-secret",
    envvar="G2W_CLIENT_SECRET",
    show_envvar=True,
    metavar="SECRET",
    help="Your GoTo OAuth client's secret (better in the environment than here).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 for GoTo to send the browser back to; match the redirect "
    "URI registered for your client (http://127.0.0.1:PORT/callback). 0: any free port.",
)
@click.option(
    "--auth-url",
    envvar="G2W_AUTH_URL",
    show_envvar=True,
    metavar="URL",
    help=f"The sign-in server.  [default: {oauth.AUTH_URL}]",
)
@click.option(
    "--api-url",
    envvar="G2W_API_URL",
    show_envvar=True,
    metavar="URL",
    help="The API's base URL, to look up the organizer key when sign-in does not say.",
)
@click.option(
    "--with-token",
    is_flag=True,
    help="Read an access token (e.g. a Personal Access Token) from standard input.",
)
@click.option(
    "--organizer-key",
    envvar="G2W_ORGANIZER_KEY",
    show_envvar=True,
    metavar="KEY",
    help="The organizer key, if it cannot be looked up.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Sign in to a sandbox served for the purpose, to see how it works.",
)
@click.option("--no-browser", is_flag=True, help="Only print the sign-in address.")
@click.option(
    "--wait",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the browser to come back.",
)
def login(
    client_id: str | None,
    client_secret: str | None,
    port: int,
    auth_url: str | None,
    api_url: str | None,
    with_token: bool,
    organizer_key: str | None,
    sandbox: bool,
    no_browser: bool,
    wait: float,
) -> None:
    """Sign in once; every later command uses (and renews) the stored login."""
    with _errors():
        place = credentials.store()
        if with_token:
            token = sys.stdin.readline().strip()
            if not token:
                raise UsageError(
                    "--with-token reads the token from standard input, and none "
                    "came; e.g. g2w-import login --with-token < token.txt"
                )
            signed = asyncio.run(
                oauth.sign_in_with_token(token, settings.api_url(api_url), organizer_key)
            )
        else:
            signed = asyncio.run(
                _sign_in(
                    client_id, client_secret, port, auth_url, api_url, sandbox, no_browser, wait
                )
            )
        if signed.organizer_key:
            check_key("the organizer key", signed.organizer_key)
        place.save(signed)
        who = f" as {signed.account}" if signed.account else ""
        echo(
            f"Signed in{who} (organizer {signed.organizer_key}); the login is kept in "
            f"{place.where()}.",
            colour="green",
        )


def _open_browser(address: str) -> None:
    import webbrowser

    with contextlib.suppress(Exception):  # no browser here: the address was printed
        webbrowser.open(address)


async def _sign_in(
    client_id: str | None,
    client_secret: str | None,
    port: int,
    auth_url: str | None,
    api_url: str | None,
    sandbox: bool,
    no_browser: bool,
    wait: float,
) -> credentials.Credentials:
    """The browser sign-in, against GoTo or against a sandbox served for the purpose."""
    async with contextlib.AsyncExitStack() as stack:
        if sandbox:
            served = await stack.enter_async_context(SandboxServer(Sandbox(), port=0))
            auth_url, api_url = served.base_url, served.api_url
            client_id, client_secret = client_id or "sandbox-client", client_secret or "sandbox"
        if not client_id or not client_secret:
            raise UsageError(
                "signing in needs your GoTo OAuth client: set G2W_CLIENT_ID and "
                "G2W_CLIENT_SECRET (or use --with-token with a Personal Access Token)"
            )
        return await oauth.sign_in(
            auth_url=(auth_url or oauth.AUTH_URL).rstrip("/"),
            api_url=settings.api_url(api_url),
            client_id=client_id,
            client_secret=client_secret,
            port=port,
            wait=wait,
            show=echo,
            open_browser=None if no_browser else _open_browser,
        )


@cli.command()
@click.option(
    "--token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Check this token file instead of the environment and the stored login.",
)
def whoami(token_file: Path | None) -> None:
    """Show who is signed in, where the login is kept and when the token expires."""
    with _errors():
        try:
            signed, _, source = credentials.resolve(token_file=token_file)
        except UsageError as exc:
            fail(str(exc), EXIT_API)
    click.echo(f"Using:     {source}")
    click.echo(f"Organizer: {signed.organizer_key or 'unknown (pass --organizer-key)'}")
    if signed.account:
        click.echo(f"Account:   {signed.account}")
    left = signed.expires_in()
    if left is None:
        click.echo("Expires:   unknown")
        return
    when = dt.datetime.fromtimestamp(signed.expires_at or 0).astimezone()
    state = "expired" if left <= 0 else f"in {left / 60:.0f} minutes"
    renewed = "; renewed automatically" if signed.refresh_token else ""
    click.echo(f"Expires:   {when:%Y-%m-%d %H:%M %Z} ({state}){renewed}")


@cli.command()
@_api_options(webinar=False)
@click.option(
    "--from",
    "start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The first day, YYYY-MM-DD.  [default: today]",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The last day, YYYY-MM-DD.  [default: a year after --from]",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table.")
def webinars(
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    start: dt.datetime | None,
    end: dt.datetime | None,
    as_json: bool,
) -> None:
    """List your webinars with their keys, subjects and first start times."""
    first = start.date() if start else dt.date.today()
    last = end.date() if end else first + dt.timedelta(days=365)
    with _errors():
        if last < first:
            raise UsageError(f"--to {last} is before --from {first}")
        access = Access(
            sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
        )
        found = asyncio.run(lookup.webinars(access, first, last))
    if as_json:
        click.echo(json.dumps([_webinar_json(w) for w in found], indent=2, ensure_ascii=False))
        return
    if not found:
        echo(f"No webinars between {first} and {last}.")
        return
    rows: list[tuple[str, ...]] = [("key", "starts", "time zone", "subject")]
    rows += [(w.key, w.starts or "", w.time_zone or "", w.subject) for w in found]
    _table_out(rows)


def _webinar_json(webinar: Webinar) -> dict[str, object]:
    return {
        "webinarKey": webinar.key,
        "subject": webinar.subject,
        "times": [{"startTime": start, "endTime": end} for start, end in webinar.times],
        "timeZone": webinar.time_zone,
    }


@cli.command()
def logout() -> None:
    """Forget the stored login."""
    with _errors():
        place = credentials.store()
        if place.delete():
            echo(f"Signed out: the login was removed from {place.where()}.")
        else:
            echo("Not signed in: nothing to remove.")


@cli.command()
@_api_options(webinar=False)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 for the page (0: any free port).",
)
@click.option("--no-browser", is_flag=True, help="Only print the page's address.")
@click.option(
    "--client-id",
    envvar="G2W_CLIENT_ID",
    show_envvar=True,
    metavar="ID",
    help="Your GoTo OAuth client's id, for the page's Sign in button.",
)
@click.option(
    "--client-secret",
    envvar="G2W_CLIENT_SECRET",
    show_envvar=True,
    metavar="SECRET",
    help="Your GoTo OAuth client's secret (better in the environment than here).",
)
@click.option(
    "--auth-url",
    envvar="G2W_AUTH_URL",
    show_envvar=True,
    metavar="URL",
    help=f"The sign-in server.  [default: {oauth.AUTH_URL}]",
)
@click.option(
    "--sign-in-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 for GoTo to send the browser back to after signing in from the "
    "page; match your client's redirect URI (http://127.0.0.1:PORT/callback). 0: any free port.",
)
def ui(
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    port: int,
    no_browser: bool,
    client_id: str | None,
    client_secret: str | None,
    auth_url: str | None,
    sign_in_port: int,
) -> None:
    """Open the importer as a page in your browser, served on this computer only.

    Get the template, choose the file and the webinar, see the plan, register, and download
    the report, by pointing and clicking. The address printed carries a secret: the page
    answers nobody without it. Uploaded files and reports stay in your user data folder.
    """
    with _errors():
        from .web import server  # Starlette and uvicorn load only for this command

        access = Access(
            sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
        )
        client = None
        if client_id and client_secret:
            client = server.OAuthClient(
                client_id, client_secret, auth_url or oauth.AUTH_URL, sign_in_port
            )

        def started(address: str) -> None:
            click.echo(f"Page: {address}")
            echo("  The page works on this computer only; the address is its key, keep it private.")
            echo("  Press Ctrl-C to stop (an import under way stops as with g2w-import register).")
            sys.stdout.flush()

        # uvicorn stops gracefully on Ctrl-C, then passes it on
        with contextlib.suppress(KeyboardInterrupt):
            server.serve(
                access,
                port=port,
                client=client,
                started=started,
                open_browser=None if no_browser else _open_browser,
            )
        echo("The page was stopped.")
