"""The commands that call the API in bulk: register, export, cancel, undo, each a job of
:mod:`importer.jobs` with the console as its listener, and its report written here."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

import click

from importer.cli.base import EXIT_EPILOG, api_options, cli, command_line, errors, run_options
from importer.cli.console import Console, Interrupts, setup_logging
from importer.errors import EXIT_CODES, EXIT_OK, EXIT_ROWS
from importer.events import StopSignal
from importer.goto.connection import Access
from importer.jobs import cancel, export
from importer.jobs import register as registering
from importer.jobs.common import Done, Options
from importer.report import check_out, probe
from importer.report.outcome import destinations


@cli.command(epilog=EXIT_EPILOG)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@api_options(several=True)
@click.option(
    "--sheet",
    metavar="NAME",
    help="The Excel sheet to read, hidden ones too (default: the sheet the workbook opens on, "
    "if it has an e-mail column, else the first visible sheet that has one).",
)
@click.option(
    "--include-hidden-rows",
    is_flag=True,
    help="Send the rows hidden in Excel (by a filter or by hand) too; by default they are "
    "reported as skipped_hidden and not sent.",
)
@click.option(
    "--resend-confirmation/--no-resend-confirmation",
    default=None,
    help="Have GoTo e-mail the confirmation again to people already registered.  "
    "[default: the Settings sheet's resendConfirmation, else no]",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    help="Once sending ends, check every registered row's key and join URL against one read "
    "of the webinar's registrant list (about one call per 200 registrants).  [default: verify]",
)
@run_options(
    out="FILE-joinurls.xlsx",
    dry_run="Check every row as a real run would (asking the API only what it can read), "
    "show the plan, and send nothing.",
)
def register(
    file: Path,
    webinar_keys: tuple[str, ...],
    where: Access,
    sheet: str | None,
    include_hidden_rows: bool,
    resend_confirmation: bool | None,
    verify: bool,
    **common: Any,
) -> None:
    """Register everyone in FILE (.csv, .txt, .xlsx or .xlsm) for a webinar.

    Every row is checked before anything is sent, against the webinar's own fields and
    questions; the report lists each row with its status and join URL. Interrupted or
    stopped, the same command run again carries on where it stopped, and never registers
    anyone twice.
    """
    console = Console(quiet=common["quiet"], ask=not common["yes"])
    stop = StopSignal()
    setup_logging(common["verbose"])
    dry_run = common["dry_run"]
    with errors(), Interrupts(stop, console) as interrupts:
        out, attention = destinations(file, common["out"])
        options = _options(
            common,
            webinar_keys=webinar_keys,
            sheet=sheet,
            resend=resend_confirmation,
            verify=verify,
            include_hidden_rows=include_hidden_rows,
            draft_report=out.suffix.lower() == ".xlsx",
        )
        interrupts.in_loop = True
        outcome = asyncio.run(registering.register(file, where, options, console, stop))
        interrupts.in_loop = False
        if dry_run:
            console.dry_run(outcome)
            sys.exit(outcome.exit_code)
        written = outcome.write(out, console.note)
        fix = outcome.write_attention(attention, console.note)
        console.summary(outcome)
        if fix is not None:
            console.say(f"To fix:   {fix} (correct the rows and register that file)")
        console.ending(outcome)
        click.echo(f"Report: {written}")
    sys.exit(outcome.exit_code)


Start = Callable[[Options, Console, StopSignal], Coroutine[Any, Any, Done]]


def _options(common: dict[str, Any], **job: Any) -> Options:
    """The options every bulk command takes (pace, budget, journal, dry run), and ``job``'s
    own."""
    return Options(
        rate=common["rate"],
        concurrency=common["concurrency"],
        timeout=common["timeout"],
        max_calls=common["max_calls"],
        give_up_after=common["give_up_after"],
        journal=common.get("journal_path"),
        dry_run=common["dry_run"],
        resume_hint=f"run the same command again: {command_line()}",
        **job,
    )


def _epilog(done: str, unfinished: str) -> str:
    """The exit codes of export, cancel or undo: their own 0 and 1, the rest as register's."""
    own = {EXIT_OK: done, EXIT_ROWS: unfinished}
    return "\b\nExit codes:\n" + "\n".join(
        f"  {code:<4} {own.get(code, text)}" for code, text in EXIT_CODES
    )


_CANCEL_EPILOG = _epilog(
    "done: everyone in the file is cancelled",
    "finished, but some rows name nobody registered, failed or are pending (or you answered no)",
)
_UNDO_EPILOG = _epilog(
    "done: every registration g2w-import made is cancelled (anyone else is left alone)",
    "finished, but some rows failed or are pending (or you answered no)",
)
_EXPORT_EPILOG = _epilog(
    "done: the list is complete",
    "you answered no when asked to write the report",
)
_CHANGE_NOTHING = "Show the plan; change nothing, write nothing."


def _manage(
    start: Start,
    source: Path | None,
    webinar_key: str | None,
    sheet: str | None,
    common: dict[str, Any],
    *,
    answers: bool = True,
) -> NoReturn:
    """Run export, cancel or undo as register runs: errors in one line, Ctrl-C handled, then
    the summary, the report written and its path, and the exit code. Where the report goes
    (``--out``, else beside ``source`` or in the current folder) is checked first: it must be
    writable, and not the input file itself."""
    console = Console(quiet=common["quiet"], ask=not common["yes"])
    stop = StopSignal()
    setup_logging(common["verbose"])
    with errors(), Interrupts(stop, console) as interrupts:
        check_out(common["out"], source)
        if common["out"] is None:
            probe(source.parent if source is not None else Path.cwd())
        options = _options(
            common,
            webinar_keys=(webinar_key,) if webinar_key else (),
            sheet=sheet,
            report=common["out"],
            answers=answers,
        )
        interrupts.in_loop = True
        done = asyncio.run(start(options, console, stop))
        interrupts.in_loop = False
        written = (
            None
            if done.dry_run
            else done.write(options.report or done.default_report, console.note)
        )
    if done.dry_run:
        console.say("Dry run: nothing was changed or written.")
    else:
        console.say(f"Done: {done.summary()}.", "green" if done.exit_code == EXIT_OK else "yellow")
    console.ending(done)
    if written is not None:
        click.echo(f"Report: {written}")
    sys.exit(done.exit_code)


@cli.command("export", epilog=_EXPORT_EPILOG)
@api_options()
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
@run_options(
    out="SUBJECT-registrants.xlsx here, or FILE-registrants beside the --merge FILE",
    dry_run=_CHANGE_NOTHING,
    journal=False,
)
def export_command(
    webinar_keys: str | None,
    where: Access,
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
    _manage(
        lambda options, console, stop: export.export(merge, where, options, console, stop),
        merge,
        webinar_keys,
        sheet,
        common,
        answers=answers,
    )


@cli.command("cancel", epilog=_CANCEL_EPILOG)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
@api_options()
@click.option("--sheet", metavar="NAME", help="The Excel sheet to read.")
@run_options(out="FILE-cancelled.xlsx", dry_run=_CHANGE_NOTHING)
def cancel_command(
    file: Path,
    webinar_keys: str | None,
    where: Access,
    sheet: str | None,
    **common: Any,
) -> None:
    """Unregister the people in FILE from a webinar, matched by e-mail.

    Whoever registered them, everyone in FILE who is registered for the webinar is cancelled;
    the report says per row cancelled, not_registered, failed or pending. Interrupted or
    stopped, the same command run again carries on, and cancels nobody twice.
    """
    _manage(
        lambda options, console, stop: cancel.cancel(file, where, options, console, stop),
        file,
        webinar_keys,
        sheet,
        common,
    )


@cli.command("undo", epilog=_UNDO_EPILOG)
@api_options()
@click.option(
    "--file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Undo only the registrations of the people in this file.",
)
@click.option("--sheet", metavar="NAME", help="The Excel sheet of --file to read.")
@run_options(
    out="SUBJECT-undone.xlsx here, or FILE-undone.xlsx beside --file", dry_run=_CHANGE_NOTHING
)
def undo_command(
    webinar_keys: str | None,
    where: Access,
    file: Path | None,
    sheet: str | None,
    **common: Any,
) -> None:
    """Cancel the registrations g2w-import made for a webinar, as its journal records them.

    People it found registered already, and people who came through another channel, are left
    alone. Registering the same file again afterwards registers them again (for instance once
    the right webinar key is in place).
    """
    _manage(
        lambda options, console, stop: cancel.undo(file, where, options, console, stop),
        file,
        webinar_keys,
        sheet,
        common,
    )
