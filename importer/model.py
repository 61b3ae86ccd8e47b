"""The data that flows through every job: read → check → register or cancel → report."""

from __future__ import annotations

import datetime as dt
import enum
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: how a cell that Excel would take for a formula begins
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class Status(enum.StrEnum):
    """What became of one input row; the report's ``status`` column."""

    REGISTERED = "registered"
    ALREADY_REGISTERED = "already_registered"
    #: registered, on a webinar whose organizer approves each registrant by hand: GoTo e-mails
    #: the join link once they do
    WAITING_APPROVAL = "waiting_approval"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    FAILED = "failed"
    DENIED = "denied"
    PENDING = "pending"
    #: not sent: the row is hidden in Excel (by a filter, or by hand)
    SKIPPED_HIDDEN = "skipped_hidden"

    @property
    def ok(self) -> bool:
        """Whether the person ends up registered (approved or awaiting approval)."""
        return self in (Status.REGISTERED, Status.ALREADY_REGISTERED, Status.WAITING_APPROVAL)

    @property
    def settled(self) -> bool:
        """Whether the row needs nothing more: its person registered, or left out on purpose
        (a row hidden in Excel)."""
        return self.ok or self is Status.SKIPPED_HIDDEN


class Cancellation(enum.StrEnum):
    """What became of one person to be cancelled; the ``status`` of the cancel and undo reports."""

    CANCELLED = "cancelled"
    #: nobody with this e-mail is registered for the webinar
    NOT_REGISTERED = "not_registered"
    #: undo: registered, but not by g2w-import (already, or through another channel)
    LEFT_ALONE = "left_alone"
    FAILED = "failed"
    DENIED = "denied"
    PENDING = "pending"


def pending_unknown(call: str) -> str:
    """Why a row is pending whose ``call`` (``the registration``, ``the cancellation``) went
    without a clear answer: the journal holds it, and the next run settles it from the list."""
    return (
        f"{call} was sent, but GoTo's answer was lost; the next run looks this person up "
        "before sending again"
    )


def pending_stopped(done: str, again: str) -> str:
    """Why a row is pending that the run stopped before ``done`` (``sent``, ``cancelled``),
    and how to carry on, ``again``, in the front door's words."""
    return f"not {done}: the run stopped first; {again}"


def email_key(address: str) -> str:
    """An e-mail address as GoTo compares it: one registration per address, ignoring case.

    ``lower()``, not ``casefold()``: casefolding makes ``weiß@`` and ``weiss@`` one address,
    and they are two mailboxes.
    """
    return address.lower()


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read: every cell as text, and the line Excel shows for it."""

    line: int
    cells: tuple[str, ...]
    #: hidden in Excel, by a filter or by hand (not sent unless asked for)
    hidden: bool = False
    #: cells that hold a formula Excel has not calculated (so no value): (column index, the
    #: formula, "" when the file does not spell it out); or an Excel error value such as
    #: ``#DIV/0!``, which reads as no value too
    formulas: tuple[tuple[int, str], ...] = ()

    def formula(self, index: int) -> str | None:
        """The uncalculated formula in column ``index``, if that cell holds one."""
        return next((text for at, text in self.formulas if at == index), None)


@dataclass(frozen=True, slots=True)
class Sheet:
    """A sheet of a workbook that has an e-mail column: its name, data rows, and whether
    Excel hides it."""

    name: str
    rows: int
    hidden: bool = False


@dataclass(frozen=True)
class Table:
    """A whole input sheet: its header, its data rows and what the reader had to say about it."""

    #: the file read, or None for a DataFrame or records given in Python
    source: Path | None
    headers: tuple[str, ...]
    header_line: int
    rows: tuple[RawRow, ...]
    sheet: str | None = None
    notes: tuple[str, ...] = ()
    #: data rows that were entirely blank and so skipped
    blank_rows: int = 0
    #: settings written into the file (a Settings sheet, or name/value rows above the header):
    #: ``webinarKey``, ``organizerKey``, ``resendConfirmation``; never a token
    settings: Mapping[str, str] = field(default_factory=dict)
    #: how messages name the input: the file's name, or "the DataFrame"
    name: str = ""
    #: a DataFrame's index labels, one per data row of the frame (blank ones included)
    index: tuple[object, ...] | None = None
    #: where the settings were written, for messages ("on the Settings sheet")
    settings_origin: str = "on the Settings sheet"
    #: the workbook's other sheets that have an e-mail column too
    other_sheets: tuple[Sheet, ...] = ()
    #: whether rows hidden in Excel are sent like the others (by default they are skipped)
    send_hidden_rows: bool = False

    @property
    def hidden_rows(self) -> int:
        """How many data rows are hidden in Excel."""
        return sum(1 for row in self.rows if row.hidden)

    def describe(self) -> str:
        """``people.xlsx, sheet 'Guests'`` or just the file name, for messages."""
        name = self.name or (self.source.name if self.source else "the input")
        return f"{name}, sheet '{self.sheet}'" if self.sheet else name


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row cannot be sent, in the input's own terms."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class Response:
    """An answer to a custom question: typed text, or the key of a multiple-choice answer."""

    question_key: str
    text: str | None = None
    answer_key: str | None = None

    def body(self) -> dict[str, object]:
        """The entry of the create call's ``responses`` list (keys as JSON integers)."""
        if self.answer_key is not None:
            return {"questionKey": int(self.question_key), "answerKey": int(self.answer_key)}
        return {"questionKey": int(self.question_key), "responseText": self.text or ""}


@dataclass(frozen=True, slots=True)
class Registrant:
    """A validated person, ready to be sent. ``fields`` holds optional API fields by API name."""

    line: int
    first_name: str
    last_name: str
    email: str
    fields: Mapping[str, str] = field(default_factory=dict)
    responses: tuple[Response, ...] = ()

    @property
    def email_key(self) -> str:
        """The e-mail as GoTo compares it: one registration per address, ignoring case."""
        return email_key(self.email)

    def body(self) -> dict[str, object]:
        """The JSON body of the create-registrant call."""
        body: dict[str, object] = {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            **self.fields,
        }
        if self.responses:
            body["responses"] = [response.body() for response in self.responses]
        return body


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
    #: the registration's approval in GoTo: ``APPROVED``, ``WAITING``, ``DENIED`` (None: unsaid)
    approval: str | None = None
    #: a ``waiting_approval`` or ``denied`` row whose registration this tool made (a
    #: ``registered`` row's always is): see :attr:`by_us`
    ours: bool = False

    @classmethod
    def settled(
        cls, line: int, status: Status, key: str, url: str | None, approval: str | None
    ) -> Result:
        """A registration GoTo has, as its approval status makes it: one the organizer
        declined is ``denied`` (its join URL lets nobody in); one awaiting the organizer's
        approval is ``waiting_approval``. ``status`` says whose registration it is:
        ``registered`` (this tool's) or ``already_registered``."""
        ours = status is Status.REGISTERED
        if approval == "DENIED":
            return cls(line, Status.DENIED, key, url, DENIED_NOTE, approval=approval, ours=ours)
        if approval == "WAITING":
            return cls(
                line, Status.WAITING_APPROVAL, key, url, WAITING_NOTE, approval=approval, ours=ours
            )
        return cls(line, status, key, url, approval=approval)

    @property
    def by_us(self) -> bool:
        """Whether the registration is one this tool made."""
        return self.status is Status.REGISTERED or self.ours

    @property
    def registered(self) -> bool:
        """Whether GoTo holds a registration for this row (whatever its approval)."""
        return self.registrant_key is not None and self.status in (
            Status.REGISTERED,
            Status.ALREADY_REGISTERED,
            Status.WAITING_APPROVAL,
            Status.DENIED,
        )


WAITING_NOTE = "GoTo e-mails the join link once the organizer approves this person"
DENIED_NOTE = "the organizer declined this person in GoTo Webinar; not sent again"


@dataclass(frozen=True)
class ListedRegistrant:
    """One entry of the webinar's registrant list (or one registrant's GET)."""

    registrant_key: str
    email: str
    join_url: str | None
    #: ``APPROVED``, ``WAITING`` or ``DENIED`` (the spec's Registrant.status)
    status: str | None
    first_name: str = ""
    last_name: str = ""
    registered_at: str | None = None
    #: answers to custom questions as (question, answer); None when the answer did not say
    #: (only one registrant's GET has them)
    responses: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One allowed answer of a multiple-choice question."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class FormField:
    """A standard registration field as a webinar asks for it."""

    name: str
    required: bool
    max_size: int | None = None
    #: the allowed values, for fields shown as a drop-down (e.g. numberOfEmployees)
    answers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Question:
    """A custom registration question of a webinar."""

    key: str
    text: str
    required: bool
    kind: str  #: "shortAnswer" or "multipleChoice"
    max_size: int | None = None
    answers: tuple[Answer, ...] = ()

    @property
    def multiple_choice(self) -> bool:
        """Whether the answer is chosen from :attr:`answers` (sent as an ``answerKey``); the
        question's ``type`` decides, not whether it happens to list answers."""
        return self.kind == "multipleChoice"


@dataclass(frozen=True)
class Webinar:
    """What a run shows about its webinar before sending."""

    key: str
    subject: str
    starts: str | None
    time_zone: str | None
    #: every session's (start, end), ISO-8601 UTC
    times: tuple[tuple[str, str | None], ...] = ()
    #: ``AUTOMATIC`` or ``MANUAL``: whether the organizer approves each registrant by hand
    approval: str | None = None
    #: how many people it takes (``registrationLimit``); None: no limit stated
    registration_limit: int | None = None
    #: how many are registered now (``numberOfRegistrants``)
    registrant_count: int | None = None
    #: ``single_session``, ``series`` (each session its own key) or ``sequence`` (one key for
    #: several sessions); None when the answer does not say
    kind: str | None = None

    @property
    def places_left(self) -> int | None:
        """How many more people it takes before it is full; None without a stated limit."""
        if self.registration_limit is None or self.registrant_count is None:
            return None
        return max(0, self.registration_limit - self.registrant_count)

    def last_moment(self) -> dt.datetime | None:
        """When its last session ends (or ended); None when a time is missing or unreadable."""
        moments = [moment_of(end or start) for start, end in self.times]
        if not moments or None in moments:
            return None
        return max(m for m in moments if m is not None)

    def ended(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """When its last session ended, if every session has; None while one is to come."""
        last = self.last_moment()
        return last if last is not None and last < (now or dt.datetime.now(dt.UTC)) else None

    def describe(self) -> str:
        """``Product launch (8325357307900339981, starts Tue 1 Dec 2026, 16:00 CET)``: the
        start on the webinar's own clock, as every list of webinars shows it."""
        when = f", starts {local_time(self.starts, self.time_zone)}" if self.starts else ""
        return f"{self.subject} ({self.key}{when})"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time(text: str, zone: str | None) -> str:
    """An ISO-8601 time as the webinar's own clock shows it, ``Tue 13 Jan 2027, 10:00 CET``:
    in UTC when its time zone is missing or unknown here; text that is no time, as it is.
    English names whatever the locale, as every other word the tool prints."""
    try:
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        moment = moment.astimezone(_zone(zone))
    except (ValueError, OverflowError):
        return text
    day, month = _DAYS[moment.weekday()], _MONTHS[moment.month - 1]
    return f"{day} {moment.day} {month} {moment.year}, {moment:%H:%M} {moment.tzname()}"


def _zone(name: str | None) -> dt.tzinfo:
    if not name:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return dt.UTC


def moment_of(text: str) -> dt.datetime | None:
    """An ISO-8601 time as an aware datetime (UTC when it names no zone); None if it is none."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Form:
    """A webinar's registration form: its standard fields and its custom questions."""

    fields: tuple[FormField, ...] = ()
    questions: tuple[Question, ...] = ()

    def field(self, name: str) -> FormField | None:
        """The form's entry for a standard field, if it has one."""
        return next((f for f in self.fields if f.name == name), None)
