"""Where and as whom the API is called: one :class:`Connection` for a run, from one factory.

:func:`open_connection` resolves the token (``credentials.resolve``), the organizer key and the
API's address for GoTo itself, or asks the sandbox package for a simulated API behind the same
kind of connection. Nothing after this point knows which of the two it talks to.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from . import __version__, credentials, settings
from .errors import UsageError
from .events import StopSignal
from .models import Table
from .oauth import RefreshingAuth
from .redact import hidden_in_logs
from .session import ApiSession, default_concurrency


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
    #: where journals live when not in the user's data folder (a throwaway sandbox's own)
    journal_folder: Path | None = None
    #: where the token came from, for ``whoami``
    token_source: str = ""

    def http_client(self, workers: int, timeout: float) -> httpx.AsyncClient:
        """The HTTP client for a run: ``workers`` connections at most, ``timeout`` per answer."""
        return httpx.AsyncClient(
            base_url=self.api_url,
            auth=self.auth,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
            headers={"User-Agent": f"g2w-import/{__version__}"},
            transport=self.transport or Lanes(workers),
        )

    def secrets(self) -> list[str]:
        """Everything that must never be shown, as it stands now (tokens get renewed)."""
        return self.auth.secrets()


def default_webinar(access: Access) -> str | None:
    """The webinar to use when none is named: the sandbox's first; for GoTo, none."""
    if not access.sandbox:
        return None
    from . import sandbox  # the simulator is loaded only when asked for

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
        from . import sandbox  # the simulator is loaded only when asked for

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


class Lanes(httpx.AsyncBaseTransport):
    """Connections kept alive as httpx keeps them, each in a transport of its own.

    httpcore's pool looks at every connection it holds whenever a request starts or ends (it
    asks each idle one, with a system call or two, whether the server has closed it), so each
    request costs in proportion to the pool's size. Here every connection is a one-connection
    ``httpx.AsyncHTTPTransport`` (a lane), lent to one request at a time: a request costs the
    same whatever the number of lanes. The most recently returned lane is lent first, so no more
    lanes are opened than requests are ever under way at once, and at most ``size``; a request
    that finds them all busy waits for one, up to the pool timeout.
    """

    def __init__(
        self, size: int, make: Callable[[], httpx.AsyncBaseTransport] | None = None
    ) -> None:
        self.size = size
        self._make = make or _lane_maker()
        self._lanes: list[httpx.AsyncBaseTransport] = []
        self._idle: list[httpx.AsyncBaseTransport] = []
        self._waiting: collections.deque[asyncio.Future[httpx.AsyncBaseTransport]] = (
            collections.deque()
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lane = await self._take(request)
        try:
            response = await lane.handle_async_request(request)
        except BaseException:
            self._give(lane)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Lent(response.stream, lambda: self._give(lane)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()

    async def _take(self, request: httpx.Request) -> httpx.AsyncBaseTransport:
        if self._idle:
            return self._idle.pop()
        if len(self._lanes) < self.size:
            self._lanes.append(self._make())
            return self._lanes[-1]
        turn: asyncio.Future[httpx.AsyncBaseTransport] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            return await asyncio.wait_for(turn, request.extensions.get("timeout", {}).get("pool"))
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self._give(turn.result())  # lent as this request gave up: to the next one
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no connection came free in time") from None
            raise

    def _give(self, lane: httpx.AsyncBaseTransport) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(lane)
                return
        self._idle.append(lane)


def _lane_maker() -> Callable[[], httpx.AsyncBaseTransport]:
    """One-connection transports sharing one TLS context (made once: it reads the CA bundle)."""
    tls = httpx.create_ssl_context()
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return lambda: httpx.AsyncHTTPTransport(verify=tls, limits=one)


#: the largest answer read: a page of 200 registrants is some hundred kilobytes; a server
#: that sends more is not to be held in memory
MAX_ANSWER = 32 * 2**20


class _Lent(httpx.AsyncByteStream):
    """A response body read from a lent lane, at most :data:`MAX_ANSWER` bytes of it; closing
    it gives the lane back, once."""

    def __init__(self, body: httpx.AsyncByteStream, give_back: Callable[[], None]) -> None:
        self._body = body
        self._give_back: Callable[[], None] | None = give_back

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read = 0
        async for chunk in self._body:
            read += len(chunk)
            if read > MAX_ANSWER:
                raise httpx.RemoteProtocolError(
                    f"the answer is larger than {MAX_ANSWER // 2**20} MB, more than any the API "
                    "gives"
                )
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._body.aclose()
        finally:
            give_back, self._give_back = self._give_back, None
            if give_back is not None:
                give_back()
