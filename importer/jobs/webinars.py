"""The read-only questions a front door asks before any job: the organizer's webinars, and a
webinar with its form (``webinars``, ``fields``, ``template``, the page's list).

They use the same connection, pace and retries as a job (one :class:`ApiSession`), and end in
the same errors.
"""

from __future__ import annotations

import datetime as dt
import functools

from importer.errors import UsageError
from importer.goto.client import G2WClient, OrganizerClient
from importer.goto.connection import Access
from importer.goto.lookup import MAX_PAGES, day_span, organizer
from importer.goto.session import ApiSession
from importer.jobs.common import default_webinar, open_connection
from importer.model import Form, Webinar
from importer.read import settings


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


async def webinars(
    access: Access, start: dt.date, end: dt.date, zone: dt.tzinfo | None = None
) -> list[Webinar]:
    """The organizer's webinars with a session between two days, earliest first; the days
    are in ``zone``, by default this computer's time zone."""
    first, last = day_span(start, end, zone)
    async with open_connection(access) as connection, connection.http_client(4, 30.0) as http:
        session = ApiSession()
        organizer_key, _ = await organizer(connection, http, session)
        client = OrganizerClient(http, organizer_key)
        found: dict[str, Webinar] = {}
        for page in range(MAX_PAGES):
            entries, pages = await session.call(
                functools.partial(client.webinars_page, first, last, page),
                what="reading the list of webinars",
            )
            for webinar in entries:
                found.setdefault(webinar.key, webinar)
            if pages is None or page + 1 >= pages or not entries:
                break
    return sorted(found.values(), key=lambda w: (w.starts or "~", w.subject))
