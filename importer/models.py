"""The data that flows through the pipeline: read → validate → register → report."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class Status(enum.StrEnum):
    """What became of one input row; the report's ``status`` column."""

    REGISTERED = "registered"
    ALREADY_REGISTERED = "already_registered"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    PENDING = "pending"

    @property
    def ok(self) -> bool:
        """Whether the person ends up registered."""
        return self in (Status.REGISTERED, Status.ALREADY_REGISTERED)


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read: every cell as text, and the line Excel shows for it."""

    line: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A whole input sheet: its header, its data rows and what the reader had to say about it."""

    source: Path
    headers: tuple[str, ...]
    header_line: int
    rows: tuple[RawRow, ...]
    sheet: str | None = None
    notes: tuple[str, ...] = ()
    #: data rows that were entirely blank and so skipped
    blank_rows: int = 0

    def describe(self) -> str:
        """``people.xlsx, sheet 'Guests'`` or just the file name, for messages."""
        return f"{self.source.name}, sheet '{self.sheet}'" if self.sheet else self.source.name


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row cannot be sent, in the input's own terms."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class Registrant:
    """A validated person, ready to be sent. ``fields`` holds optional API fields by API name."""

    line: int
    first_name: str
    last_name: str
    email: str
    fields: Mapping[str, str] = field(default_factory=dict)

    @property
    def email_key(self) -> str:
        """The e-mail as GoTo compares it: one registration per address, ignoring case."""
        return self.email.casefold()

    def body(self) -> dict[str, object]:
        """The JSON body of the create-registrant call."""
        return {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            **self.fields,
        }


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of sending one registrant."""

    line: int
    status: Status
    registrant_key: str | None = None
    join_url: str | None = None
    error: str | None = None
    #: a failure that may pass (retries ran out): the next run tries the row again
    retryable: bool = False
