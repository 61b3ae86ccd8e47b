"""HTTP/1.1 for a run's calls: an httpx transport on asyncio's own connections, parsed with h11.

A run makes thousands of small calls to one host, and on the way there httpx's default
transport (httpcore over anyio) spends more CPU on each than the call itself: a cancellation
scope around every read and write, locks, a pool that asks every connection it holds whether
the server closed it whenever a request starts or ends, and a request's head and body written
in two system calls. Here each connection is an asyncio protocol: a request is written in one
piece, and the answer is parsed by h11 as it arrives, waking the caller once, when it is whole.

Connections are kept alive, each lent to one request at a time, the most recently given back
first, so no more are opened than requests are ever under way at once, and at most ``size``; a
request that finds them all busy waits for one, up to the pool timeout. One idle for longer
than ``keepalive`` seconds is closed rather than reused, as httpx does (a server may be
closing it just then). Answers are read whole, up to :data:`MAX_ANSWER` bytes.

Failures are httpx's: :class:`httpx.ConnectError` and :class:`httpx.ConnectTimeout` only when
no byte of the request was sent; once it was, :class:`httpx.ReadTimeout`,
:class:`httpx.ReadError` or :class:`httpx.RemoteProtocolError`. A connection that failed, or
whose request was cancelled half-way, is closed, never reused.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import zlib
from typing import cast

import h11
import httpx

#: the largest answer read: a page of 200 registrants is some hundred kilobytes; a server
#: that sends more is not to be held in memory
MAX_ANSWER = 32 * 2**20
#: seconds a connection may stay idle and still be reused (httpx's default)
KEEPALIVE = 5.0

CLOSED = "the server closed the connection before answering"
SHUT = "the connections were closed before this request had one"

Origin = tuple[bytes, str, int]
_PORTS = {b"http": 80, b"https": 443}
#: asked for with every request: answers as they are, not compressed (the API's are small; a
#: server that compresses anyway is decoded, at most MAX_ANSWER bytes of it)
_IDENTITY = (b"Accept-Encoding", b"identity")
#: zlib's window bits for each content coding this transport decodes
_CODINGS = {
    b"gzip": 16 + zlib.MAX_WBITS,
    b"x-gzip": 16 + zlib.MAX_WBITS,
    b"deflate": zlib.MAX_WBITS,
}
#: an answer: status, reason, headers, body
_Answer = tuple[int, bytes, list[tuple[bytes, bytes]], bytes]


class Transport(httpx.AsyncBaseTransport):
    """Up to ``size`` HTTP/1.1 connections, kept alive and lent to one request at a time."""

    def __init__(
        self, size: int, *, keepalive: float = KEEPALIVE, tls: ssl.SSLContext | None = None
    ) -> None:
        self.size = size
        self.keepalive = keepalive
        #: the TLS settings (default: httpx's, made at the first https connection)
        self._tls = tls
        #: connections open or being opened
        self._count = 0
        self._idle: list[_Connection] = []
        #: requests waiting for a connection: each is handed one, or None to open its own
        self._waiting: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _PORTS:
            raise httpx.UnsupportedProtocol(f"{url.scheme!r} is not http or https", request=request)
        origin = (scheme, url.host, url.port or _PORTS[scheme])
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        connection = await self._take(origin, timeouts, request)
        try:
            status, reason, headers, content = await connection.exchange(
                request, body, timeouts.get("read")
            )
        except BaseException:
            connection.close()
            raise
        finally:
            self._give(connection)
        try:
            headers, content = _decoded(headers, content)
        except httpx.RequestError as exc:
            exc.request = request
            raise
        # read already: httpx has nothing left to do but hand it over
        return httpx.Response(
            status,
            headers=headers,
            content=content,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def aclose(self) -> None:
        self._closed = True
        for connection in self._idle:
            connection.close()
        self._idle.clear()
        while self._waiting:  # nothing of theirs was sent, and no connection will come
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_exception(httpx.ConnectError(SHUT))

    async def _take(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> _Connection:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable(origin, now - self.keepalive):
                return connection
            connection.close()
            self._count -= 1
        if self._count < self.size:
            self._count += 1
            return await self._open(origin, timeouts, request)
        if self._closed:  # closed as this request began: no connection will come free
            raise httpx.ConnectError(SHUT, request=request)
        turn: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                handed = await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled() and turn.exception() is None:
                self._pass_on(turn.result())  # handed over as this request gave up
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout(
                    "no connection came free in time", request=request
                ) from None
            if isinstance(exc, httpx.ConnectError):
                exc.request = request
            raise
        if handed is not None and handed.usable(origin, now - self.keepalive):
            return handed
        if handed is not None:
            handed.close()
        return await self._open(origin, timeouts, request)

    async def _open(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> _Connection:
        """A new connection to ``origin``, counted already; uncounted again if it fails."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = None
        if scheme == b"https":
            if self._tls is None:
                self._tls = httpx.create_ssl_context()  # reads the CA bundle: once
            tls = self._tls
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                _, connection = await loop.create_connection(
                    lambda: _Connection(origin),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except BaseException as exc:
            self._pass_on(None)
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(
                    f"no connection to {host} in time", request=request
                ) from None
            if isinstance(exc, OSError):  # ssl.SSLError among them
                raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
            raise
        return connection

    def _give(self, connection: _Connection) -> None:
        """Take a connection back from its request: to the next in line, or idle."""
        if connection.closed:
            self._pass_on(None)
        elif self._closed:
            connection.close()
            self._count -= 1
        else:
            self._pass_on(connection)

    def _pass_on(self, connection: _Connection | None) -> None:
        """Hand a connection (None: the right to open one) to the first request still
        waiting; with none waiting, keep it idle (or count the right as unused)."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(connection)
                return
        if connection is None:
            self._count -= 1
        else:
            self._idle.append(connection)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one request at a time, its answer gathered as it arrives."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._state = h11.Connection(h11.CLIENT)
        self._transport: asyncio.Transport | None = None
        self._idle_since = self._loop.time()
        self._answer: asyncio.Future[_Answer] | None
        self._answer = None
        self._head: h11.Response | None = None
        self._body = bytearray()
        self._size = 0
        self._heard = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def usable(self, origin: Origin, idle_after: float) -> bool:
        """Whether this connection can take a request to ``origin`` now."""
        return not self.closed and self.origin == origin and self._idle_since >= idle_after

    async def exchange(
        self, request: httpx.Request, body: bytes, read_timeout: float | None
    ) -> _Answer:
        """Send ``request`` and wait for its whole answer: status, reason, headers, body."""
        state = self._state
        assert self._transport is not None
        assert self._answer is None
        try:
            head = h11.Request(
                method=request.method,
                target=request.url.raw_path,
                headers=[*_without(request.headers.raw, b"accept-encoding"), _IDENTITY],
            )
            wire = state.send(head) or b""
            if body:
                wire += state.send(h11.Data(data=body)) or b""
            wire += state.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        answer: asyncio.Future[_Answer] = self._loop.create_future()
        self._answer = answer
        self._head, self._body, self._size = None, bytearray(), 0
        self._heard = self._loop.time()
        self._transport.write(wire)
        if read_timeout is not None:
            self._timer = self._loop.call_later(read_timeout, self._watch, read_timeout)
        try:
            return await answer
        except httpx.TransportError as exc:
            exc.request = request
            raise
        finally:
            self._answer = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None or self._answer.done():  # a server that talks out of turn
            self.close()
            return
        self._heard = self._loop.time()
        self._state.receive_data(data)
        self._read()

    def eof_received(self) -> bool:
        self.closed = True
        if self._answer is not None and self._head is None:
            self._fail(httpx.RemoteProtocolError(CLOSED))
        elif self._answer is not None:  # an answer may end with the connection: h11 knows
            self._state.receive_data(b"")
            self._read()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is not None:
            self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
        else:
            self._fail(httpx.RemoteProtocolError(CLOSED))

    def _read(self) -> None:
        """Take every event h11 has; settle the answer once it is whole (or broken)."""
        state = self._state
        while True:
            try:
                event = state.next_event()
            except h11.RemoteProtocolError as exc:
                why = (
                    "the server closed the connection in the middle of its answer"
                    if self.closed
                    else f"the server's answer is not HTTP ({exc})"
                )
                self._fail(httpx.RemoteProtocolError(why))
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):
                self._head = event
            elif isinstance(event, h11.Data):
                self._size += len(event.data)
                if self._size > MAX_ANSWER:
                    self._fail(httpx.RemoteProtocolError(_too_large()))
                    return
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._done()
                return
            elif isinstance(event, h11.ConnectionClosed):
                self._fail(httpx.RemoteProtocolError(CLOSED))
                return

    def _done(self) -> None:
        head, answer = self._head, self._answer
        assert head is not None
        assert answer is not None
        state = self._state
        # the answer is handed over before the connection may close: closing a TLS connection
        # reports its end at once, which must not fail an answer already read whole
        if not answer.done():
            answer.set_result(
                (
                    head.status_code,
                    head.reason,
                    list(head.headers.raw_items()),
                    bytes(self._body),
                )
            )
        if (
            state.our_state is h11.DONE
            and state.their_state is h11.DONE
            and not state.trailing_data[0]  # bytes beyond the answer: no next answer to trust
        ):
            state.start_next_cycle()
            self._idle_since = self._loop.time()
        else:  # the server closes it (Connection: close, or an answer ended by closing)
            self.close()

    def _fail(self, error: httpx.TransportError) -> None:
        self.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    def _watch(self, timeout: float) -> None:
        """The read timeout: fail once nothing has been heard for ``timeout`` seconds."""
        quiet = self._loop.time() - self._heard
        if quiet >= timeout:
            self._fail(httpx.ReadTimeout(f"no answer for {timeout:g} s"))
        else:
            self._timer = self._loop.call_later(timeout - quiet, self._watch, timeout)


def _without(headers: list[tuple[bytes, bytes]], name: bytes) -> list[tuple[bytes, bytes]]:
    return [header for header in headers if header[0].lower() != name]


def _decoded(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The answer's body as it was before the server compressed it (gzip or deflate), and its
    headers without the coding; at most :data:`MAX_ANSWER` bytes of it, however small the
    compressed body was."""
    codings = [
        coding.strip().lower()
        for name, value in headers
        if name.lower() == b"content-encoding"
        for coding in value.split(b",")
    ]
    codings = [coding for coding in codings if coding not in (b"", b"identity")]
    if not codings or not body:  # an empty body (a 204, say) stays empty whatever its coding
        return headers, body
    for coding in reversed(codings):  # the last applied comes first off
        bits = _CODINGS.get(coding)
        if bits is None:
            shown = coding.decode("ascii", "replace")
            raise httpx.DecodingError(f"the answer is encoded as {shown!r}, which is not asked for")
        try:
            body = _inflate(body, bits, coding)
        except zlib.error as exc:
            shown = coding.decode("ascii", "replace")
            raise httpx.DecodingError(f"the answer's {shown} body is broken ({exc})") from exc
    return _without(_without(headers, b"content-encoding"), b"content-length"), body


def _inflate(body: bytes, bits: int, coding: bytes) -> bytes:
    inflater = zlib.decompressobj(bits)
    try:
        plain = inflater.decompress(body, MAX_ANSWER + 1)
    except zlib.error:
        if coding != b"deflate":
            raise
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent without its zlib header
        plain = inflater.decompress(body, MAX_ANSWER + 1)
    if len(plain) > MAX_ANSWER:
        raise httpx.RemoteProtocolError(_too_large())
    if not inflater.eof:  # the compressed stream stops before its end: a part is missing
        shown = coding.decode("ascii", "replace")
        raise httpx.DecodingError(f"the answer's {shown} body is cut short")
    return plain


def _too_large() -> str:
    return f"the answer is larger than {MAX_ANSWER // 2**20} MB, more than any the API gives"
