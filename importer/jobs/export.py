"""``export``: everyone registered for a webinar, whatever channel they came through, with their
join URLs; or, with a file to merge into, each row's key, join URL and status, matched by
e-mail (:class:`~importer.report.registrants.Exported`).

The answers to custom questions come one registrant at a time (the list does not carry them):
one call each, at the same pace as every other call.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Sequence
from pathlib import Path

from importer.errors import Declined, RunStopped
from importer.events import Brief, Listener, Silent, StopSignal
from importer.goto.connection import Access
from importer.jobs.common import Options, Run, connected
from importer.model import ListedRegistrant, Table
from importer.read import reader
from importer.read.reader import Source
from importer.report.registrants import Answers, Exported
from importer.text import counted

#: what an export's progress counts: a registrant whose answers were read
READ = "read"


async def export(
    source: Source | None,
    access: Access,
    options: Options | None = None,
    listener: Listener | None = None,
    stop: StopSignal | None = None,
) -> Exported:
    """Everyone registered for the webinar; or, with ``source`` (a file, a DataFrame or
    records to merge into), each of its rows with its registrant key, join URL and status
    (matched by e-mail)."""
    options = options or Options()
    listener = listener or Silent()
    table = reader.read(source, sheet=options.sheet) if source is not None else None
    for note in table.notes if table is not None else ():
        listener.note(note)
    async with connected(access, options, stop, table) as run:
        questions: tuple[str, ...] = ()
        if options.answers and table is None:
            form = await run.session.call(run.client.get_form, what="reading the webinar's form")
            questions = tuple(question.text for question in form.questions)
        listed = await run.directory().read()
        done = Exported(run.webinar, tuple(listed.values()), questions, table=table)
        out = options.report or done.default_report
        listener.plan(
            Brief(
                "export",
                run.webinar,
                tuple(_plan(len(listed), table, done.matched, questions, out)),
                run.connection.label,
            )
        )
        if options.dry_run:
            return Exported(run.webinar, done.entries, questions, table=table, dry_run=True)
        if not listener.confirm(f"Write {out.name}?"):
            raise Declined("Nothing was written.")
        entries = list(listed.values())
        read = await _answers(run, entries, listener) if questions and entries else {}
    unanswered = len(entries) - len(read) if questions else 0
    return Exported(
        run.webinar,
        done.entries,
        questions,
        read,
        table,
        unanswered=unanswered,
        stopped=run.session.stopped,
    )


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


async def _answers(run: Run, entries: list[ListedRegistrant], listener: Listener) -> Answers:
    """Each registrant's answers to the custom questions, by registrant key, until the run
    stops; a registrant cancelled meanwhile has none."""
    queue = collections.deque(entries)
    found: dict[str, tuple[tuple[str, str], ...]] = {}
    listener.started(len(entries))

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
            listener.settled(READ, 0)

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(run.workers, len(queue))):
                group.create_task(worker())
    finally:
        listener.finished()
    return found
