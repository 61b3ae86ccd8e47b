"""Check and normalise every row before a single call is made. Pure: no I/O.

A row problem is data, not an exception: every problem of every row is collected, in the input's
own column names and line numbers, so that one pass over the sheet fixes them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from importer.errors import InputError
from importer.model import (
    Form,
    FormField,
    Question,
    RawRow,
    Registrant,
    Response,
    RowProblem,
    Table,
)
from importer.read.columns import (
    ALIASES,
    OPTIONAL,
    REQUIRED,
    ColumnMap,
    field_for,
    fold,
    near_field,
)
from importer.text import hidden_character, normalise, printable

if TYPE_CHECKING:
    pass

#: a single column with the whole name, split into first and last name at the last space
FULL_NAME = "fullName"
FULL_NAME_HEADERS = frozenset(
    {"name", "fullname", "vollstandigername", "nomcomplet", "nombrecompleto", "attendee"}
)
#: GoTo's limits for standard fields and for answers, where a webinar's form gives none
MAX_FIELD_LENGTH = 128
MAX_ANSWER_LENGTH = 1000

# A plain ASCII address that email-validator is certain to accept; anything else goes through
# email-validator itself (IDN domains, quoted parts, and every error message).
_SIMPLE_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    # a label with "--" in its third and fourth places is reserved (IDNA): not simple
    r"@(?:(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
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
        # the library's sentences, run into one clause: "… is not valid. It should have a
        # period." → "… is not valid; it should have a period"
        sentences = [s.strip() for s in str(exc).rstrip(".").split(". ") if s.strip()]
        reason = "; ".join(s[:1].lower() + s[1:] for s in sentences)
        return reason
    return None


@dataclass(frozen=True)
class Rule:
    """How one column is checked and sent: a standard field, or a custom question's answer."""

    name: str  #: the API field name, or the question's key
    index: int
    header: str
    required: bool
    max_size: int
    #: allowed answers, lower-cased → what is sent (the field's spelling, or the answer key)
    choices: Mapping[str, str] = field(default_factory=dict)
    #: the allowed answers as the webinar spells them, for messages
    shown: tuple[str, ...] = ()
    question: str | None = None  #: the question's text, for a custom question

    @property
    def plain(self) -> bool:
        """Whether the header alone says what the column is sent as: it reads as the field's
        name, or as the question's text without also reading as a standard field."""
        if self.question is not None:
            return field_for(self.header) is None
        return self.name != FULL_NAME and fold(self.header) == fold(self.name)

    @property
    def sent_as(self) -> str:
        """What the column is sent as, in words: ``organization``, ``question 'Role?'``."""
        if self.question is not None:
            return f"question '{self.question}'"
        if self.name == FULL_NAME:
            return "firstName and lastName (split at the last space)"
        return self.name


@dataclass(frozen=True)
class Plan:
    """What an import would do: who is sent, which rows are invalid, which repeat an e-mail."""

    table: Table
    columns: ColumnMap
    registrants: tuple[Registrant, ...]
    problems: Mapping[int, tuple[RowProblem, ...]]
    duplicates: Mapping[int, int]
    rules: tuple[Rule, ...] = ()
    #: why a column that looks like a field is not sent, by column
    unsent: Mapping[int, str] = field(default_factory=dict)
    #: columns not sent that look like a misspelt field or question the webinar asks for and
    #: no column fills: (header, that field's name or question's text)
    near: tuple[tuple[str, str], ...] = ()
    #: rows hidden in Excel, not sent (unless the table sends them): their lines
    hidden: frozenset[int] = frozenset()

    @property
    def ignored_headers(self) -> tuple[str, ...]:
        """Input columns that map to no API field or question: kept in the report, not sent."""
        used = {rule.index for rule in self.rules}
        return tuple(h for i, h in enumerate(self.table.headers) if i not in used)


def validate(table: Table, form: Form | None = None) -> Plan:
    """Check every row of ``table``, against the webinar's ``form`` when it is known.

    Raises :class:`InputError` only when a column the webinar requires is absent altogether,
    or the form itself cannot be filled in (a required multiple-choice question with no
    answers).
    """
    columns = ColumnMap.from_headers(table.headers)
    rules, unsent = _rules(table, form or Form())
    registrants: list[Registrant] = []
    problems: dict[int, tuple[RowProblem, ...]] = {}
    duplicates: dict[int, int] = {}
    first_line_of: dict[str, int] = {}
    hidden: set[int] = set()
    for row in table.rows:
        if row.hidden and not table.send_hidden_rows:
            hidden.add(row.line)
            continue
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
    near = _near(table, form or Form(), rules, unsent)
    return Plan(
        table,
        columns,
        tuple(registrants),
        problems,
        duplicates,
        rules,
        unsent,
        near,
        hidden=frozenset(hidden),
    )


def check_columns(table: Table) -> None:
    """Refuse a table without a first name, last name or e-mail column, before any call."""
    _rules(table, Form())


def _rules(table: Table, form: Form) -> tuple[tuple[Rule, ...], dict[int, str]]:
    """One rule per column that is sent; refuse missing required ones.

    The webinar's form decides. A column named like one of its questions answers it, ahead of
    any alias of a standard field ("Company" can be a question); a standard field its form does
    not list is not claimed at all; a field it lists under a name the importer has no alias for
    is taken from a column named exactly so. Without a form (a dry run without sign-in) every
    standard field counts. A single full-name column stands in for first and last name.
    """
    taken: set[int] = set()
    missing: list[str] = []
    unsent: dict[int, str] = {}

    def claim(key: Callable[[str], str | None], wanted: Collection[str]) -> int | None:
        """The first column not yet taken whose ``key(header)`` is among ``wanted``."""
        index = next(
            (i for i, h in enumerate(table.headers) if i not in taken and key(h) in wanted), None
        )
        if index is not None:
            taken.add(index)
        return index

    questions = [_question_rule(table, q, claim, missing, unsent) for q in form.questions]
    answered = {rule.name for rule in questions if rule is not None}
    listed = {spec.name for spec in form.fields}
    #: question text → a column named like a standard field the form does not ask for, whose
    #: meaning that question asks for (an ``organization`` column, a question "Company")
    asked_as: dict[str, int] = {}
    fields: list[Rule] = []
    for name in (*REQUIRED, *OPTIONAL):
        spec = form.field(name)
        if listed and spec is None and name not in REQUIRED:
            for other, header in enumerate(table.headers):
                if other not in taken and field_for(header) == name:
                    question = next(
                        (
                            q
                            for q in form.questions
                            if field_for(q.text) == name
                            and q.key not in answered
                            and not unanswerable(q)
                        ),
                        None,
                    )
                    if question is None:
                        unsent[other] = "not a field of this webinar"
                        continue
                    asked_as.setdefault(question.text, other)
                    unsent[other] = (
                        f"this webinar asks for it as the question '{question.text}'; rename the "
                        f"column to '{question.text}' to answer it"
                    )
            continue
        index = claim(field_for, (name,))
        if index is None and name in ("firstName", "lastName"):
            continue  # perhaps a full-name column: see below
        required = name in REQUIRED or (spec is not None and spec.required)
        if index is None:
            if required:
                missing.append(name)
            continue
        fields.append(_field_rule(table, name, index, required, spec))
    _full_name(table, fields, claim, missing)
    for spec in form.fields:
        if spec.name in ALIASES:
            continue
        found = claim(fold, (fold(spec.name),))
        if found is None:
            if spec.required:
                missing.append(spec.name)
            continue
        fields.append(_field_rule(table, spec.name, found, spec.required, spec))
    if missing:
        shown = ", ".join(f"'{h}'" for h in table.headers[:8])
        if len(table.headers) > 8:
            shown += f" and {len(table.headers) - 8:,} more"
        added = [name for name in missing if name not in asked_as]
        fixes = [
            f"rename the column '{table.headers[asked_as[name]]}' to '{name}' (this webinar asks "
            "for it as a question)"
            for name in missing
            if name in asked_as
        ]
        if len(added) == 1:
            fixes.insert(0, f"add a column named '{added[0]}', or rename the one that holds it")
        elif added:
            fixes.insert(
                0, f"add columns named {_listed(added, 'and')}, or rename the ones that hold them"
            )
        raise InputError(
            f"{table.describe()}: no {_listed(missing, 'or')} column (the header in line "
            f"{table.header_line} has {shown}); {'; and '.join(fixes)}"
        )
    order = {name: n for n, name in enumerate((FULL_NAME, *REQUIRED))}
    fields.sort(key=lambda rule: order.get(rule.name, len(order)))
    return (*fields, *(rule for rule in questions if rule is not None)), unsent


#: finds and takes a column: by how its header reads (``key``), among ``wanted`` readings
Claim = Callable[[Callable[[str], str | None], Collection[str]], int | None]


def _listed(names: list[str], last: str) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b' or 'c'``: field names and question texts alike."""
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {last} {quoted[-1]}"


def _near(
    table: Table, form: Form, rules: tuple[Rule, ...], unsent: Mapping[int, str]
) -> tuple[tuple[str, str], ...]:
    """The columns not sent that look like a misspelling of a field or question the webinar
    asks for and no column fills (without a form, of any standard field no column fills)."""
    filled = {rule.name for rule in rules}
    if FULL_NAME in filled:
        filled |= {"firstName", "lastName"}
    listed = {spec.name for spec in form.fields}
    standard = [
        name
        for name in (*REQUIRED, *OPTIONAL)
        if name not in filled and (not listed or name in listed or name in REQUIRED)
    ]
    others = [
        *(
            spec.name
            for spec in form.fields
            if spec.name not in ALIASES and spec.name not in filled
        ),
        *(q.text for q in form.questions if q.key not in filled and not unanswerable(q)),
    ]
    used = {rule.index for rule in rules} | set(unsent)
    return tuple(
        (header, which)
        for index, header in enumerate(table.headers)
        if index not in used and (which := near_field(header, others, standard)) is not None
    )


def _field_rule(
    table: Table, name: str, index: int, required: bool, spec: FormField | None
) -> Rule:
    answers = spec.answers if spec else ()
    return Rule(
        name,
        index,
        table.headers[index],
        required,
        spec.max_size if spec and spec.max_size else MAX_FIELD_LENGTH,
        {answer.lower(): answer for answer in answers},
        answers,
    )


def unanswerable(question: Question) -> bool:
    """Whether nothing can answer ``question``: it is multiple choice and lists no answers."""
    return question.multiple_choice and not question.answers


def _question_rule(
    table: Table,
    question: Question,
    claim: Claim,
    missing: list[str],
    unsent: dict[int, str],
) -> Rule | None:
    """The rule for one custom question; its ``type`` decides how it is answered."""
    index = claim(fold, (fold(question.text),))
    if unanswerable(question):
        # the form cannot be filled in: report it, never guess an answer key
        if question.required:
            raise InputError(
                f"the webinar's required question '{question.text}' is multiple choice but "
                "lists no answers; fix the question in GoTo Webinar and run again"
            )
        if index is not None:
            unsent[index] = "the webinar lists no answers for this multiple-choice question"
        return None
    if index is None:
        if question.required:
            missing.append(question.text)
        return None
    choices = question.answers if question.multiple_choice else ()
    return Rule(
        question.key,
        index,
        table.headers[index],
        question.required,
        question.max_size or MAX_ANSWER_LENGTH,
        {answer.text.lower(): answer.key for answer in choices},
        tuple(answer.text for answer in choices),
        question=question.text,
    )


def _full_name(
    table: Table,
    fields: list[Rule],
    claim: Claim,
    missing: list[str],
) -> None:
    """Without first- and last-name columns, a single full-name column gives both."""
    have = {rule.name for rule in fields}
    if {"firstName", "lastName"} <= have:
        return
    if not have & {"firstName", "lastName"}:
        index = claim(fold, FULL_NAME_HEADERS)
        if index is not None:
            fields.append(Rule(FULL_NAME, index, table.headers[index], True, MAX_FIELD_LENGTH * 2))
            return
    missing.extend(name for name in ("firstName", "lastName") if name not in have)


def check_row(
    row: RawRow, rules: tuple[Rule, ...]
) -> tuple[Registrant | None, tuple[RowProblem, ...]]:
    """Normalise one row into a registrant, or say everything that is wrong with it."""
    problems: list[RowProblem] = []
    values: dict[str, str] = {}
    responses: list[Response] = []
    for rule in rules:
        value = normalise(row.cells[rule.index])
        formula = row.formula(rule.index) if row.formulas and not value else None
        problem = _uncalculated(formula) if formula is not None else _problem(rule, value)
        if problem:
            problems.append(RowProblem(row.line, rule.header, problem))
        elif value and rule.question is not None:
            chosen = rule.choices.get(value.lower())
            responses.append(
                Response(rule.name, answer_key=chosen)
                if rule.choices
                else Response(rule.name, value)
            )
        elif value and rule.name == FULL_NAME:
            values["firstName"], values["lastName"] = value.rsplit(maxsplit=1)
        elif value:
            values[rule.name] = rule.choices.get(value.lower(), value)
    if problems:
        return None, tuple(problems)
    first, last, email = values.pop("firstName"), values.pop("lastName"), values.pop("email")
    return Registrant(row.line, first, last, email, values, tuple(responses)), ()


_WHAT = {"firstName": "the first name", "lastName": "the last name", "email": "the e-mail address"}


def _uncalculated(formula: str) -> str:
    """A cell whose formula Excel never calculated (the file was written by a program): it has
    no value to send, and only Excel (or another spreadsheet program) can give it one. A cell
    whose value is an Excel error (``#DIV/0!``) comes as that error, not a formula."""
    if formula.startswith("#"):
        return (
            f"the cell holds an Excel error ({formula}); correct it in Excel and save the file, "
            "then run again"
        )
    shown = f" ({formula})" if formula else ""
    return (
        f"the cell holds a formula{shown} that Excel has not calculated yet; open the file in "
        "Excel and save it, then run again"
    )


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
    if rule.choices and value.lower() not in rule.choices:
        return f"'{value}' is not one of the answers; choose {', '.join(rule.shown)}"
    if rule.name == FULL_NAME and " " not in value:
        return (
            f"'{value}' is one word; the column is split at the last space into first and last "
            "name, so add the last name (or use firstName and lastName columns)"
        )
    if rule.name == "email":
        reason = email_problem(value)
        if reason:
            return f"'{value}' is not a valid e-mail address ({reason})"
    return None
