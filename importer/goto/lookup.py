"""Read-only questions to the API: whose token this is, a webinar and its form, the webinars.

They use the same connection, pace and retries as an import (one :class:`ApiSession`), and
end in the same errors.
"""

from __future__ import annotations

import datetime as dt
import functools

import httpx

from importer.errors import RunStopped, UsageError
from importer.goto.client import OrganizerClient
from importer.goto.connection import Connection
from importer.goto.oauth import identify
from importer.goto.session import ApiSession
from importer.model import Webinar, moment_of
from importer.read import settings

#: the most pages of webinars read for one list (200 a page)
MAX_PAGES = 50


async def organizer(
    connection: Connection, http: httpx.AsyncClient, session: ApiSession
) -> tuple[str, str | None]:
    """The organizer key, asking the API whose token this is only when nobody said, and the
    account's e-mail when known: the sign-in's own, for its organizer, or the API's answer.

    A key given (``--organizer-key``, ``G2W_ORGANIZER_KEY``, the file, the sign-in) is taken
    as it is: the webinar calls that follow fail for a wrong one.
    """
    if connection.organizer_key:
        signed = connection.auth.credentials
        known = signed.account if signed.organizer_key == connection.organizer_key else None
        return connection.organizer_key, known
    key, account = await session.call(
        functools.partial(identify, http, connection.api_url), what="asking whose token this is"
    )
    if not key:
        raise UsageError(
            "no organizer key: the API did not say whose token this is; pass --organizer-key "
            "or set G2W_ORGANIZER_KEY"
        )
    return settings.check_key("the organizer key", key), account


def day_span(start: dt.date, end: dt.date, zone: dt.tzinfo | None = None) -> tuple[str, str]:
    """The first second of ``start`` and the last of ``end`` in ``zone`` (None: this
    computer's time zone), as the API's ISO-8601 times in UTC."""

    def utc(day: dt.date, clock: dt.time) -> str:
        moment = dt.datetime.combine(day, clock)
        try:
            local = moment.replace(tzinfo=zone) if zone is not None else moment.astimezone()
            moment = local.astimezone(dt.UTC)
        except (OverflowError, OSError, ValueError):  # at the ends of the calendar: as UTC
            pass
        return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"

    return utc(start, dt.time(0, 0, 0)), utc(end, dt.time(23, 59, 59))


#: the days around today in which a run first looks for its webinar's approval setting, side by
#: side with reading the webinar itself (before its times are known)
UPCOMING = (dt.timedelta(days=-1), dt.timedelta(days=400))


async def approval(
    session: ApiSession,
    http: httpx.AsyncClient,
    organizer_key: str,
    webinar_key: str,
    times: tuple[tuple[str, str | None], ...] = (),
) -> str | None:
    """A webinar's ``approvalType`` (``AUTOMATIC``, or ``MANUAL``: the organizer approves each
    registrant by hand), which GoTo's spec gives only on the items of the organizer's webinar
    list, not in the one-webinar answer. The list is asked for the days of the webinar's own
    sessions (``times``), or, before they are known, for the days :data:`UPCOMING`; None when
    the list does not say (the run then learns it from the first registrant it reads back)."""
    if times:
        moments = [m for pair in times for text in pair if text and (m := moment_of(text))]
        if not moments:
            return None
        start, end = min(moments) - dt.timedelta(days=1), max(moments) + dt.timedelta(days=1)
    else:
        today = dt.datetime.now(dt.UTC).replace(microsecond=0)
        start, end = today + UPCOMING[0], today + UPCOMING[1]
    client = OrganizerClient(http, organizer_key)
    for page in range(MAX_PAGES):
        try:  # the approval is worth a call, not a stopped run
            entries, pages = await session.call(
                functools.partial(client.webinars_page, _utc(start), _utc(end), page),
                what="reading whether the webinar approves by hand",
                optional=True,
            )
        except RunStopped:
            if session.stopping:
                raise
            return None
        found = next((item for item in entries if item.key == webinar_key), None)
        if found is not None:
            return found.approval
        if pages is None or page + 1 >= pages or not entries:
            return None
    return None


def upcoming(webinar: Webinar) -> bool:
    """Whether every session of the webinar lies in the days :data:`UPCOMING`."""
    today = dt.datetime.now(dt.UTC)
    moments = [moment_of(text) for pair in webinar.times for text in pair if text]
    return bool(moments) and all(
        m is not None and today + UPCOMING[0] <= m <= today + UPCOMING[1] for m in moments
    )


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
