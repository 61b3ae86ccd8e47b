"""The people of a table as the commands that match by e-mail read them (``cancel``, ``undo``,
``export --merge``): each row's line, names and e-mail."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from importer.model import Table, email_key
from importer.read.columns import ColumnMap
from importer.text import normalise


@dataclass(frozen=True)
class Person:
    """One row of an input file: its line, names and e-mail."""

    line: int
    first_name: str
    last_name: str
    email: str


def people(table: Table) -> list[Person]:
    """Every data row's names and e-mail (trimmed; empty where the file has no such column)."""
    positions = ColumnMap.from_headers(table.headers).positions

    def cell(cells: tuple[str, ...], name: str) -> str:
        index = positions.get(name)
        return normalise(cells[index]) if index is not None else ""

    return [
        Person(
            row.line,
            cell(row.cells, "firstName"),
            cell(row.cells, "lastName"),
            cell(row.cells, "email"),
        )
        for row in table.rows
    ]


def first_lines(persons: Iterable[Person]) -> dict[str, int]:
    """The line each e-mail (ignoring case) first appears in, in the order of the lines."""
    found: dict[str, int] = {}
    for person in persons:
        if person.email:
            found.setdefault(email_key(person.email), person.line)
    return found
