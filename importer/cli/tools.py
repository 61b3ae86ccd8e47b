"""Everything around an import: webinars, fields, template, sandbox, ui."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click
from click.decorators import FC

from importer.cli.base import (
    api_options,
    auth_url_option,
    callback_port_option,
    cli,
    echo,
    errors,
    fail,
    open_browser,
    started,
)
from importer.cli.console import Interrupts, form_json, form_lines, webinar_json, webinar_lines
from importer.errors import EXIT_USAGE, UsageError
from importer.goto import oauth
from importer.goto.connection import Access
from importer.goto.session import DEFAULT_RATE
from importer.jobs import webinars as lookups
from importer.report import template
from importer.sandbox import Sandbox, SandboxConfig, SandboxServer, reset, serve
from importer.serve.exchange import cannot_listen
from importer.text import counted


@cli.command()
@api_options(webinar=False)
@click.option(
    "--from",
    "start",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The first day, YYYY-MM-DD, in this computer's time zone.  [default: today]",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The last day, YYYY-MM-DD, in this computer's time zone.  [default: a year from "
    "today, or from --from when that is later]",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table.")
def webinars(
    where: Access,
    start: dt.datetime | None,
    end: dt.datetime | None,
    as_json: bool,
) -> None:
    """List your webinars with their keys, subjects, types and first start times.

    Each start is shown on the webinar's own clock (its time zone), marked "over" when every
    session has ended; --from and --to are days on this computer's. With a --from in the past
    the list runs from then to a year from today.
    """
    today = dt.date.today()
    first = start.date() if start else today
    last = end.date() if end else max(first, today) + dt.timedelta(days=365)
    with errors():
        if last < first:
            raise UsageError(f"--to {last} is before --from {first}")
        found = asyncio.run(lookups.webinars(where, first, last))
    if as_json:
        click.echo(json.dumps([webinar_json(w) for w in found], indent=2, ensure_ascii=False))
    elif not found:
        echo(f"No webinars between {first} and {last}.")
    else:
        click.echo("\n".join(webinar_lines(found)))


@cli.command()
@api_options()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table.")
def fields(
    webinar_keys: str | None,
    where: Access,
    as_json: bool,
) -> None:
    """Show a webinar's registration fields and custom questions."""
    with errors():
        webinar, form = asyncio.run(lookups.webinar_and_form(where, webinar_keys))
    if as_json:
        click.echo(json.dumps(form_json(webinar, form), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(form_lines(webinar, form)))


@cli.command("template")
@click.argument(
    "path",
    type=click.Path(path_type=Path, dir_okay=False),
    default="registrants.xlsx",
    required=False,
)
@api_options()
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def template_command(
    path: Path,
    webinar_keys: str | None,
    where: Access,
    force: bool,
) -> None:
    """Write the Excel template to fill in (PATH, default registrants.xlsx).

    With --webinar-key, the template is the webinar's own form: a column for each of its
    fields and custom questions, in its order, required ones marked, drop-downs of the allowed
    answers, and the key on its Settings sheet.
    """
    with errors():
        if path.exists() and not force:
            raise UsageError(f"{path} already exists; choose another name, or add --force")
        if path.suffix.lower() != ".xlsx":
            raise UsageError(f"{path.name}: the template is an Excel workbook; name it .xlsx")
        webinar = form = None
        if webinar_keys or where.sandbox:
            webinar, form = asyncio.run(lookups.webinar_and_form(where, webinar_keys))
        try:
            template.build(path, webinar=webinar, form=form, sandbox=where.sandbox)
        except OSError as exc:
            raise UsageError(f"{path}: cannot be written ({exc.strerror})") from exc
        if webinar is not None and form is not None:
            columns = template.headers(form)
            asked = len(form.questions) - len(template.unanswerable(form))
            echo(
                f"Template for '{webinar.subject}' ({webinar.key}): "
                f"{counted(len(columns) - asked, 'field')} and {counted(asked, 'custom question')}."
            )
            for note in template.left_out(form):
                echo(f"Warning: {note}", colour="yellow")
        click.echo(f"Template: {path}")


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


def _count(name: str, help: str) -> Callable[[FC], FC]:
    return click.option(name, type=click.IntRange(min=0), metavar="N", help=help)


@cli.group("sandbox", invoke_without_command=True)
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
    default=DEFAULT_RATE,
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
@_count("--expire-after", "Refuse each access token (403 InvalidToken) after N calls.")
@_count("--quota", "Refuse every call (403, quota exceeded) once N people are registered.")
@_count("--registration-limit", "Each webinar is full (403) once it has N registrants.")
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
    "--created-status",
    is_flag=True,
    help="Put the registrant's status into a create's 201 (the spec does not require it).",
)
@click.option(
    "--clock-skew",
    type=float,
    metavar="SECONDS",
    default=0.0,
    show_default=True,
    help="Run the sandbox's clock (its Date headers and registration dates) this far ahead "
    "of this computer's (negative: behind).",
)
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
@click.pass_context
def sandbox_command(
    context: click.Context,
    /,
    port: int,
    tokens: tuple[str, ...],
    pats: tuple[str, ...],
    no_dedupe: bool,
    expire_after: int | None,
    **settings_: Any,
) -> None:
    """Serve the simulated GoTo Webinar API on 127.0.0.1 until Ctrl-C.

    The sandbox served here starts empty and keeps nothing. The built-in one that --sandbox
    uses keeps its registrations between runs; g2w-import sandbox reset empties it.
    """
    if context.invoked_subcommand is not None:
        return
    started()
    tokens = tokens or (secrets.token_hex(16),)  # never starts with "-", as an option would
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
        echo(
            f"  or sign in to it: echo {state.config.pats[0]} | G2W_CLIENT_SECRET=any g2w-import "
            f"login --with-pat --client-id any --auth-url {server.base_url} --api-url "
            f"{server.api_url}"
        )
        echo("  Press Ctrl-C to stop.")
        sys.stdout.flush()

    # Ctrl-C or SIGTERM stops it with its summary, even when started from a script in the
    # background, where the shell hands a program SIGINT ignored; the first one does, and
    # any more while it closes change nothing
    stopping = (signal.SIGINT, signal.SIGTERM)

    def stop(signum: int, frame: FrameType | None) -> None:
        for number in stopping:
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {number: signal.signal(number, stop) for number in stopping}
    try:
        asyncio.run(serve(state, port, ready))
    except KeyboardInterrupt:
        stats = state.stats
        echo(
            f"Sandbox stopped after {counted(stats['calls'], 'call')} ({stats['throttled']:,} "
            f"answered 429); it held {counted(len(state.registrants()), 'registrant')}."
        )
    except OSError as exc:
        fail(
            f"cannot listen on 127.0.0.1:{port} ({cannot_listen(exc)}); choose another --port",
            EXIT_USAGE,
        )
    finally:
        for number, handler in previous.items():  # as Interrupts leaves them: see there
            signal.signal(number, signal.SIG_IGN if Interrupts.process_ends else handler)


@sandbox_command.command("reset", short_help="Empty the built-in sandbox that --sandbox uses.")
def sandbox_reset() -> None:
    """Empty the built-in sandbox (--sandbox): its registrants and its runs' journals."""
    with errors():
        done = reset()
    if done.registrants is None:
        removed = "its file, which could not be used,"
    else:
        removed = counted(done.registrants, "registrant")
    echo(
        f"Sandbox reset: removed {removed} and {counted(done.journals, 'journal')} ({done.folder})."
    )


@cli.command()
@api_options(webinar=False)
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
    help="Your GoTo OAuth client's id, for the page's Sign in button (its secret comes from "
    "$G2W_CLIENT_SECRET; never give it on the command line).",
)
@auth_url_option
@callback_port_option("--sign-in-port", " after signing in from the page")
def ui(
    where: Access,
    port: int,
    no_browser: bool,
    client_id: str | None,
    auth_url: str | None,
    sign_in_port: int,
) -> None:
    """Open the importer as a page in your browser, served on this computer only.

    Get the template, choose the file and the webinar, see the plan, register, and download
    the report, by pointing and clicking. The address printed carries a secret: the page
    answers nobody without it. Uploaded files and reports stay in your user data folder.
    """
    with errors():
        from importer.web import server  # Starlette and uvicorn load only for this command

        client = None
        client_secret = os.environ.get("G2W_CLIENT_SECRET", "").strip()
        if client_id and client_secret:
            client = server.OAuthClient(
                client_id, client_secret, auth_url or oauth.AUTH_URL, sign_in_port
            )

        def started(address: str) -> None:
            click.echo(f"Page: {address}")
            echo("  The page works on this computer only; the address is its key, keep it private.")
            echo("  Press Ctrl-C to stop (an import under way stops as with g2w-import register).")
            sys.stdout.flush()

        # closing the terminal window the page runs in (the app's, after a double-click)
        # sends SIGHUP, and a system stopping it SIGTERM: stop as on Ctrl-C, which uvicorn
        # handles, rather than at once
        for name in ("SIGHUP", "SIGTERM"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), lambda *_: signal.raise_signal(signal.SIGINT))
        # uvicorn stops gracefully on Ctrl-C, then passes it on
        left_open = False
        with contextlib.suppress(KeyboardInterrupt):
            left_open = server.serve(
                where,
                port=port,
                client=client,
                auth_url=auth_url,
                sign_in_port=sign_in_port,
                started=started,
                open_browser=None if no_browser else open_browser,
            )
        echo("The page was stopped.")
        if left_open:
            echo(
                "Its last import did not finish: it carries on where it stopped when the same "
                "file is registered again, from the page or with g2w-import register."
            )
