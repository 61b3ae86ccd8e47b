"""``export``: everyone registered for a webinar, whatever channel they came through, with their
join URLs; or, with a file to merge into, the keys, join URLs and statuses filled into a copy of
that file.

Both are written like the registration report (atomically, keys as text, no formula cells, UTF-8
with a BOM in CSV, clickable join URLs). The answers to custom questions come one registrant at a
time (the list does not carry them): one call each, at the same pace as every other call.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from importer import report
from importer.cli.console import Console
from importer.errors import EXIT_OK, Declined, RunStopped
from importer.events import StopSignal
from importer.goto.connection import Access
from importer.jobs.common import (
    ManageOptions,
    Run,
    beside,
    check_out,
    connected,
    named_after,
    people,
    progress,
    show,
    stamp,
    webinar_line,
)
from importer.model import ListedRegistrant, Table, Webinar, email_key
from importer.read import reader
from importer.read.columns import fold
from importer.text import counted

HEADERS = (
    "firstName",
    "lastName",
    "email",
    "status",
    "registrationDate",
    "registrantKey",
    "joinUrl",
)
#: the columns a merge fills into the user's own file
FILLED = ("registrantKey", "joinUrl", "status")
NOT_REGISTERED = "not_registered"
#: rows by GoTo's status: approved green, awaiting approval yellow, denied red
_COLOURS = {"APPROVED": report.GREEN, "WAITING": report.YELLOW, "DENIED": report.RED}

Answers = Mapping[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Exported:
    """What an export came to."""

    webinar: Webinar
    #: everyone registered for the webinar
    registrants: int
    #: with a file to merge into: its rows, and how many of them were matched by e-mail
    file_rows: int | None = None
    matched: int = 0
    #: registrants whose answers to custom questions were not read (the run stopped first)
    unanswered: int = 0
    stopped: RunStopped | None = None
    dry_run: bool = False
    #: where the report went (None in a dry run)
    report: Path | None = None
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())

    @property
    def exit_code(self) -> int:
        """0, or the stop's own code when the answers could not all be read."""
        return self.stopped.exit_code if self.stopped is not None else EXIT_OK

    def summary(self) -> str:
        """``120 registrants exported`` or ``90 of 100 rows matched``."""
        if self.file_rows is not None:
            return f"{self.matched:,} of {counted(self.file_rows, 'row')} matched a registrant"
        return f"{counted(self.registrants, 'registrant')} exported"

    def ending(self) -> str | None:
        """Why the answers are incomplete, if they are, and what to do."""
        if self.stopped is None:
            return None
        return (
            f"Stopped early: {self.stopped}. The answers of "
            f"{counted(self.unanswered, 'registrant')} are missing: export again later for all "
            "of them."
        )


async def export(
    access: Access,
    options: ManageOptions,
    console: Console,
    stop: StopSignal | None = None,
    *,
    merge: Path | None = None,
    answers: bool = True,
) -> Exported:
    """Write everyone registered for the webinar to ``options.out``; or, with ``merge``, a copy
    of that file with each row's registrant key, join URL and status (matched by e-mail)."""
    check_out(options.out)
    table = reader.read(merge, sheet=options.sheet) if merge is not None else None
    for note in table.notes if table is not None else ():
        console.note(note)
    async with connected(access, options, stop, table) as run:
        questions: list[str] = []
        if answers and table is None:
            form = await run.session.call(run.client.get_form, what="reading the webinar's form")
            questions = [question.text for question in form.questions]
        listed = await run.directory().read()
        out = options.out or _default_out(merge, run.webinar)
        matched = _matched(table, listed) if table is not None else 0
        show(console, run, _plan(len(listed), table, matched, questions, out))
        done = Exported(run.webinar, len(listed), len(table.rows) if table else None, matched)
        if options.dry_run:
            return replace(done, dry_run=True)
        if not console.confirm(f"Write {out.name}?"):
            raise Declined("Nothing was written.")
        entries = list(listed.values())
        read = await _answers(run, entries, console) if questions and entries else {}
    unanswered = len(entries) - len(read) if questions else 0
    done = replace(done, unanswered=unanswered, stopped=run.session.stopped)
    if table is not None:
        built = _merged(table, listed)
    else:
        built = _listing(done, entries, questions, read)
    return replace(done, report=report.write(built, out, console.note))


def _default_out(merge: Path | None, webinar: Webinar) -> Path:
    """Beside the file merged into, in its kind (CSV or XLSX); else named after the webinar."""
    if merge is None:
        return named_after(webinar, "registrants.xlsx")
    csv = merge.suffix.lower() in reader.CSV_SUFFIXES
    return beside(merge, "registrants.csv" if csv else "registrants.xlsx")


def _plan(
    found: int, table: Table | None, matched: int, questions: Sequence[str], out: Path
) -> list[tuple[str, str]]:
    plan = [("Found", counted(found, "registrant"))]
    if table is not None:
        rows = len(table.rows)
        plan.append(
            (
                "Merge",
                f"{table.describe()} ({counted(rows, 'row')}): {matched:,} matched by e-mail, "
                f"{rows - matched:,} not registered",
            )
        )
    if questions and found:
        plan.append(
            (
                "Answers",
                f"{len(questions)} custom questions, read one registrant at a time "
                f"({counted(found, 'call')}; --no-answers leaves them out)",
            )
        )
    replaces = " (replacing the file there)" if out.exists() else ""
    plan.append(("Write to", f"{out}{replaces}"))
    return plan


async def _answers(run: Run, entries: list[ListedRegistrant], console: Console) -> Answers:
    """Each registrant's answers to the custom questions, by registrant key, until the run
    stops; a registrant cancelled meanwhile has none."""
    queue = collections.deque(entries)
    found: dict[str, tuple[tuple[str, str], ...]] = {}
    bar = progress(console, len(entries))

    async def worker() -> None:
        while queue and not run.session.stopping:
            entry = queue.popleft()
            try:
                one = await run.session.call(
                    functools.partial(run.client.get_registrant, entry.registrant_key),
                    what="reading a registrant's answers",
                )
            except RunStopped:
                return
            found[entry.registrant_key] = (one.responses or ()) if one is not None else ()
            bar.advance()

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(run.workers, len(queue))):
                group.create_task(worker())
    finally:
        bar.finish()
    return found


def _listing(
    outcome: Exported, entries: list[ListedRegistrant], questions: Sequence[str], read: Answers
) -> report.Report:
    """Everyone registered, in the order GoTo lists them, with an answer column per question."""
    asked = list(questions)
    for answers in read.values():
        asked += [question for question, _ in answers if question not in asked]
    rows: list[tuple[int | str, ...]] = []
    for entry in entries:
        given = dict(read.get(entry.registrant_key, ()))
        rows.append(
            (
                entry.first_name,
                entry.last_name,
                entry.email,
                entry.status or "",
                entry.registered_at or "",
                entry.registrant_key,
                entry.join_url or "",
                *(given.get(question, "") for question in asked),
            )
        )
    summary: list[tuple[str, str | int]] = [
        ("Webinar", webinar_line(outcome.webinar)),
        ("Exported at", stamp(outcome.started)),
        ("Registrants", outcome.registrants),
    ]
    if outcome.unanswered:
        summary.append(
            (
                "Answers",
                f"not read for {counted(outcome.unanswered, 'registrant')}: the run stopped first "
                f"({outcome.stopped}); export again for all of them",
            )
        )
    return report.Report(
        (
            *HEADERS,
            *(
                question if question not in HEADERS else f"{question} (answer)"
                for question in asked
            ),
        ),
        rows,
        [],
        tuple(summary),
        title="Registrant list",
        colours=tuple(_COLOURS.get(entry.status or "", report.PALE_GREEN) for entry in entries),
    )


def _merged(table: Table, listed: Mapping[str, ListedRegistrant]) -> report.Report:
    """The file's own columns and rows, in their order, with the filled columns added at the
    end (or filled where the file has them already)."""
    headers = list(table.headers)
    at = {fold(header): index for index, header in reversed(list(enumerate(headers)))}
    for name in FILLED:
        if fold(name) not in at:
            at[fold(name)] = len(headers)
            headers.append(name)
    rows: list[tuple[int | str, ...]] = []
    colours = []
    for raw, person in zip(table.rows, people(table), strict=True):
        cells = [*raw.cells, *[""] * (len(headers) - len(raw.cells))]
        found = listed.get(email_key(person.email))
        filled = (
            (found.registrant_key, found.join_url or "", found.status or "")
            if found is not None
            else ("", "", NOT_REGISTERED)
        )
        for name, value in zip(FILLED, filled, strict=True):
            cells[at[fold(name)]] = value
        rows.append(tuple(cells))
        colours.append(report.GREEN if found is not None else report.YELLOW)
    return report.Report(tuple(headers), rows, [], colours=tuple(colours))


def _matched(table: Table, listed: Mapping[str, ListedRegistrant]) -> int:
    return sum(1 for person in people(table) if email_key(person.email) in listed)
