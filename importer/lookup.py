"""Read-only questions to the API, outside an import: a webinar and its form, the webinars.

They use the same connection, pace and retries as an import (one :class:`ApiSession`), and
end in the same errors.
"""

from __future__ import annotations

import datetime as dt
import functools

from . import settings
from .client import G2WClient, OrganizerClient
from .connection import Access, default_webinar, open_connection
from .errors import UsageError
from .models import Form, Webinar
from .session import ApiSession


async def webinar_and_form(access: Access, key: str | None) -> tuple[Webinar, Form]:
    """The webinar ``key`` (or the connection's default one) and its form."""
    keys = settings.webinar_keys((key,) if key else (), None, default_webinar(access))
    if not keys:
        raise UsageError("--webinar-key is required (or try --sandbox to see how it works)")
    with open_connection(access) as connection:
        async with connection.http_client(4, 30.0) as http:
            client = G2WClient(http, connection.organizer_key, keys[0])
            session = ApiSession()
            webinar = await session.call(client.get_webinar, what="reading the webinar")
            form = await session.call(client.get_form, what="reading its form")
            return webinar, form


#: the most pages of webinars read for one list (200 a page)
MAX_PAGES = 50


async def webinars(access: Access, start: dt.date, end: dt.date) -> list[Webinar]:
    """The organizer's webinars with a session between two dates, earliest first."""
    with open_connection(access) as connection:
        async with connection.http_client(4, 30.0) as http:
            client = OrganizerClient(http, connection.organizer_key)
            session = ApiSession()
            found: dict[str, Webinar] = {}
            for page in range(MAX_PAGES):
                entries, pages = await session.call(
                    functools.partial(
                        client.webinars_page, _iso(start), _iso(end, last=True), page
                    ),
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
