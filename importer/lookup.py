"""Read-only questions to the API: whose token this is, a webinar and its form, the webinars.

They use the same connection, pace and retries as an import (one :class:`ApiSession`), and
end in the same errors.
"""

from __future__ import annotations

import datetime as dt
import functools

import httpx

from . import settings
from .client import G2WClient, OrganizerClient
from .connection import Access, Connection, default_webinar, open_connection
from .errors import UsageError
from .models import Form, Webinar
from .oauth import identify
from .session import ApiSession

#: the most pages of webinars read for one list (200 a page)
MAX_PAGES = 50


async def organizer(
    connection: Connection, http: httpx.AsyncClient, session: ApiSession, *, ask: bool = False
) -> tuple[str, str | None]:
    """The organizer key, asking the API whose token this is when nobody said (or ``ask``),
    and the account's e-mail when the API told it."""
    if connection.organizer_key and not ask:
        return connection.organizer_key, None
    key, account = await session.call(
        functools.partial(identify, http, connection.api_url), what="asking whose token this is"
    )
    key = connection.organizer_key or key
    if not key:
        raise UsageError(
            "no organizer key: the API did not say whose token this is; pass --organizer-key "
            "or set G2W_ORGANIZER_KEY"
        )
    return settings.check_key("the organizer key", key), account


async def webinar_and_form(access: Access, key: str | None) -> tuple[Webinar, Form]:
    """The webinar ``key`` (or the connection's default one) and its form."""
    keys = settings.webinar_keys((key,) if key else (), None, default_webinar(access))
    if not keys:
        raise UsageError("--webinar-key is required (or try --sandbox to see how it works)")
    async with open_connection(access) as connection, connection.http_client(4, 30.0) as http:
        session = ApiSession()
        organizer_key, _ = await organizer(connection, http, session)
        client = G2WClient(http, organizer_key, keys[0])
        webinar = await session.call(client.get_webinar, what="reading the webinar")
        form = await session.call(client.get_form, what="reading its form")
        return webinar, form


async def webinars(access: Access, start: dt.date, end: dt.date) -> list[Webinar]:
    """The organizer's webinars with a session between two dates, earliest first."""
    async with open_connection(access) as connection, connection.http_client(4, 30.0) as http:
        session = ApiSession()
        organizer_key, _ = await organizer(connection, http, session)
        client = OrganizerClient(http, organizer_key)
        found: dict[str, Webinar] = {}
        for page in range(MAX_PAGES):
            entries, pages = await session.call(
                functools.partial(client.webinars_page, _iso(start), _iso(end, last=True), page),
                what="reading the list of webinars",
            )
            for webinar in entries:
                found.setdefault(webinar.key, webinar)
            if pages is None or page + 1 >= pages or not entries:
                break
    return sorted(found.values(), key=lambda w: (w.starts or "~", w.subject))


def _iso(day: dt.date, *, last: bool = False) -> str:
    """A date as the API's ISO-8601 time in UTC: its first (or last) second."""
    return f"{day.isoformat()}T{'23:59:59' if last else '00:00:00'}Z"
