"""Check and normalise every row before a single call is made. Pure: no I/O.

A row problem is data, not an exception: every problem of every row is collected, in the input's
own column names and line numbers, so that one pass over the sheet fixes them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from .columns import OPTIONAL, REQUIRED, ColumnMap, fold
from .errors import InputError
from .models import Form, RawRow, Registrant, Response, RowProblem, Table
from .text import hidden_character, normalise, printable

#: GoTo's limits for standard fields and for answers, where a webinar's form gives none
MAX_FIELD_LENGTH = 128
MAX_ANSWER_LENGTH = 1000

# A plain ASCII address that email-validator is certain to accept; anything else goes through
# email-validator itself (IDN domains, quoted parts, and every error message).
_SIMPLE_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


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
class Rule:
    """How one column is checked and sent: a standard field, or a custom question's answer."""

    name: str  #: the API field name, or the question's key
    index: int
    header: str
    required: bool
    max_size: int
    #: allowed answers, case-folded → what is sent (the field's spelling, or the answer key)
    choices: Mapping[str, str] = field(default_factory=dict)
    #: the allowed answers as the webinar spells them, for messages
    shown: tuple[str, ...] = ()
    question: bool = False


@dataclass(frozen=True)
class Plan:
    """What an import would do: who is sent, which rows are invalid, which repeat an e-mail."""

    table: Table
    columns: ColumnMap
    registrants: tuple[Registrant, ...]
    problems: Mapping[int, tuple[RowProblem, ...]]
    duplicates: Mapping[int, int]
    rules: tuple[Rule, ...] = ()

    @property
    def ignored_headers(self) -> tuple[str, ...]:
        """Input columns that map to no API field or question: kept in the report, not sent."""
        used = {rule.index for rule in self.rules}
        return tuple(h for i, h in enumerate(self.table.headers) if i not in used)


def validate(table: Table, form: Form | None = None) -> Plan:
    """Check every row of ``table``, against the webinar's ``form`` when it is known.

    Raises :class:`InputError` only when a column the webinar requires is absent altogether.
    """
    columns = ColumnMap.from_headers(table.headers)
    rules = _rules(table, columns, form or Form())
    registrants: list[Registrant] = []
    problems: dict[int, tuple[RowProblem, ...]] = {}
    duplicates: dict[int, int] = {}
    first_line_of: dict[str, int] = {}
    for row in table.rows:
        registrant, row_problems = check_row(row, rules)
        if row_problems:
            problems[row.line] = row_problems
            continue
        assert registrant is not None
        earlier = first_line_of.setdefault(registrant.email_key, row.line)
        if earlier != row.line:
            duplicates[row.line] = earlier
            continue
        registrants.append(registrant)
    return Plan(table, columns, tuple(registrants), problems, duplicates, rules)


def check_columns(table: Table) -> None:
    """Refuse a table without a first name, last name or e-mail column, before any call."""
    _rules(table, ColumnMap.from_headers(table.headers), Form())


def _rules(table: Table, columns: ColumnMap, form: Form) -> tuple[Rule, ...]:
    """One rule per column that is sent, required fields first; refuse missing required ones."""
    rules: list[Rule] = []
    missing: list[str] = []
    for name in (*REQUIRED, *OPTIONAL):
        spec = form.field(name)
        required = name in REQUIRED or (spec is not None and spec.required)
        index = columns.positions.get(name)
        if index is None:
            if required:
                missing.append(name)
            continue
        answers = spec.answers if spec else ()
        rules.append(
            Rule(
                name,
                index,
                table.headers[index],
                required,
                (spec.max_size if spec and spec.max_size else MAX_FIELD_LENGTH),
                {answer.casefold(): answer for answer in answers},
                answers,
            )
        )
    taken = {rule.index for rule in rules}
    by_header = {fold(h): i for i, h in enumerate(table.headers) if i not in taken}
    for question in form.questions:
        index = by_header.get(fold(question.text))
        if index is None:
            if question.required:
                missing.append(f"'{question.text}'")
            continue
        rules.append(
            Rule(
                question.key,
                index,
                table.headers[index],
                question.required,
                question.max_size or MAX_ANSWER_LENGTH,
                {answer.text.casefold(): answer.key for answer in question.answers},
                tuple(answer.text for answer in question.answers),
                question=True,
            )
        )
    if missing:
        names = " and ".join(missing)
        shown = ", ".join(f"'{h}'" for h in table.headers[:8])
        raise InputError(
            f"{table.describe()}: no {names} column (the header in line {table.header_line} "
            f"has {shown}); add a column named {names}, or rename the one that holds it"
        )
    return tuple(rules)


def check_row(
    row: RawRow, rules: tuple[Rule, ...]
) -> tuple[Registrant | None, tuple[RowProblem, ...]]:
    """Normalise one row into a registrant, or say everything that is wrong with it."""
    problems: list[RowProblem] = []
    values: dict[str, str] = {}
    responses: list[Response] = []
    for rule in rules:
        value = normalise(row.cells[rule.index])
        problem = _problem(rule, value)
        if problem:
            problems.append(RowProblem(row.line, rule.header, problem))
        elif value and rule.question:
            chosen = rule.choices.get(value.casefold())
            responses.append(
                Response(rule.name, answer_key=chosen)
                if rule.choices
                else Response(rule.name, value)
            )
        elif value:
            values[rule.name] = rule.choices.get(value.casefold(), value)
    if problems:
        return None, tuple(problems)
    first, last, email = values.pop("firstName"), values.pop("lastName"), values.pop("email")
    return Registrant(row.line, first, last, email, values, tuple(responses)), ()


_WHAT = {"firstName": "the first name", "lastName": "the last name", "email": "the e-mail address"}


def _problem(rule: Rule, value: str) -> str | None:
    if not value:
        if not rule.required:
            return None
        return f"is empty; fill in {_WHAT.get(rule.name, 'an answer: this webinar requires one')}"
    hidden = hidden_character(value)
    if hidden:
        return f"'{printable(value)}' contains {hidden}; retype the value"
    if len(value) > rule.max_size:
        return f"is {len(value)} characters long; GoTo accepts at most {rule.max_size}"
    if rule.choices and value.casefold() not in rule.choices:
        return f"'{value}' is not one of the answers; choose {', '.join(rule.shown)}"
    if rule.name == "email":
        reason = email_problem(value)
        if reason:
            return f"'{value}' is not a valid e-mail address ({reason})"
    return None
