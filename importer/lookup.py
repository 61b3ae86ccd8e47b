"""Read-only questions to the API, outside an import: a webinar and its registration form.

They use the same connection, pace and retries as an import (one :class:`ApiSession`), and
end in the same errors.
"""

from __future__ import annotations

from . import settings
from .client import G2WClient
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
