"""The ``g2w-import`` command: options in, stages called, progress and exit codes out.

Exit codes: 0 everyone registered (or already was); 1 finished, but some rows are invalid,
duplicate or failed; 2 usage error or unreadable input, nothing sent; 3 stopped early, run again
to continue; 4 the API refused the token or does not know the webinar; 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import click
from click.decorators import FC

from . import credentials, run
from .columns import fold
from .credentials import Credentials, Store
from .errors import (
    ImporterError,
    InputError,
    JournalError,
    LimitReached,
    ReportError,
    RunStopped,
    UsageError,
)
from .models import Form, Status

if TYPE_CHECKING:
    from collections import Counter

    from .client import Webinar
    from .progress import Progress
    from .register import Preparation
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
    try:
        cli(prog_name="g2w-import")
    except KeyboardInterrupt:  # before a run took Ctrl-C over: nothing was sent yet
        echo("\nInterrupted before anything was sent.", fg="yellow")
        sys.exit(EXIT_INTERRUPTED)


def _api_options(*, several: bool) -> Callable[[FC], FC]:
    """The options that say which webinar, as whom, and where the API is."""

    def apply(command: FC) -> FC:
        options = [
            click.option(
                "--webinar-key",
                "webinar_keys",
                metavar="KEY",
                multiple=several,
                help="The webinar's key: the long number in its settings."
                + (" Repeat it to register everyone for several webinars." if several else ""),
            ),
            click.option(
                "--organizer-key",
                metavar="KEY",
                envvar="G2W_ORGANIZER_KEY",
                show_envvar=True,
                help="The organizer's key (from your GoTo developer account).",
            ),
            click.option(
                "--token-file",
                type=click.Path(path_type=Path, dir_okay=False),
                help="Read the access token from this file. Default: $G2W_ACCESS_TOKEN.",
            ),
            click.option(
                "--api-url",
                envvar="G2W_API_URL",
                show_envvar=True,
                metavar="URL",
                help="The API's base URL.  [default: https://api.getgo.com/G2W/rest/v2]",
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


@cli.command()
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
    help="Stop (resumable) when the API has answered only 429 for this long.",
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
    from . import reader, report, run, validate

    console = ClickConsole(quiet=quiet)
    with _errors_translated():
        out_path = out or report.default_path(file)
        if out_path.suffix.lower() not in report.SUFFIXES:
            raise UsageError(f"--out {out_path.name}: the report must end in .xlsx or .csv")
        table = reader.read_table(file, sheet=sheet)
        for note in table.notes:
            echo(f"Warning: {note}", fg="yellow")
        offline = validate.validate(table)  # missing columns fail here, before any call
        if dry_run:
            console.plan(offline, None, None)
            if not quiet:
                echo(
                    f"Dry run: nothing was sent. {len(offline.registrants):,} rows would be "
                    "sent (the webinar's own questions are checked when sending)."
                )
            sys.exit(EXIT_OK if len(offline.registrants) == len(table.rows) else EXIT_ROWS)
        settings = table.settings
        keys = _webinar_keys(webinar_keys, settings, sandbox=sandbox)
        parts = run.split_by_webinar(table, keys)
        connection = _connection(
            sandbox=sandbox,
            api_url=api_url,
            token_file=token_file,
            organizer_key=organizer_key or settings.get("organizerKey"),
        )
        resend = resend_confirmation
        if resend is None:
            resend = settings.get("resendConfirmation", "").strip().casefold() in _YES
        _setup_logging(verbose, secrets=connection.secrets)
        options = run.Options(
            rate=rate,
            concurrency=concurrency,
            timeout=timeout,
            resend=resend,
            confirm=not yes,
            max_calls=max_calls,
            give_up_after=give_up_after,
        )
        record = run.RunRecord([run.WebinarRun(key, part) for key, part in parts.items()])
        with run.journals(connection, list(parts), journal_path) as opened:
            if not quiet and connection.sandbox is not None and journal_path is None:
                echo("Journal:  a temporary one (the in-process sandbox starts empty each time)")
            elif not quiet:
                for journal in opened.values():
                    echo(f"Journal:  {journal.path}")
            try:
                asyncio.run(run.send(record, connection, opened, options, console))
            except (KeyboardInterrupt, asyncio.CancelledError):
                record.interrupted = True
            except run.Declined:
                echo("Nothing was sent.")
                sys.exit(EXIT_OK)
        made = report.build_run(record, source=file, command=_command_line())
        written = report.write(made, out_path)
        if written != out_path:
            echo(
                f"Warning: {out_path.name} could not be replaced (is it open?); "
                f"the report was written to {written.name} instead",
                fg="yellow",
            )
        attention = report.write_attention(made, report.attention_path(file, out_path))
        counts = made.counts()
        if not quiet:
            _show_summary(counts, record)
            if attention is not None:
                echo(f"To fix:   {attention} (correct the rows and register that file)")
        click.echo(f"Report: {written}")
        sys.exit(_finish(record, counts))


_YES = frozenset({"true", "yes", "1", "y", "ja", "wahr"})


def _command_line() -> str:
    """The command as typed, to repeat in the report's Summary (never holds a token)."""
    return " ".join(["g2w-import", *sys.argv[1:]])


def _finish(record: run.RunRecord, counts: Counter[Status]) -> int:
    """Say how the run ended, and with which exit code."""
    stopped = record.stopped
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


@cli.command()
@click.argument(
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="registrants.xlsx",
    required=False,
)
@_api_options(several=False)
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def template(
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
    from . import template as templates

    with _errors_translated():
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; choose another name, or add --force")
        if path.suffix.lower() != ".xlsx":
            raise UsageError(f"{path.name}: the template is an Excel workbook; name it .xlsx")
        webinar = form = None
        if webinar_keys or sandbox:
            connection = _connection(
                sandbox=sandbox,
                api_url=api_url,
                token_file=token_file,
                organizer_key=organizer_key,
            )
            webinar, form = asyncio.run(
                _webinar_and_form(connection, _one_key(webinar_keys, sandbox))
            )
        try:
            templates.build(path, webinar=webinar, form=form)
        except OSError as exc:
            raise UsageError(f"{path}: cannot be written ({exc.strerror})") from exc
        if webinar is not None and form is not None:
            echo(f"Template for '{webinar.subject}' with {len(form.questions)} custom questions.")
        click.echo(f"Template: {path}")


@cli.command()
@_api_options(several=False)
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
    with _errors_translated():
        connection = _connection(
            sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
        )
        webinar, form = asyncio.run(_webinar_and_form(connection, _one_key(webinar_keys, sandbox)))
        if as_json:
            click.echo(json.dumps(_form_json(webinar, form), indent=2, ensure_ascii=False))
            return
        click.echo(f"{webinar.subject} (webinar {webinar.key})")
        for start, end in webinar.times:
            click.echo(
                f"  {start} to {end or '?'}"
                + (f" ({webinar.time_zone})" if webinar.time_zone else "")
            )
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
    help="The sign-in server.  [default: https://authentication.logmeininc.com]",
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
    from .client import API_URL
    from .oauth import sign_in_with_token
    from .validate import check_key

    with _errors_translated():
        place = credentials.store()
        if with_token:
            token = sys.stdin.readline().strip()
            if not token:
                raise UsageError(
                    "--with-token reads the token from standard input, and none "
                    "came; e.g. g2w-import login --with-token < token.txt"
                )
            signed = asyncio.run(
                sign_in_with_token(token, _api_url(api_url or API_URL), organizer_key)
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
            fg="green",
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
) -> Credentials:
    """The browser sign-in, against GoTo or against a sandbox served for the purpose."""
    from .client import API_URL
    from .oauth import AUTH_URL, sign_in
    from .sandbox import Sandbox, SandboxServer

    async with contextlib.AsyncExitStack() as stack:
        if sandbox:
            served = await stack.enter_async_context(SandboxServer(Sandbox(), port=0))
            auth_url, api_url = served.api_url.split("/G2W/")[0], served.api_url
            client_id, client_secret = client_id or "sandbox-client", client_secret or "sandbox"
        if not client_id or not client_secret:
            raise UsageError(
                "signing in needs your GoTo OAuth client: set G2W_CLIENT_ID and "
                "G2W_CLIENT_SECRET (or use --with-token with a Personal Access Token)"
            )
        return await sign_in(
            auth_url=(auth_url or AUTH_URL).rstrip("/"),
            api_url=_api_url(api_url or API_URL),
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
    with _errors_translated():
        try:
            signed, _, source = _credentials(token_file)
        except UsageError as exc:
            fail(str(exc), EXIT_API)
        click.echo(f"Using:     {source}")
        click.echo(f"Organizer: {signed.organizer_key or 'unknown (pass --organizer-key)'}")
        if signed.account:
            click.echo(f"Account:   {signed.account}")
        left = signed.expires_in()
        if left is None:
            click.echo("Expires:   unknown")
        else:
            when = dt.datetime.fromtimestamp(signed.expires_at or 0).astimezone()
            state = "expired" if left <= 0 else f"in {left / 60:.0f} minutes"
            click.echo(
                f"Expires:   {when:%Y-%m-%d %H:%M %Z} ({state})"
                + ("; renewed automatically" if signed.refresh_token else "")
            )


@cli.command()
def logout() -> None:
    """Forget the stored login."""
    with _errors_translated():
        place = credentials.store()
        if place.delete():
            echo(f"Signed out: the login was removed from {place.where()}.")
        else:
            echo("Not signed in: nothing to remove.")


def _table_out(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for number, row in enumerate(rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if number == 0:
            click.echo("  ".join("-" * width for width in widths))


def _form_json(webinar: Webinar, form: Form) -> dict[str, object]:
    return {
        "webinarKey": webinar.key,
        "subject": webinar.subject,
        "times": [{"startTime": start, "endTime": end} for start, end in webinar.times],
        "timeZone": webinar.time_zone,
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


async def _webinar_and_form(connection: run.Connection, key: str) -> tuple[Webinar, Form]:
    from .client import G2WClient
    from .register import Registrar

    async with run.http_client(connection, 4, 30.0) as http:
        client = G2WClient(http, connection.organizer_key, key)
        registrar = Registrar(client, concurrency=1)
        return await registrar.call(client.get_webinar), await registrar.call(client.get_form)


def _one_key(key: str | None, sandbox: bool) -> str:
    from .sandbox import WEBINAR_KEY
    from .validate import check_key

    if key:
        return check_key("--webinar-key", key)
    if sandbox:
        return WEBINAR_KEY
    raise UsageError("--webinar-key is required (or try --sandbox to see how it works)")


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
    except (ReportError, ImporterError) as exc:
        fail(str(exc), EXIT_ROWS)
    except KeyboardInterrupt:  # outside a run's own handling, e.g. a second Ctrl-C at its end
        echo(
            "\nInterrupted. The journal keeps everything settled: run the same command again "
            "(it also writes the report).",
            fg="yellow",
        )
        sys.exit(EXIT_INTERRUPTED)


def _connection(
    *, sandbox: bool, api_url: str | None, organizer_key: str | None, token_file: Path | None
) -> run.Connection:
    from .client import API_URL
    from .oauth import RefreshingAuth
    from .sandbox import ORGANIZER_KEY, SandboxConfig
    from .validate import check_key

    if sandbox:
        if api_url or token_file:
            raise UsageError(
                "--sandbox runs against the built-in API; leave out --api-url and --token-file"
            )
        return run.Connection(
            run.SANDBOX_URL,
            check_key("--organizer-key", organizer_key or ORGANIZER_KEY),
            RefreshingAuth(Credentials("sandbox-token"), None),
            SandboxConfig(rate=10.0, latency=0.25),
        )
    credentials, store, _ = _credentials(token_file)
    organizer_key = organizer_key or credentials.organizer_key
    if not organizer_key:
        raise UsageError("no organizer key: pass --organizer-key or set G2W_ORGANIZER_KEY")
    url = _api_url(api_url or API_URL)
    return run.Connection(
        url, check_key("--organizer-key", organizer_key), RefreshingAuth(credentials, store)
    )


def _api_url(url: str) -> str:
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"--api-url '{url}' is not a web address; it starts with https://")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise UsageError(
            f"--api-url '{url}' is not encrypted; use https:// so that the "
            "access token is not sent in the clear"
        )
    return url


def _credentials(token_file: Path | None) -> tuple[Credentials, Store | None, str]:
    """The access token to use, in order: the environment, --token-file, the stored login."""
    token = os.environ.get("G2W_ACCESS_TOKEN", "").strip()
    if token:
        return Credentials(token), None, "the environment variable G2W_ACCESS_TOKEN"
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: cannot be read ({exc.strerror})") from exc
        if not token:
            raise UsageError(f"--token-file {token_file}: the file is empty")
        return Credentials(token), None, f"the token file {token_file}"
    place = credentials.store()
    stored = place.load()
    if stored is None:
        raise UsageError(
            "not signed in: run g2w-import login (or set G2W_ACCESS_TOKEN, or pass --token-file)"
        )
    return stored, place, f"the stored login in {place.where()}"


def _webinar_keys(
    given: tuple[str, ...], settings: Mapping[str, str], *, sandbox: bool
) -> tuple[str, ...]:
    from .sandbox import WEBINAR_KEY
    from .validate import check_key

    if given:
        return tuple(dict.fromkeys(check_key("--webinar-key", key) for key in given))
    if settings.get("webinarKey", "").strip():
        return (check_key("webinarKey on the Settings sheet", settings["webinarKey"]),)
    return (WEBINAR_KEY,) if sandbox else ()


class _Redact(logging.Filter):
    """Second line of defence: no secret survives into a log line, renewed tokens included."""

    def __init__(self, secrets: Callable[[], list[str]]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        hidden = [s for s in self.secrets() if len(s) >= 4 and s in message]
        if hidden:
            for secret in hidden:
                message = message.replace(secret, "<hidden>")
            record.msg, record.args = message, None
        return True


def _setup_logging(verbose: bool, *, secrets: Callable[[], list[str]]) -> None:
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


class ClickConsole:
    """The run's console on stderr: plan, questions, progress; silent but for errors if quiet."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet

    def say(self, message: str = "", colour: str | None = None) -> None:
        if not self.quiet:
            echo(message, fg=colour)

    def confirm(self, question: str) -> bool:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            return True
        return click.confirm(question, default=True, err=True)

    def progress(self, total: int) -> Progress:
        from .progress import Progress

        return Progress(total, sys.stderr, terminal=sys.stderr.isatty(), enabled=not self.quiet)

    def plan(self, plan: Plan, webinar: Webinar | None, prepared: Preparation | None) -> None:
        if self.quiet:
            return
        table = plan.table
        if webinar is not None:
            when = f", starts {webinar.starts}" if webinar.starts else ""
            sandboxed = " [sandbox: nothing reaches GoTo]" if webinar_is_sandbox(webinar) else ""
            echo(f"Webinar:  {webinar.subject} ({webinar.key}{when}){sandboxed}")
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
            echo(
                f"Repeated: {len(plan.duplicates):,} rows repeat an earlier e-mail and are skipped"
            )
        ignored = [h for h in plan.ignored_headers if h and fold(h) != "webinarkey"]
        if ignored:
            echo(
                "Not sent: columns "
                + ", ".join(f"'{h}'" for h in ignored)
                + " match no field or question of the webinar (kept in the report)"
            )
        if prepared is None:
            return
        total = len(plan.registrants)
        if prepared.resumed:
            echo(
                f"Resuming: {prepared.resumed:,} of {total:,} rows were settled by an earlier run."
            )
        if prepared.found:
            echo(
                f"Found:    {prepared.found:,} already registered in GoTo Webinar; not sent again."
            )
        echo(f"To send:  {len(prepared.to_send):,} registrants")


def webinar_is_sandbox(webinar: Webinar) -> bool:
    """Whether a webinar comes from the built-in sandbox (its subject says so)."""
    return webinar.subject.endswith("(sandbox)")


def _show_summary(counts: Counter[Status], record: run.RunRecord) -> None:
    parts = [
        f"{counts[status]:,} {status.value.replace('_', ' ')}"
        for status in Status
        if counts[status]
    ]
    colour = "green" if all(status.ok for status in counts if counts[status]) else "yellow"
    echo("Done: " + (", ".join(parts) or "no rows") + ".", fg=colour)
    throttled = sum(w.outcome.throttled for w in record.webinars if w.outcome is not None)
    if throttled:
        echo(f"The API asked to slow down {throttled:,} times; the pace was adjusted.")
