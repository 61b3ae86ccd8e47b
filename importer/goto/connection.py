"""Where and as whom the API is called: one :class:`Connection` for a run, from one factory.

:func:`importer.jobs.common.open_connection` makes it: for GoTo itself from the token
(``credentials.resolve``), the organizer key and the API's address, or from the sandbox package,
a simulated API behind the same kind of connection. Nothing after that knows which of the two it
talks to.

Over the network, its HTTP client is :func:`importer.goto.wire.client`'s: httpx over aiohttp.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from importer.events import StopSignal
from importer.goto.oauth import RefreshingAuth
from importer.goto.redact import hidden_in_logs
from importer.goto.session import ApiSession, default_concurrency


@dataclass(frozen=True)
class Access:
    """What a front door was told about the API: the sandbox, or a token, an address, a key."""

    sandbox: bool = False
    api_url: str | None = None
    token: str | None = field(default=None, repr=False)  # never shown, not even in a repr
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
