"""The ``g2w-import`` command: click commands only. Options in, one call, exit code out."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import click
from click.decorators import FC

from . import (
    cancel,
    credentials,
    export,
    files,
    lookup,
    oauth,
    pipeline,
    report,
    settings,
    template,
)
from .connection import Access
from .console import Console, setup_logging
from .errors import (
    EXIT_API,
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_USAGE,
    ImporterError,
    UsageError,
)
from .events import StopSignal
from .manage import Done, ManageOptions
from .models import Form, Webinar
from .sandbox import Sandbox, SandboxConfig, SandboxServer, serve
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
            console.dry_run(outcome)
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


def _manage_options(*, out: str, journal: bool = True) -> Callable[[FC], FC]:
    """The options export, cancel and undo share with register: the report, the journal, pace
    and budget, asking, and what is shown."""

    def apply(command: FC) -> FC:
        options = [
            click.option(
                "--out",
                type=click.Path(path_type=Path, dir_okay=False),
                help=f"Where to write the report, .xlsx or .csv.  [default: {out}]",
            ),
            *[
                click.option(
                    "--journal",
                    "journal_path",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="The webinar's journal (SQLite), as register keeps it.  "
                    "[default: one per webinar in your user data folder]",
                )
            ][:journal],
            click.option(
                "--dry-run", is_flag=True, help="Show the plan; change nothing, write nothing."
            ),
            click.option(
                "--rate",
                type=click.FloatRange(min=0.1, max=1000),
                metavar="N",
                default=10.0,
                show_default=True,
                help="API calls per second: the API's rate limit (GoTo's default is 10).",
            ),
            click.option(
                "--concurrency",
                type=click.IntRange(1, 256),
                metavar="N",
                help="Requests in flight at most.  [default: twice the rate]",
            ),
            click.option(
                "--timeout",
                type=click.FloatRange(min=1),
                metavar="SECONDS",
                default=30.0,
                show_default=True,
                help="Seconds to wait for one answer.",
            ),
            click.option(
                "--max-calls",
                type=click.IntRange(min=1),
                metavar="N",
                help="Make at most N API calls in this run (for a daily quota); run again to "
                "continue.",
            ),
            click.option(
                "--give-up-after",
                type=click.FloatRange(min=1),
                default=60.0,
                show_default=True,
                metavar="SECONDS",
                help="Stop (resumable) when the API has answered only 429s or errors, or could "
                "not be reached, for this long.",
            ),
            click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
            click.option("--quiet", "-q", is_flag=True, help="No plan, progress or summary."),
            click.option(
                "--verbose", "-v", is_flag=True, help="Log every API call (tokens are never shown)."
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return apply


Start = Callable[[ManageOptions, Console, StopSignal], Coroutine[Any, Any, Done]]
_MANAGE_CODES = {
    EXIT_OK: "done: everyone asked for is cancelled or not registered; the list is complete",
    EXIT_ROWS: "finished, but some rows failed or are pending",
}
MANAGE_EPILOG = "\b\nExit codes:\n" + "\n".join(
    f"  {code:<4} {_MANAGE_CODES.get(code, text)}" for code, text in EXIT_CODES
)


def _manage(
    start: Start, webinar_key: str | None, sheet: str | None, common: dict[str, Any]
) -> NoReturn:
    """Run export, cancel or undo as register runs: errors in one line, Ctrl-C handled, then
    the summary, the report's path and the exit code."""
    console = Console(quiet=common["quiet"], ask=not common["yes"])
    stop = StopSignal()
    setup_logging(common["verbose"])
    with _errors(), _Interrupts(stop, console) as interrupts:
        options = ManageOptions(
            webinar_key=webinar_key,
            out=common["out"],
            journal=common.get("journal_path"),
            sheet=sheet,
            rate=common["rate"],
            concurrency=common["concurrency"],
            timeout=common["timeout"],
            max_calls=common["max_calls"],
            give_up_after=common["give_up_after"],
            dry_run=common["dry_run"],
            resume_hint=f"run the same command again: {_command_line()}",
        )
        interrupts.in_loop = True
        done = asyncio.run(start(options, console, stop))
        interrupts.in_loop = False
    if done.dry_run:
        console.say("Dry run: nothing was changed or written.")
    else:
        console.say(f"Done: {done.summary()}.", "green" if done.exit_code == EXIT_OK else "yellow")
    ending = done.ending()
    if ending:
        console.line(ending, "red" if done.exit_code == EXIT_API else "yellow")
    if done.report is not None:
        click.echo(f"Report: {done.report}")
    sys.exit(done.exit_code)


def _access(
    sandbox: bool, api_url: str | None, token_file: Path | None, organizer_key: str | None
) -> Access:
    return Access(
        sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
    )


@cli.command("export", epilog=MANAGE_EPILOG)
@_api_options()
@click.option(
    "--merge",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Instead of a list, fill registrantKey, joinUrl and status into a copy of FILE (.csv, "
    ".txt, .xlsx or .xlsm), matched by e-mail; its own columns stay as they are.",
)
@click.option("--sheet", metavar="NAME", help="The Excel sheet of the --merge file to read.")
@click.option(
    "--answers/--no-answers",
    default=True,
    show_default=True,
    help="Read each registrant's answers to the custom questions (one call per registrant).",
)
@_manage_options(
    out="SUBJECT-registrants.xlsx here, or FILE-registrants beside the --merge FILE",
    journal=False,
)
def export_command(
    webinar_keys: str | None,
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    merge: Path | None,
    sheet: str | None,
    answers: bool,
    **common: Any,
) -> None:
    """Write everyone registered for a webinar, with their join URLs, to a report.

    Everyone is listed, whatever channel they registered through: names, e-mail, status,
    registration date, registrant key, join URL and the answers to custom questions. Nothing
    in GoTo is changed.
    """
    access = _access(sandbox, api_url, token_file, organizer_key)
    _manage(
        lambda options, console, stop: export.export(
            access, options, console, stop, merge=merge, answers=answers
        ),
        webinar_keys,
        sheet,
        common,
    )


@cli.command("cancel", epilog=MANAGE_EPILOG)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@_api_options()
@click.option("--sheet", metavar="NAME", help="The Excel sheet to read.")
@_manage_options(out="FILE-cancelled.xlsx")
def cancel_command(
    file: Path,
    webinar_keys: str | None,
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    sheet: str | None,
    **common: Any,
) -> None:
    """Unregister the people in FILE from a webinar, matched by e-mail.

    Whoever registered them, everyone in FILE who is registered for the webinar is cancelled;
    the report says per row cancelled, not_registered, failed or pending. Interrupted or
    stopped, the same command run again carries on, and cancels nobody twice.
    """
    access = _access(sandbox, api_url, token_file, organizer_key)
    _manage(
        lambda options, console, stop: cancel.cancel(file, access, options, console, stop),
        webinar_keys,
        sheet,
        common,
    )


@cli.command("undo", epilog=MANAGE_EPILOG)
@_api_options()
@click.option(
    "--file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Undo only the registrations of the people in this file.",
)
@click.option("--sheet", metavar="NAME", help="The Excel sheet of --file to read.")
@_manage_options(out="SUBJECT-undone.xlsx here, or FILE-undone.xlsx beside --file")
def undo_command(
    webinar_keys: str | None,
    organizer_key: str | None,
    token_file: Path | None,
    api_url: str | None,
    sandbox: bool,
    file: Path | None,
    sheet: str | None,
    **common: Any,
) -> None:
    """Cancel the registrations g2w-import made for a webinar, as its journal records them.

    People it found registered already, and people who came through another channel, are left
    alone. Registering the same file again afterwards registers them again (for instance once
    the right webinar key is in place).
    """
    access = _access(sandbox, api_url, token_file, organizer_key)
    _manage(
        lambda options, console, stop: cancel.undo(access, options, console, stop, file),
        webinar_keys,
        sheet,
        common,
    )


#: the sandbox's faults, each a share of calls from 0 to 1: option, SandboxConfig field, help
_FAULTS = (
    ("--error-rate", "error_rate", "Share of calls answered with HTTP 503."),
    ("--throttle-rate", "throttle_rate", "Share of calls answered 429 although within the rate."),
    ("--slow-rate", "slow_rate", "Share of registrations answered only after --slow-seconds."),
    (
        "--drop-rate",
        "drop_rate",
        "Share of registrations whose answer is lost (connection closed).",
    ),
    (
        "--gateway-timeout-rate",
        "gateway_timeout_rate",
        "Share of registrations that go through and are then answered 504, as GoTo's gateway does.",
    ),
)


def _faults(command: FC) -> FC:
    for name, dest, help in reversed(_FAULTS):
        command = click.option(
            name, dest, type=click.FloatRange(0, 1), metavar="SHARE", default=0.0, help=help
        )(command)
    return command


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
@click.option(
    "--jitter",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    default=0.0,
    show_default=True,
    help="Spread each answer's latency evenly over --latency plus or minus this.",
)
@_faults
@click.option(
    "--slow-seconds",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    default=60.0,
    show_default=True,
    help="How late a slow answer comes.",
)
@click.option("--no-dedupe", is_flag=True, help="Register a repeated e-mail again, not 409.")
@click.option("--conflict-keys", is_flag=True, help="Put registrantKey and joinUrl into 409s.")
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
@click.option(
    "--registration-limit",
    type=click.IntRange(min=0),
    metavar="N",
    help="Each webinar is full (403) once it has N registrants.",
)
@click.option(
    "--list-style",
    type=click.Choice(["array", "data", "spec", "plain"]),
    default="array",
    show_default=True,
    help="How the registrant list pages: bare arrays, {data, total}, {_embedded, page}, or "
    "not at all.",
)
@click.option("--drop-answers", is_flag=True, help="Store no answers to custom questions.")
@click.option(
    "--token",
    "tokens",
    multiple=True,
    metavar="TOKEN",
    help="Accept this access token (repeatable).  [default: one is made up and printed]",
)
@click.option(
    "--pat", "pats", multiple=True, metavar="PAT", help="Exchange this personal access token."
)
@click.option("--seed", type=int, help="Seed for keys and faults, to repeat a run exactly.")
def sandbox_command(
    port: int,
    tokens: tuple[str, ...],
    pats: tuple[str, ...],
    no_dedupe: bool,
    expire_after: int | None,
    **settings_: Any,
) -> None:
    """Serve the simulated GoTo Webinar API on 127.0.0.1 until Ctrl-C."""
    tokens = tokens or (secrets.token_urlsafe(16),)
    state = Sandbox(
        SandboxConfig(
            dedupe=not no_dedupe,
            token_calls=expire_after,
            tokens=tokens,
            pats=pats or ("sandbox-pat",),
            **settings_,
        )
    )

    def ready(server: SandboxServer) -> None:
        click.echo(f"Sandbox API on {server.api_url}")
        echo(f"  organizer key {state.organizer_key}, webinar key {state.webinar_key}")
        echo(f"  access token {tokens[0]} (an hour); personal access token {state.config.pats[0]}")
        echo(
            f"  try: G2W_ACCESS_TOKEN={tokens[0]} g2w-import register samples/registrants.csv "
            f"--api-url {server.api_url} --webinar-key {state.webinar_key}"
        )
        echo("  Press Ctrl-C to stop.")
        sys.stdout.flush()

    try:
        asyncio.run(serve(state, port, ready))
    except KeyboardInterrupt:
        stats = state.stats
        echo(
            f"Sandbox stopped after {stats['calls']:,} calls ({stats['throttled']:,} answered "
            f"429); it held {len(state.registrants()):,} registrants."
        )
    except OSError as exc:
        fail(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port",
            EXIT_USAGE,
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
    help="Your GoTo OAuth client's id. Its secret is read from $G2W_CLIENT_SECRET, or asked "
    "for; never give it on the command line.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=oauth.CALLBACK_PORT,
    show_default=True,
    help="Port on 127.0.0.1 that GoTo sends the browser back to: register "
    "http://127.0.0.1:PORT/callback as your client's redirect URI.",
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
    help="The API's base URL, to ask whose token it is.",
)
@click.option(
    "--with-pat",
    is_flag=True,
    help="Sign in with a personal access token read from standard input; it is exchanged "
    "for access tokens whenever one runs out.",
)
@click.option(
    "--with-token",
    is_flag=True,
    help="Read a bare access token from standard input (it lasts about an hour and cannot be "
    "renewed).",
)
@click.option(
    "--organizer-key",
    envvar="G2W_ORGANIZER_KEY",
    show_envvar=True,
    metavar="KEY",
    help="The organizer key, if the API does not say whose token it is.",
)
@click.option(
    "--sandbox",
    is_flag=True,
    help="Sign in to a sandbox served for the purpose, to see how it works (nothing is kept).",
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
    port: int,
    auth_url: str | None,
    api_url: str | None,
    with_pat: bool,
    with_token: bool,
    organizer_key: str | None,
    sandbox: bool,
    no_browser: bool,
    wait: float,
) -> None:
    """Sign in once; every later command uses (and renews) the stored login."""
    with _errors():
        if with_pat and with_token:
            raise UsageError("--with-pat and --with-token cannot go together; choose one")
        place = None if sandbox else credentials.store()
        if organizer_key:
            organizer_key = check_key("--organizer-key", organizer_key)
        signed = asyncio.run(
            _sign_in(
                client_id,
                port,
                auth_url,
                api_url,
                with_pat,
                with_token,
                organizer_key,
                sandbox,
                no_browser,
                wait,
            )
        )
        if not signed.organizer_key:
            raise UsageError(
                "the API did not say whose token this is; run login again with --organizer-key"
            )
        check_key("the organizer key", signed.organizer_key)
        who = f" as {signed.account}" if signed.account else ""
        if place is None:
            echo(
                f"Signed in to the sandbox{who} (organizer {signed.organizer_key}); nothing was "
                "kept, since the sandbox stops with this command.",
                colour="green",
            )
            return
        place.save(signed)
        echo(
            f"Signed in{who} (organizer {signed.organizer_key}) with a {signed.kind}; the "
            f"login is kept in {place.where()}.",
            colour="green",
        )
        if with_token:
            echo(
                "Warning: an access token lasts about an hour and cannot be renewed; for long or "
                "repeated imports sign in with g2w-import login or --with-pat.",
                colour="yellow",
            )


def _open_browser(address: str) -> None:
    import webbrowser

    with contextlib.suppress(Exception):  # no browser here: the address was printed
        webbrowser.open(address)


def _read_secret(what: str, example: str) -> str:
    """A secret from standard input (never the command line, where ``ps`` shows it)."""
    value = sys.stdin.readline().strip()
    if not value:
        raise UsageError(f"{what} is read from standard input, and none came; e.g. {example}")
    return value


async def _sign_in(
    client_id: str | None,
    port: int,
    auth_url: str | None,
    api_url: str | None,
    with_pat: bool,
    with_token: bool,
    organizer_key: str | None,
    sandbox: bool,
    no_browser: bool,
    wait: float,
) -> credentials.Credentials:
    """The sign-in asked for, against GoTo or against a sandbox served for the purpose."""
    client_secret = os.environ.get("G2W_CLIENT_SECRET", "").strip() or None
    async with contextlib.AsyncExitStack() as stack:
        if sandbox:
            config = SandboxConfig(redirect_uri=oauth.redirect_uri(port), pats=("sandbox-pat",))
            served = await stack.enter_async_context(SandboxServer(Sandbox(config), port=0))
            auth_url, api_url = served.base_url, served.api_url
            client_id, client_secret = client_id or "sandbox-client", client_secret or "sandbox"
        url = settings.api_url(api_url)
        if with_token:
            token = _read_secret("--with-token", "g2w-import login --with-token < token.txt")
            return await oauth.sign_in_with_token(token, url, organizer_key)
        pat = (
            _read_secret("--with-pat", "g2w-import login --with-pat < pat.txt")
            if with_pat
            else None
        )
        if not client_id:
            raise UsageError(
                "signing in needs your GoTo OAuth client: set G2W_CLIENT_ID and "
                "G2W_CLIENT_SECRET (or pass --client-id); see the README's Sign in"
            )
        if not client_secret and not with_pat and sys.stdin.isatty():
            client_secret = click.prompt("Client secret", hide_input=True, err=True).strip()
        if not client_secret:
            raise UsageError("set G2W_CLIENT_SECRET to your OAuth client's secret")
        sign_in_url = (auth_url or oauth.AUTH_URL).rstrip("/")
        if pat is not None:
            return await oauth.sign_in_with_pat(
                pat,
                client_id=client_id,
                client_secret=client_secret,
                auth_url=sign_in_url,
                api_url=url,
                organizer_key=organizer_key,
            )
        echo(f"Redirect URI: {oauth.redirect_uri(port)} (register exactly this on your client)")
        return await oauth.sign_in(
            auth_url=sign_in_url,
            api_url=url,
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
    click.echo(f"Using:     {source} ({signed.kind})")
    click.echo(f"Organizer: {signed.organizer_key or 'asked of the API at each run'}")
    if signed.account:
        click.echo(f"Account:   {signed.account}")
    left = signed.expires_in()
    if left is None:
        click.echo("Expires:   unknown")
        return
    when = dt.datetime.fromtimestamp(signed.expires_at or 0).astimezone()
    state = "expired" if left <= 0 else f"in {left / 60:.0f} minutes"
    renewed = "; renewed automatically" if signed.renewable else "; cannot be renewed"
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
