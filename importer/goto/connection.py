"""Where and as whom the API is called: one :class:`Connection` for a run, from one factory.

:func:`open_connection` resolves the token (``credentials.resolve``), the organizer key and the
API's address for GoTo itself, or asks the sandbox package for a simulated API behind the same
kind of connection. Nothing after this point knows which of the two it talks to.

Over the network, its HTTP client is :func:`importer.goto.wire.client`'s: httpx over aiohttp.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from importer.errors import UsageError
from importer.events import StopSignal
from importer.goto import credentials
from importer.goto.oauth import RefreshingAuth
from importer.goto.redact import hidden_in_logs
from importer.goto.session import ApiSession, default_concurrency
from importer.model import Table
from importer.read import settings


@dataclass(frozen=True)
class Access:
    """What a front door was told about the API: the sandbox, or a token, an address, a key."""

    sandbox: bool = False
    api_url: str | None = None
    token: str | None = None
    token_file: Path | None = None
    organizer_key: str | None = None


@dataclass(frozen=True)
class Connection:
    """An API to call, as an organizer, with a token that renews itself where it can."""

    api_url: str
    #: None until the API has been asked whose token this is (see ``lookup.organizer``)
    organizer_key: str | None
    auth: RefreshingAuth
    #: the transport to use instead of the network (the in-process sandbox)
    transport: httpx.AsyncBaseTransport | None = None
    #: shown in the plan when this is not GoTo ("the built-in sandbox: nothing reaches GoTo")
    label: str | None = None
    #: where journals live when not in the user's data folder's ``journals`` (the in-process
    #: sandbox keeps its own apart, so that they are never taken for GoTo's)
    journal_folder: Path | None = None
    #: where the token came from, for ``whoami``
    token_source: str = ""

    def http_client(self, workers: int, timeout: float) -> httpx.AsyncClient:
        """The HTTP client for a run: ``workers`` connections at most, ``timeout`` per answer.

        Over the network, the CA bundle is read here, before any call: one that cannot be used
        (``SSL_CERT_FILE``) is a :class:`UsageError` now, not a failure of every call.
        """
        # aiohttp is imported when a command first calls out, not at every start: about 0.1 s
        from importer.goto import wire

        return wire.client(self.api_url, workers, timeout, auth=self.auth, transport=self.transport)

    def secrets(self) -> list[str]:
        """Everything that must never be shown, as it stands now (tokens get renewed)."""
        return self.auth.secrets()


def default_webinar(access: Access) -> str | None:
    """The webinar to use when none is named: the sandbox's first; for GoTo, none."""
    if not access.sandbox:
        return None
    from importer import sandbox  # the simulator is loaded only when asked for

    return sandbox.WEBINAR_KEY


@contextlib.asynccontextmanager
async def open_connection(access: Access, table: Table | None = None) -> AsyncIterator[Connection]:
    """The connection a front door asked for; ``table`` may name the organizer (old workbook).

    The organizer key comes from the front door, the file or the stored login; without one the
    connection's ``organizer_key`` is None, and the run asks the API (``lookup.organizer``).
    """
    given = access.organizer_key or os.environ.get("G2W_ORGANIZER_KEY", "").strip() or None
    organizer = settings.organizer_key(given, table)
    if access.sandbox:
        if access.api_url or access.token_file or access.token:
            unset = " (and unset G2W_API_URL)" if os.environ.get("G2W_API_URL") else ""
            raise UsageError(
                "--sandbox runs against the built-in API; leave out --api-url and --token-file"
                + unset
            )
        from importer import sandbox  # the simulator is loaded only when asked for

        with sandbox.connect(organizer_key=organizer) as connection:
            yield connection
        return
    found = credentials.resolve(access.token, access.token_file)
    given_url = access.api_url or os.environ.get("G2W_API_URL", "").strip()
    url = settings.api_url(given_url or found.credentials.api_url)
    organizer = organizer or found.credentials.organizer_key
    yield Connection(
        url,
        settings.check_key("--organizer-key", organizer) if organizer else None,
        RefreshingAuth(found.credentials, found.store, when_refused=found.when_refused),
        token_source=found.source,
    )


class Pace(Protocol):
    """How a run may call the API: its options as every bulk command has them."""

    @property
    def rate(self) -> float: ...
    @property
    def concurrency(self) -> int | None: ...
    @property
    def timeout(self) -> float: ...
    @property
    def max_calls(self) -> int | None: ...
    @property
    def give_up_after(self) -> float: ...


async def paced(
    stack: contextlib.AsyncExitStack, connection: Connection, pace: Pace, stop: StopSignal | None
) -> tuple[httpx.AsyncClient, ApiSession, int]:
    """The HTTP client, the session that paces and retries every call, and how many workers
    may call at once, for one run on ``connection``, held open by ``stack``: ``stop`` (Ctrl-C)
    stops the session, and the connection's secrets are hidden from the logs meanwhile."""
    workers = pace.concurrency or default_concurrency(pace.rate)
    http = await stack.enter_async_context(connection.http_client(workers, pace.timeout))
    session = ApiSession(rate=pace.rate, max_calls=pace.max_calls, give_up_after=pace.give_up_after)
    if stop is not None:
        stack.callback(stop.attach(session.stop))
    stack.enter_context(hidden_in_logs(connection.secrets))
    return http, session, workers
