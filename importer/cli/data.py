"""The personal data this computer keeps: ``journals`` and ``journals forget``, and the
removal of old journals at the start of every command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from importer.cli.base import cli, echo, errors, started
from importer.cli.console import Console, table_lines
from importer.engine.journals import Removed, Summary, survey
from importer.errors import EXIT_OK, EXIT_ROWS, Declined, UsageError
from importer.jobs import journals as keeping
from importer.text import counted


def journal_lines(found: Sequence[Summary], now: dt.datetime, keep_days: int) -> list[str]:
    """The journals as ``journals`` prints them."""
    rows: list[tuple[str, ...]] = [
        ("webinar key", "subject", "people", "size", "last used", "webinar over")
    ]
    rows += [
        (
            j.webinar,
            j.subject or ("(unreadable)" if j.problem else "(not known yet)"),
            keeping.people_text(j) if not j.problem else f"cannot be read: {j.problem}",
            keeping.size_text(j.size),
            keeping.used_text(j),
            keeping.ended_text(j, now, keep_days),
        )
        for j in found
    ]
    return table_lines(rows)


def _keeping_line(days: int) -> str:
    if days == 0:
        return f"Journals are kept until you remove them ({keeping.KEEP_DAYS_ENV}=0)."
    return (
        f"Each is removed {counted(days, 'day')} after its webinar is over "
        f"({keeping.KEEP_DAYS_ENV} changes this; 0 keeps them)."
    )


sandbox_option = click.option(
    "--sandbox", is_flag=True, help="The journals of the built-in sandbox's runs instead."
)


@cli.group(invoke_without_command=True)
@sandbox_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of a table.")
@click.pass_context
def journals(context: click.Context, sandbox: bool, as_json: bool) -> None:
    """List the journals this computer keeps, one per webinar.

    A journal holds, for each person an import or cancellation sent, their e-mail address,
    registrant key and join URL: what keeps a second run from registering anyone twice, and
    lets undo prove which registrations are this tool's. "journals forget" removes them.
    """
    if context.invoked_subcommand is not None:
        return
    started()
    now = dt.datetime.now(dt.UTC)
    with errors():
        days = keeping.keep_days_from_environment()
        where = keeping.folder(sandbox)
        found = survey(where)
    if as_json:
        click.echo(json.dumps([keeping.as_json(j, now) for j in found], indent=2))
        return
    if not found:
        elsewhere = (
            ""
            if sandbox or not survey(keeping.folder(sandbox=True))
            else (" (the sandbox's are listed by g2w-import journals --sandbox)")
        )
        echo(f"No journals in {where}{elsewhere}.")
        return
    click.echo("\n".join(journal_lines(found, now, days)))
    echo(f"\n{counted(len(found), 'journal')} in {where}. {_keeping_line(days)}")


@journals.command()
@click.option(
    "--webinar-key",
    "webinar_keys",
    multiple=True,
    metavar="KEY",
    help="The journal of this webinar (repeat for several).",
)
@click.option(
    "--ended",
    "ended_days",
    type=click.IntRange(min=0),
    metavar="DAYS",
    help="The journals of webinars over for more than DAYS days (0: every one that is over).",
)
@click.option("--all", "everything", is_flag=True, help="Every journal.")
@click.option(
    "--email",
    "emails",
    multiple=True,
    metavar="ADDRESS",
    help="Only this person, from every journal that holds them (or from those chosen above), "
    "and the page's copies of files that hold them; repeat for several.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also remove rows of unknown outcome (a run stopped while sending): a later run may "
    "then register those people twice.",
)
@sandbox_option
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def forget(
    context: click.Context,
    webinar_keys: tuple[str, ...],
    ended_days: int | None,
    everything: bool,
    emails: tuple[str, ...],
    force: bool,
    sandbox: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Remove journals, or one person from them, for good.

    The plan is shown first and asked about. A journal (or person) of unknown outcome, left by
    a run stopped while sending, is kept unless --force: it is what keeps those people from
    being registered twice. Registrations at GoTo are not touched, and undo can no longer
    cancel those whose journal forgot them: to cancel them, use g2w-import undo or cancel
    first.

    \b
    Examples:
      g2w-import journals forget --email ada@example.com
      g2w-import journals forget --ended 30
      g2w-import journals forget --webinar-key 8325357307900339981
    """
    console = Console(ask=not yes)
    # "journals --sandbox forget" means the sandbox's as much as "journals forget --sandbox"
    parent = context.parent
    sandbox = sandbox or bool(parent is not None and parent.params.get("sandbox"))
    with errors():
        choice = keeping.Choice(webinar_keys, ended_days, everything, emails, force)
        planned = keeping.plan(choice, keeping.folder(sandbox))
        for line in plan_lines(planned):
            echo(line)
        if planned.empty:
            sys.exit(EXIT_ROWS if planned.kept else EXIT_OK)
        if dry_run:
            echo("Dry run: nothing was removed.")
            sys.exit(EXIT_ROWS if planned.kept else EXIT_OK)
        if not yes and not console.can_ask():  # removing is for good: said, never assumed
            raise UsageError(
                "journals forget removes for good: run it in a terminal to be asked, or add --yes"
            )
        if not console.confirm("Remove them for good?"):
            raise Declined("Nothing was removed.")
        done = keeping.carry_out(planned)
    for line in done_lines(planned, done):
        echo(line)
    sys.exit(EXIT_ROWS if planned.kept or any(d.kept for d in done) else EXIT_OK)


def plan_lines(planned: keeping.Plan) -> list[str]:
    """What ``journals forget`` is about to do, in words."""
    lines = [f"Journals in {planned.folder}:"]
    for journal in planned.whole:
        lines.append(
            f"  remove the journal of {keeping.named(journal)}: {keeping.people_text(journal)}"
        )
    for journal, keys in planned.people:
        who = ", ".join(keys)
        lines.append(f"  remove {who} from the journal of {keeping.named(journal)}")
    for journal in planned.rebuild:
        lines.append(
            f"  rebuild the journal of {keeping.named(journal)}: its free space holds them"
        )
    for copy in planned.copies:
        lines.append(f"  remove {_copy_text(copy)}, which holds them")
    for journal, why in planned.kept:
        lines.append(f"  keep the journal of {keeping.named(journal)}: {why}")
    for what in planned.missing:
        lines.append(f"  {what}: no journal holds it, nothing to remove")
    if planned.empty:
        lines.append("Nothing to remove.")
    return lines


def _copy_text(copy: Path) -> str:
    """``the page's copy of guests.csv (and its reports)`` / ``the list the page exported, …``."""
    if not copy.is_dir():
        return f"the list the page exported, {copy.name}"
    # the file chosen, beside the reports named after it
    chosen = min((p.name for p in copy.iterdir() if p.is_file()), key=len, default=copy.name)
    return f"the page's copy of {chosen} (and its reports)"


def done_lines(planned: keeping.Plan, done: Sequence[Removed]) -> list[str]:
    """What ``journals forget`` did."""
    lines = []
    if planned.copies:
        copies = counted(len(planned.copies), "copy", "copies")
        lines.append(f"Removed {copies} in the page's folder.")
    for each in done:
        if each.whole:
            lines.append(f"Removed the journal of {keeping.named(each.journal)}.")
        elif each.journal in planned.rebuild and not each.kept:
            lines.append(f"Rebuilt the journal of {keeping.named(each.journal)}.")
        elif each.people:
            lines.append(
                f"Removed {counted(len(each.people), 'person', 'people')} from the journal of "
                f"{keeping.named(each.journal)}."
            )
        if each.kept:
            lines.append(f"Kept the journal of {keeping.named(each.journal)}: {each.kept}")
    return lines
