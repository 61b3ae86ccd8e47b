"""Whose registration is it: proving that a registration of unknown outcome is this tool's.

A create call whose answer was lost (a kill, a dropped connection, a gateway's 5xx) leaves its row
``sending``: the registrant list may then show the person, but not who registered them. Someone
may have registered them earlier through GoTo's own page, and a registration this tool cannot
prove it made is never counted as its own, so ``undo`` never cancels it. Two proofs count:

* the registrant key came back in an answer to this tool's own call for the person;
* GoTo's ``registrationDate`` for the person is not earlier than the moment the call left, told
  on GoTo's clock: this computer's clock corrected by the offset measured from the ``Date``
  header of the API's answers (RFC 9110 §6.6.1: an origin server with a clock sends one).

Both clocks tell whole seconds: ``Date`` drops the fraction, and GoTo's ``registrationDate`` is
written to the second (the spec's example). A registration made by this call happens after the
call left, so on GoTo's clock it is at least ``sent + offset``, and its date is at most one second
less. The offset is known to lie between two bounds (an answer's ``Date`` was stamped after its
request left and before the answer arrived), so the test uses the lower bound, as measured when
the call left: this tool's own registrations always pass it, and another channel's passes only
when it happened within the bounds' width (about a second and the answer time) before the call,
or within :data:`LIFETIME` after it. Nothing is proven by a date without a ``Date`` header to
compare clocks with, when the answers' times disagree, or for a date of no time zone or in the
future.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
import time
import unicodedata
from dataclasses import dataclass

from importer.model import ListedRegistrant

#: the resolution of GoTo's registrationDate, in seconds, as its example writes it; a date
#: written without seconds (or without a time) is taken at its own coarser resolution
RESOLUTION = 1.0


class ServerClock:
    """GoTo's clock against this computer's, learnt from the ``Date`` header of each answer.

    Answers whose times cannot all be true together (a gateway node with its clock off, a
    cached page, a clock set meanwhile), or an offset of more than a day, make the clock
    :attr:`unreliable`: nothing is then proven by a registration date.
    """

    def __init__(self) -> None:
        #: bounds on GoTo's time minus this computer's, in seconds (None until an answer said)
        self.low: float | None = None
        self.high: float | None = None
        #: answers disagreed, or told of an absurd offset
        self.unreliable = False
        self._text = ""
        self._stamp = 0.0

    def observe(self, date: str | None, sent: float, received: float) -> None:
        """Take in one answer's ``Date`` header; ``sent`` and ``received`` are this computer's
        times (:func:`time.time`) when the request left and the answer came back."""
        if not date:
            return
        if date != self._text:  # it changes once a second: parse it once
            try:
                stamp = email.utils.parsedate_to_datetime(date).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return
            self._text, self._stamp = date, stamp
        # the answer was stamped between ``sent`` and ``received``, at a time in [stamp, stamp+1)
        low, high = self._stamp - received, self._stamp + 1.0 - sent
        self.low = low if self.low is None else max(self.low, low)
        self.high = high if self.high is None else min(self.high, high)
        if self.high < self.low or abs(low) > MOST_OFFSET:
            self.unreliable = True

    @property
    def offset(self) -> float:
        """The best estimate of GoTo's time minus this computer's (0 when unknown)."""
        if self.low is None or self.high is None:
            return 0.0
        return (self.low + self.high) / 2

    def describe(self) -> str:
        """The offset in words, for the plan and the report's notes."""
        if self.low is None:
            return "the API sent no clock time, so no registration date proves anything"
        if self.unreliable:
            return "the API's clock times disagree, so no registration date proves anything"
        offset = self.offset
        if abs(offset) < 1.0:
            return "GoTo's clock agrees with this computer's to within a second"
        side = "ahead of" if offset > 0 else "behind"
        return f"GoTo's clock is {abs(offset):,.0f} s {side} this computer's"


#: the largest offset between GoTo's clock and this computer's that is believed, in seconds
MOST_OFFSET = 86_400.0
#: how far past GoTo's time now a registration date may lie (a date beyond is none)
FUTURE = 60.0
#: how long after its call left a registration may be dated and still be the call's: longer
#: than any call lasts (GoTo's gateway gives up after about 29 s, --timeout waits 30 s), so a
#: person who registers elsewhere later, after a call that registered nobody, is not claimed
LIFETIME = 300.0


@dataclass(frozen=True)
class Verdict:
    """Whether a registration found in the list is this tool's, and why."""

    ours: bool
    reason: str


def verdict(
    found: ListedRegistrant,
    sent_at: float | None,
    clock: ServerClock,
    *,
    key_seen: str | None = None,
    clock_low: float | None = None,
    measured: bool = False,
    names: str | None = None,
) -> Verdict:
    """Whether ``found`` is the registration made by this tool's call for the person, which
    left at ``sent_at`` (this computer's clock; ``clock_low``: GoTo's clock against it then,
    when it was known), possibly answered with ``key_seen``. With ``measured`` (a call of an
    earlier run, from the journal) only the clock as measured when the call left counts.
    ``names``, the :func:`names_of` the call sent, when known: a registration under other
    names is someone else's."""
    if key_seen is not None and key_seen == found.registrant_key:
        return Verdict(True, "its registrant key came back in the answer to g2w-import's call")
    unproven = "not proven to be g2w-import's: "
    listed_names = found.first_name or found.last_name  # a list that gives none tells nothing
    if names is not None and listed_names and names != names_of(found.first_name, found.last_name):
        # someone registered the address under names of their own: not this tool's call
        return Verdict(
            False, f"{unproven}GoTo holds this person under other names than g2w-import sent"
        )
    if sent_at is None:
        return Verdict(False, f"{unproven}there is no record of when its call for them left")
    registered = _moment(found.registered_at)
    if registered is None:
        return Verdict(
            False, f"{unproven}GoTo's registrant list gives no registration date with a time zone"
        )
    low = clock_low if clock_low is not None or measured else clock.low
    if low is None and measured:
        return Verdict(False, f"{unproven}the clocks could not be compared when its call left")
    if low is None or clock.unreliable or abs(low) > MOST_OFFSET:
        return Verdict(False, f"{unproven}{clock.describe()}")
    if registered > now() + clock.offset + FUTURE:
        return Verdict(False, f"{unproven}GoTo's registration date lies in the future")
    left = sent_at + low  # on GoTo's clock
    if registered > left + LIFETIME:
        return Verdict(
            False,
            f"registered since: GoTo registered this person at {_shown(registered)}, long after "
            f"g2w-import's call for them left ({_shown(left)} on GoTo's clock)",
        )
    if registered >= left - _resolution(found):
        return Verdict(True, "GoTo registered this person after g2w-import's call for them left")
    return Verdict(
        False,
        f"registered already: GoTo registered this person at {_shown(registered)}, before "
        f"g2w-import's call for them left ({_shown(left)} on GoTo's clock)",
    )


def names_of(first_name: str, last_name: str) -> str:
    """A fingerprint of a person's names as GoTo compares nothing else (letters, not case,
    spacing or Unicode form), kept in the journal instead of the names themselves."""
    folded = [
        " ".join(unicodedata.normalize("NFKC", name).casefold().split())
        for name in (first_name, last_name)
    ]
    return hashlib.sha256("\x00".join(folded).encode()).hexdigest()[:16]


def now() -> float:
    """This computer's time, as :attr:`~importer.engine.journal.Entry.sent_at` keeps it."""
    return time.time()


def _moment(text: str | None) -> float | None:
    """Seconds since the epoch of GoTo's ISO-8601 ``registrationDate``; None when it names no
    time zone."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:  # a local time of an unknown zone proves nothing
        return None
    try:
        return moment.timestamp()
    except (OverflowError, ValueError):
        return None


def _resolution(found: ListedRegistrant) -> float:
    """How much earlier than the moment it names a registrationDate may be: a second, a
    minute when it has no seconds, a day when it has no time."""
    text = (found.registered_at or "").strip()
    clock = (text.partition("T")[2] or text.partition(" ")[2]).rstrip("Zz")
    clock = re.split(r"[+-]", clock, maxsplit=1)[0]  # the time of day, without its zone
    if not clock:
        return 86_400.0
    return RESOLUTION if clock.count(":") >= 2 else 60.0


def _shown(seconds: float) -> str:
    try:
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return f"{seconds:.0f} s after 1970"
