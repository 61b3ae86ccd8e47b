"""What an ``export`` came to: everyone registered for a webinar, with their join URLs and
answers; or, with a file to merge into, that file with each row's key, join URL and status.

Both are written like the registration report (atomically, keys as text, no formula cells,
UTF-8 with a BOM in CSV, clickable join URLs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from importer import report
from importer.errors import EXIT_OK, RunStopped
from importer.model import ListedRegistrant, Table, Webinar, email_key
from importer.read import reader
from importer.read.columns import fold
from importer.read.people import people
from importer.report.names import beside, named_after, stamp
from importer.text import counted

if TYPE_CHECKING:
    import pandas

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
    """What an export came to: the registrant list (with the answers read), or the file merged
    into with what the list says of each row."""

    webinar: Webinar
    #: everyone registered for the webinar, in the order GoTo lists them
    entries: tuple[ListedRegistrant, ...]
    #: the custom questions, and each registrant's answers by registrant key
    questions: tuple[str, ...] = ()
    answers: Answers = field(default_factory=dict)
    #: the file to merge into (``--merge``), when there is one
    table: Table | None = None
    #: registrants whose answers to custom questions were not read (the run stopped first)
    unanswered: int = 0
    stopped: RunStopped | None = None
    dry_run: bool = False
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())

    @property
    def registrants(self) -> int:
        """How many are registered for the webinar."""
        return len(self.entries)

    @property
    def file_rows(self) -> int | None:
        """The rows of the file merged into, if any."""
        return len(self.table.rows) if self.table is not None else None

    @property
    def matched(self) -> int:
        """How many rows of the file merged into matched a registrant by e-mail."""
        if self.table is None:
            return 0
        listed = {email_key(entry.email) for entry in self.entries}
        return sum(1 for person in people(self.table) if email_key(person.email) in listed)

    @property
    def exit_code(self) -> int:
        """0, or the stop's own code when the answers could not all be read."""
        return self.stopped.exit_code if self.stopped is not None else EXIT_OK

    @property
    def default_report(self) -> Path:
        """Beside the file merged into, in its kind (CSV or XLSX); else in the current folder,
        named after the webinar."""
        source = self.table.source if self.table is not None else None
        if source is None:
            return named_after(self.webinar, "registrants.xlsx")
        csv = source.suffix.lower() in reader.CSV_SUFFIXES
        return beside(source, "registrants.csv" if csv else "registrants.xlsx")

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

    def report(self) -> report.Report:
        """The registrant list, or the file merged into, as a report."""
        if self.table is not None:
            return _merged(self.table, self.entries)
        return _listing(self)

    def write(self, path: str | Path, note: Callable[[str], None] | None = None) -> Path:
        """Write the report (``.xlsx`` or ``.csv``), as the command does; return where it went
        (beside ``path``, and ``note`` told why, when that file is locked)."""
        return report.write(self.report(), Path(path), note)

    def to_pandas(self) -> pandas.DataFrame:
        """The report as a DataFrame: a row per registrant, or per row of the file merged into
        (with a DataFrame's own index)."""
        frame = report.frame(self.report())
        if self.table is not None and self.table.index is not None:
            index = self.table.index
            frame.index = [index[row.line - 2] for row in self.table.rows]
        return frame

    def __repr__(self) -> str:
        return f"<Exported exit_code={self.exit_code} {self.summary()}>"


def _listing(outcome: Exported) -> report.Report:
    """Everyone registered, in the order GoTo lists them, with an answer column per question."""
    entries, read = outcome.entries, outcome.answers
    asked = list(outcome.questions)
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
        ("Webinar", outcome.webinar.describe()),
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


def _merged(table: Table, entries: tuple[ListedRegistrant, ...]) -> report.Report:
    """The file's own columns and rows, in their order, with the filled columns added at the
    end (or filled where the file has them already)."""
    listed: dict[str, ListedRegistrant] = {}
    for entry in entries:
        listed.setdefault(email_key(entry.email), entry)
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
