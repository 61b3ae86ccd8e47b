"""Check and normalise every row before a single call is made. Pure: no I/O.

A row problem is data, not an exception: every problem of every row is collected, in the input's
own column names and line numbers, so that one pass over the sheet fixes them all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from .columns import REQUIRED, ColumnMap
from .errors import InputError, UsageError
from .models import RawRow, Registrant, RowProblem, Table

#: GoTo's limit for standard registration fields (``maxSize`` in the fields endpoint).
MAX_FIELD_LENGTH = 128

# Characters that hide in copied-and-pasted cells. At the edges they are trimmed; inside a value
# they are reported, because silently dropping them could change a name or address.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_INVISIBLE_INSIDE = {
    "\u00a0": "a non-breaking space",
    "\u2007": "a non-breaking space",
    "\u202f": "a narrow non-breaking space",
    "\u200b": "a zero-width space",
    "\u200c": "a zero-width character",
    "\u200d": "a zero-width character",
    "\u2060": "a zero-width character",
    "\ufeff": "a zero-width character",
    "\u00ad": "a soft hyphen",
    "\t": "a tab",
    "\n": "a line break",
    "\r": "a line break",
}
_INSIDE_PATTERN = re.compile(
    "[" + re.escape("".join(_INVISIBLE_INSIDE)) + r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)
_EDGE_CHARACTERS = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + _ZERO_WIDTH

# A plain ASCII address that email-validator is certain to accept; anything else goes through
# email-validator itself (IDN domains, quoted parts, and every error message).
_SIMPLE_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def normalise(value: str) -> str:
    """Trim whitespace of every kind, and zero-width characters, from both ends of a cell."""
    return value.strip(_EDGE_CHARACTERS)


def hidden_character(value: str) -> str | None:
    """A description of the first invisible character inside ``value``, or None."""
    if value.isascii() and value.isprintable():  # the common case, at C speed
        return None
    found = _INSIDE_PATTERN.search(value)
    return _INVISIBLE_INSIDE.get(found.group(), "a control character") if found else None


def email_problem(address: str) -> str | None:
    """Why ``address`` is not a usable e-mail address, or None when it is."""
    if _SIMPLE_EMAIL.fullmatch(address) and len(address) <= 254:
        local, _, domain = address.rpartition("@")
        if len(local) <= 64 and domain.rsplit(".", 1)[-1].lower() not in _SPECIAL_USE_TLDS:
            return None
    return _email_validator_problem(address)


@lru_cache(maxsize=4096)
def _email_validator_problem(address: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        return reason[:1].lower() + reason[1:]
    return None


@dataclass(frozen=True)
class Plan:
    """What an import would do: who is sent, which rows are invalid, which repeat an e-mail."""

    table: Table
    columns: ColumnMap
    registrants: tuple[Registrant, ...]
    problems: Mapping[int, tuple[RowProblem, ...]]
    duplicates: Mapping[int, int]

    @property
    def ignored_headers(self) -> tuple[str, ...]:
        """Input columns that map to no API field: kept in the report, not sent."""
        used = set(self.columns.positions.values())
        return tuple(h for i, h in enumerate(self.table.headers) if i not in used)


def validate(table: Table) -> Plan:
    """Check every row of ``table``; :class:`InputError` only when a required column is absent."""
    columns = ColumnMap.from_headers(table.headers)
    if columns.missing:
        missing = " and ".join(columns.missing)
        shown = ", ".join(f"'{h}'" for h in table.headers[:8])
        raise InputError(
            f"{table.describe()}: no {missing} column (the header in line {table.header_line} "
            f"has {shown}); add a column named {missing}, or rename the one that holds it"
        )
    registrants: list[Registrant] = []
    problems: dict[int, tuple[RowProblem, ...]] = {}
    duplicates: dict[int, int] = {}
    first_line_of: dict[str, int] = {}
    fields = columns.fields(table.headers)
    for row in table.rows:
        registrant, row_problems = check_row(row, fields)
        if row_problems:
            problems[row.line] = row_problems
            continue
        assert registrant is not None
        earlier = first_line_of.setdefault(registrant.email_key, row.line)
        if earlier != row.line:
            duplicates[row.line] = earlier
            continue
        registrants.append(registrant)
    return Plan(table, columns, tuple(registrants), problems, duplicates)


def check_row(
    row: RawRow, fields: tuple[tuple[str, int, str], ...]
) -> tuple[Registrant | None, tuple[RowProblem, ...]]:
    """Normalise one row into a registrant, or say everything that is wrong with it.

    ``fields`` lists (API field, column index, header), the required fields first.
    """
    problems: list[RowProblem] = []
    values: dict[str, str] = {}
    for name, index, header in fields:
        value = normalise(row.cells[index])
        problem = _field_problem(name, value)
        if problem:
            problems.append(RowProblem(row.line, header, problem))
        elif value:
            values[name] = value
    if problems:
        return None, tuple(problems)
    first, last, email = values.pop("firstName"), values.pop("lastName"), values.pop("email")
    return Registrant(row.line, first, last, email, values), ()


_WHAT = {"firstName": "the first name", "lastName": "the last name", "email": "the e-mail address"}


def _field_problem(name: str, value: str) -> str | None:
    if not value:
        return f"is empty; fill in {_WHAT[name]}" if name in REQUIRED else None
    hidden = hidden_character(value)
    if hidden:
        return f"'{_printable(value)}' contains {hidden}; retype the value"
    if len(value) > MAX_FIELD_LENGTH:
        return f"is {len(value)} characters long; GoTo accepts at most {MAX_FIELD_LENGTH}"
    if name == "email":
        reason = email_problem(value)
        if reason:
            return f"'{value}' is not a valid e-mail address ({reason})"
    return None


def _printable(value: str) -> str:
    """``value`` with invisible characters shown as ``<U+00A0>``, so the user can find them."""
    return "".join(
        f"<U+{ord(ch):04X}>" if ch in _INVISIBLE_INSIDE or unicodedata.category(ch) == "Cc" else ch
        for ch in value
    )


_EXCEL_NUMBER = re.compile(r"\d+(?:[.,]\d*)?[eE][+-]?\d+")
_EXCEL_DIGITS = 15


def check_key(what: str, value: str) -> str:
    """A webinar or organizer key as its exact digits; refuse one that Excel has mangled.

    Keys have up to 19 digits and Excel keeps 15 of a number: ``8.32536E+18`` or a key ending
    in zeros past the 15th digit has lost digits that nothing can bring back.
    """
    text = normalise(value)
    fix = "format the cell as Text (or type an apostrophe first), paste the key again and rerun"
    if _EXCEL_NUMBER.fullmatch(text):
        raise UsageError(f"{what} '{text}' is a number rounded by Excel, not a key; {fix}")
    if not text.isdigit() or not text.isascii():
        raise UsageError(
            f"{what} '{text}' is not a key: a key is a number of up to 19 digits with nothing else"
        )
    if len(text) > 19 or int(text) >= 2**63:
        raise UsageError(f"{what} '{text}' is too long for a key (at most 19 digits)")
    if len(text) > _EXCEL_DIGITS and not text[_EXCEL_DIGITS:].strip("0"):
        raise UsageError(
            f"{what} '{text}' ends in zeros after digit {_EXCEL_DIGITS}, the sign of a key "
            f"that Excel rounded; {fix}"
        )
    return text
