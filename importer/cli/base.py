"""The command group, its entry point, and the one place errors become an exit code."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, cast

import click
from click.decorators import FC

from importer.cli.console import Interrupts, Unanswered
from importer.errors import EXIT_CODES, EXIT_INTERRUPTED, Declined, ImporterError, UsageError
from importer.goto import credentials, oauth
from importer.goto.connection import Access
from importer.goto.session import DEFAULT_RATE
from importer.read.settings import API_URL
from importer.text import clean, counted

EXIT_EPILOG = "\b\nExit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES)


def echo(message: str = "", *, err: bool = True, colour: str | None = None) -> None:
    """A message for the person: on stderr unless said otherwise, coloured only on a terminal,
    and never with a control character in it (no text from a file or a server can move the
    cursor, clear the screen or set the window's title)."""
    message = clean(message)
    click.echo(click.style(message, fg=colour) if colour else message, err=err)


def fail(message: str, code: int) -> NoReturn:
    """Print one line and exit with ``code``."""
    echo(f"Error: {message}", colour="red")
    sys.exit(code)


class _Started:
    """Whether this invocation has tidied up already: once, as its command starts."""

    done = False

    @classmethod
    def tidy(cls, params: dict[str, Any] | None = None) -> None:
        """Remove old journals and a killed run's leftovers, once (not for --help, whose
        command never starts); a dry run removes nothing, and no command loses the journal of
        a webinar it names (``params``: its options)."""
        if cls.done:
            return
        cls.done = True
        params = params or {}
        named = params.get("webinar_keys") or ()
        spare = (named,) if isinstance(named, str) else tuple(named)
        # loaded as a command starts, not for --help or --version: a function-level import
        from importer.jobs import journals as keeping

        try:
            days = 0 if params.get("dry_run") else keeping.keep_days_from_environment()
        except UsageError as exc:
            days = 0
            echo(f"Warning: old journals were not removed: {exc}", colour="yellow")
        try:
            done = keeping.expire(days, spare=spare)
        except Exception as exc:  # a problem with old files must not stop today's work
            echo(f"Warning: old journals were not removed ({exc})", colour="yellow")
            return
        if done.removed:
            names = ", ".join(keeping.named(j) for j in done.removed)
            echo(
                f"Removed {counted(len(done.removed), 'journal')} of webinars over for more "
                f"than {counted(days, 'day')}: {names} ({keeping.KEEP_DAYS_ENV}=0 keeps them)."
            )
        for journal, why in done.kept:
            echo(f"Kept the journal of {keeping.named(journal)}, over for {days}+ days: {why}")


class _Command(click.Command):
    """A command that tidies up (:class:`_Started`) before it starts."""

    def invoke(self, ctx: click.Context) -> Any:
        _Started.tidy(ctx.params)
        return super().invoke(ctx)


def started() -> None:
    """A group run without a command of its own (``journals``, ``sandbox``) starts here."""
    _Started.tidy()


class _Group(click.Group):
    """A group whose commands tidy up as they start; a group inside it, run without one of
    its commands, calls :func:`started` itself (before, it cannot know whether it will be)."""

    command_class = _Command
    group_class = type  # groups inside are of this class too

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is None:  # a new invocation (one process may make several)
            _Started.done = False
        return super().invoke(ctx)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_EPILOG,
)
@click.version_option(package_name="g2w-importer", prog_name="g2w-import")
def cli() -> None:
    """Register a spreadsheet of people for a GoTo Webinar and collect their join URLs.

    As every command starts, the journals of webinars over for more than 30 days are removed
    (G2W_KEEP_DAYS changes the days; 0 keeps them): see g2w-import journals.
    """


def main() -> None:
    """Console entry point."""
    Interrupts.process_ends = True
    try:
        cli(prog_name="g2w-import")
    except KeyboardInterrupt:  # before a run took Ctrl-C over: nothing was sent yet
        echo("\nInterrupted before anything was sent.", colour="yellow")
        sys.exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def errors() -> Iterator[None]:
    """The one place where errors become a line on stderr and an exit code."""
    try:
        yield
    except Declined as exc:
        echo(str(exc))
        sys.exit(exc.exit_code)
    except ImporterError as exc:
        fail(str(exc), exc.exit_code)
    except Unanswered:
        echo("\nInterrupted at the question: nothing was sent or written.", colour="yellow")
        sys.exit(EXIT_INTERRUPTED)
    except (KeyboardInterrupt, asyncio.CancelledError):  # a second Ctrl-C: stop at once
        echo(
            "\nInterrupted. The journal keeps everything settled: run the same command again "
            "(it also writes the report).",
            colour="yellow",
        )
        sys.exit(EXIT_INTERRUPTED)


def command_line() -> str:
    """The command as typed, to repeat in a report's Summary (never holds a token)."""
    return " ".join(["g2w-import", *sys.argv[1:]])


def stacked(*options: Callable[[FC], FC]) -> Callable[[FC], FC]:
    """Several option decorators as one, in the order given."""

    def apply(command: FC) -> FC:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def _one_key(
    context: click.Context, parameter: click.Parameter, keys: tuple[str, ...]
) -> str | None:
    """The one webinar key of a command that works on one webinar at a time."""
    if len(keys) > 1:
        raise click.BadParameter(
            f"{len(keys)} webinars named: this command works on one webinar at a time; run it "
            "once per webinar",
            context,
            parameter,
        )
    return keys[0] if keys else None


def api_options(*, several: bool = False, webinar: bool = True) -> Callable[[FC], FC]:
    """The options that say which webinar, as whom, and where the API is; the command gets
    the last four as one ``where``, an :class:`~importer.goto.connection.Access`."""
    key_help = "The webinar's key: the long number in its settings (see g2w-import webinars)."
    if several:
        key_help += " Repeat it to register everyone for several webinars."
    key = click.option(
        "--webinar-key",
        "webinar_keys",
        metavar="KEY",
        multiple=True,  # also where one is taken: a second is refused, not silently dropped
        callback=None if several else _one_key,
        help=key_help,
    )
    options = stacked(
        *([key] if webinar else []),
        click.option(
            "--organizer-key",
            metavar="KEY",
            envvar="G2W_ORGANIZER_KEY",
            show_envvar=True,
            help="The organizer's key.  [default: the login's, else the API is asked]",
        ),
        click.option(
            "--token-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Read the access token from this file (when neither $G2W_ACCESS_TOKEN nor "
            "$G2W_PAT is set; instead of the stored login).",
        ),
        click.option(
            "--api-url",
            envvar="G2W_API_URL",
            show_envvar=True,
            metavar="URL",
            help=f"The API's base URL.  [default: {API_URL}]",
        ),
        click.option(
            "--sandbox", is_flag=True, help="Use the built-in simulated API: no account needed."
        ),
    )

    def apply(command: FC) -> FC:
        @functools.wraps(command)
        def with_access(
            *args: Any,
            sandbox: bool,
            api_url: str | None,
            token_file: Path | None,
            organizer_key: str | None,
            **kwargs: Any,
        ) -> Any:
            where = Access(
                sandbox=sandbox, api_url=api_url, token_file=token_file, organizer_key=organizer_key
            )
            warn_about_token_file(token_file, quiet=kwargs.get("quiet", False))
            return command(*args, where=where, **kwargs)

        return options(cast(FC, with_access))

    return apply


def warn_about_token_file(token_file: Path | None, *, quiet: bool) -> None:
    """Say so when others may read the token file."""
    warning = credentials.token_file_warning(token_file) if token_file else None
    if warning and not quiet:
        click.secho(f"Warning: {warning}", fg="yellow", err=True)


def run_options(*, out: str, dry_run: str, journal: bool = True) -> Callable[[FC], FC]:
    """The options every command that calls the API in bulk shares: the report, the journal,
    the pace and budget, asking, and what is shown."""
    return stacked(
        click.option(
            "--out",
            type=click.Path(path_type=Path, dir_okay=False),
            help=f"Where to write the report, .xlsx or .csv.  [default: {out}]",
        ),
        *(
            [
                click.option(
                    "--journal",
                    "journal_path",
                    type=click.Path(path_type=Path, dir_okay=False),
                    help="The webinar's journal (SQLite).  "
                    "[default: one per webinar in your user data folder]",
                )
            ]
            if journal
            else []
        ),
        click.option("--dry-run", is_flag=True, help=dry_run),
        click.option(
            "--rate",
            type=click.FloatRange(min=0.1, max=1000),
            metavar="N",
            default=DEFAULT_RATE,
            show_default=True,
            help="API calls per second: the API's rate limit (GoTo's default is 10).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 256),
            metavar="N",
            help="Requests in flight at most.  [default: what the rate and the API's answer "
            "times need]",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=1),
            metavar="SECONDS",
            default=30.0,
            show_default=True,
            help="Seconds to wait for one whole answer.",
        ),
        click.option(
            "--max-calls",
            type=click.IntRange(min=1),
            metavar="N",
            help="Make at most N API calls in this run (for a daily quota); run again to continue.",
        ),
        click.option(
            "--give-up-after",
            type=click.FloatRange(min=1),
            default=60.0,
            show_default=True,
            metavar="SECONDS",
            help="Stop (resumable) when the API has answered only 429s or errors, or could not "
            "be reached, for this long.",
        ),
        click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation."),
        click.option("--quiet", "-q", is_flag=True, help="No plan, progress or summary."),
        click.option(
            "--verbose", "-v", is_flag=True, help="Log every API call (tokens are never shown)."
        ),
    )


def auth_url_option(command: FC) -> FC:
    """``--auth-url``: the sign-in server, for login and the page's Sign in."""
    return click.option(
        "--auth-url",
        envvar="G2W_AUTH_URL",
        show_envvar=True,
        metavar="URL",
        help=f"The sign-in server.  [default: {oauth.AUTH_URL}]",
    )(command)


def callback_port_option(name: str, when: str) -> Callable[[FC], FC]:
    """The port GoTo sends the browser back to, ``when`` saying after what."""
    return click.option(
        name,
        type=click.IntRange(1, 65535),
        default=oauth.CALLBACK_PORT,
        show_default=True,
        help=f"Port on 127.0.0.1 that GoTo sends the browser back to{when}: register "
        "http://127.0.0.1:PORT/callback as your client's redirect URI.",
    )


def open_browser(address: str) -> None:
    """Open ``address`` in the person's browser, if there is one (the address was printed)."""
    import webbrowser

    with contextlib.suppress(Exception):
        webbrowser.open(address)
