"""The wire under every HTTP call the tool makes: httpx is the API, aiohttp carries the calls.

:func:`client` builds every ``httpx.AsyncClient`` the tool uses (a run's, a sign-in's) over
:class:`Wire`, httpx-aiohttp's transport with aiohttp's connections: one path, with or without
a proxy (named in the environment, :func:`proxy_for`). Its failures keep the meaning the
journal relies on: :class:`httpx.ConnectError` and :class:`httpx.ConnectTimeout` only when no
byte of the request left; once one may have, :class:`httpx.ReadTimeout`,
:class:`httpx.ReadError` or :class:`httpx.RemoteProtocolError`, an unknown outcome.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import urllib.request
import zlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.connector import Connection as Pooled
from aiohttp.helpers import get_env_proxy_for_url
from httpx_aiohttp import AiohttpTransport
from yarl import URL

from importer.goto import tls
from importer.version import __version__

log = logging.getLogger(__name__)


def client(
    url: str,
    workers: int = 4,
    timeout: float = 30.0,
    *,
    auth: httpx.Auth | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An HTTP client for ``url``: ``workers`` connections at most, ``timeout`` seconds an
    answer (15 at most to connect), over :class:`Wire` unless given another ``transport``.

    The CA bundle is read here, before any call: one that cannot be used (``SSL_CERT_FILE``)
    is a :class:`~importer.errors.UsageError` now. httpx is told not to read the environment:
    a proxy there would have it route calls through transports of its own, past the wire.
    """
    if transport is None:
        transport = Wire(workers, tls.context(), proxy=proxy_for(url))
    return httpx.AsyncClient(
        base_url=url,
        auth=auth,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        headers={"User-Agent": f"g2w-import/{__version__}"},
        transport=transport,
        trust_env=False,
    )


#: the largest answer read: a page of 200 registrants is some hundred kilobytes; a server
#: that sends more is not to be held in memory
MAX_ANSWER = 32 * 2**20
#: seconds a connection may stay idle and still be reused (httpx's default)
KEEPALIVE = 5.0

CLOSED = "the server closed the connection before answering"
SHUT = "the connections were closed before this request had one"
UNSENT = "the connection closed before the request was sent"

#: asked for with every request: answers as they are, not compressed (the API's are small; a
#: server that compresses anyway is decoded, at most MAX_ANSWER bytes of it)
_IDENTITY = "identity"
#: zlib's window bits for each content coding the wire decodes
_CODINGS = {
    b"gzip": 16 + zlib.MAX_WBITS,
    b"x-gzip": 16 + zlib.MAX_WBITS,
    b"deflate": zlib.MAX_WBITS,
}
#: aiohttp's words when a request was refused before its first byte was written: the
#: connection it was given had closed meanwhile
_NOT_WRITTEN = "Cannot write to closing transport"


def proxy_for(url: str) -> httpx.Proxy | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, then ``ALL_PROXY``...),
    unless ``NO_PROXY`` exempts its host: aiohttp's own choice with ``trust_env``, made once for
    the client's address instead of for every call."""
    address = URL(url)
    try:
        proxy, auth = get_env_proxy_for_url(address)
    except LookupError:
        everything = urllib.request.getproxies().get("all")  # httpx's and curl's ALL_PROXY
        if not everything or (address.host and urllib.request.proxy_bypass(address.host)):
            return None
        return httpx.Proxy(everything)
    if auth is not None:
        return httpx.Proxy(str(proxy), auth=(auth.login, auth.password))
    return httpx.Proxy(str(proxy))


class Wire(AiohttpTransport):
    """httpx's calls over aiohttp: up to ``size`` connections, kept alive, through ``proxy``.

    Each answer is read whole, up to :data:`MAX_ANSWER` bytes, and decoded here if the server
    compressed it anyway; aiohttp's failures are translated by whether the request may have
    left (httpx-aiohttp's own translation makes a reset after sending a connect timeout).
    """

    def __init__(
        self,
        size: int,
        context: ssl.SSLContext,
        *,
        keepalive: float = KEEPALIVE,
        proxy: httpx.Proxy | None = None,
    ) -> None:
        self.size = size
        self.keepalive = keepalive
        self._tls = context
        self._closing = False
        super().__init__(verify=context, proxy=proxy, client=self._session)

    def _connector(self) -> aiohttp.TCPConnector:
        """The connections: ``size`` at most, each idle for ``keepalive`` seconds at most."""
        return _Connector(limit=self.size, keepalive_timeout=self.keepalive, ssl=self._tls)

    def _session(self) -> aiohttp.ClientSession:
        """aiohttp's session, made at the first call (inside the running event loop)."""
        session = aiohttp.ClientSession(connector=self._connector(), auto_decompress=False)
        # aiohttp sends an idempotent request (GET, PUT, DELETE) again, at once, when its
        # connection fails: a DELETE that left and then a second try that could not connect
        # would read as "nothing was sent". The session retries, as it does every call.
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closing:
            raise httpx.ConnectError(SHUT, request=request)
        for name, value in request.headers.raw:
            if b"\r" in value or b"\n" in value or b"\0" in value or b":" in name:
                raise httpx.LocalProtocolError(
                    f"the header {name.decode('ascii', 'replace')} cannot be sent", request=request
                )
        request.headers["Accept-Encoding"] = _IDENTITY
        try:
            response = await super().handle_async_request(request)
            try:
                body = await _whole(response)
            finally:
                await response.aclose()
        except (httpx.TransportError, aiohttp.ClientError, ValueError) as exc:
            failure = _failure(exc)
            if failure is None:
                raise
            failure.request = request
            raise failure from _cause(exc)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self._closing and task is not None and not task.cancelling():
                # aiohttp cancels the requests still waiting for a connection when it closes
                raise httpx.ConnectError(SHUT, request=request) from None
            raise
        headers: httpx.Headers | list[tuple[bytes, bytes]] = response.headers
        if "Content-Encoding" in headers:
            try:
                headers, body = _decoded(response.headers.raw, body)
            except httpx.RequestError as exc:
                exc.request = request
                raise
        # read already: httpx has nothing left to do but hand it over
        return httpx.Response(
            response.status_code, headers=headers, content=body, extensions=response.extensions
        )

    async def aclose(self) -> None:
        self._closing = True
        await super().aclose()


class _Handler(ResponseHandler):
    """aiohttp's side of one connection, counting the bytes it has received."""

    received = 0
    #: ``received`` when the connection was last put back among the idle ones
    idle_from = 0

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        super().data_received(data)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connections, none of them used again once it has received a byte while idle.

    A server or proxy that answers one request twice sends the second answer while the
    connection waits for its next request; aiohttp would keep it and hand it to that request as
    its answer (another person's key and join URL, for someone never registered). aiohttp checks
    a connection for such bytes as it is put back (:attr:`ResponseHandler.should_close`), not as
    it is taken again; this does, at the cost of a connection now and then.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._factory = functools.partial(_Handler, loop=self._loop)  # type: ignore[assignment]

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        if isinstance(protocol, _Handler):
            protocol.idle_from = protocol.received
        super()._release(key, protocol, should_close=should_close)

    async def _get(self, key: ConnectionKey, traces: list[Any]) -> Pooled | None:
        while True:
            taken = await super()._get(key, traces)
            protocol = taken.protocol if taken is not None else None
            if not isinstance(protocol, _Handler):
                return taken
            if protocol.received == protocol.idle_from and not protocol.should_close:
                return taken
            log.debug(
                "a connection received %d bytes while idle: closed, not used again",
                protocol.received - protocol.idle_from,
            )
            assert taken is not None
            taken.close()


async def _whole(response: httpx.Response) -> bytes:
    """The body of ``response`` as it came, at most :data:`MAX_ANSWER` bytes of it: read from
    aiohttp's answer itself (httpx-aiohttp's stream would hand it over in pieces, each through
    httpx's machinery, at a cost a call can notice)."""
    answer = getattr(response.stream, "_aiohttp_response", None)
    if not isinstance(answer, aiohttp.ClientResponse):  # a later httpx-aiohttp: its stream
        return await _gathered(response.aiter_raw())
    length = answer.content_length
    if length is not None and length <= MAX_ANSWER:
        return await answer.read()
    return await _gathered(answer.content.iter_any())


async def _gathered(pieces: AsyncIterator[bytes]) -> bytes:
    """``pieces`` joined, failing once they come to more than :data:`MAX_ANSWER` bytes."""
    gathered = []
    size = 0
    async for piece in pieces:
        size += len(piece)
        if size > MAX_ANSWER:
            raise httpx.RemoteProtocolError(_too_large())
        gathered.append(piece)
    return b"".join(gathered)


def _cause(exc: BaseException) -> BaseException:
    """aiohttp's own failure behind httpx-aiohttp's translation of it."""
    if isinstance(exc, httpx.TransportError) and isinstance(exc.__cause__, aiohttp.ClientError):
        return exc.__cause__
    return exc


def _failure(exc: BaseException) -> httpx.TransportError | None:
    """httpx's failure for ``exc``, by whether the request may have left; None to let it be
    (one of ours, or a programming error)."""
    cause = _cause(exc)
    why = str(cause) or type(cause).__name__
    if isinstance(cause, ValueError) and not isinstance(cause, aiohttp.ClientError):
        if "header" in why:  # refused on this side while writing the head: nothing left
            return httpx.LocalProtocolError(why)
        return None
    if cause is exc and isinstance(exc, httpx.TransportError):
        return None  # ours already (the answer's size), or httpx's own
    if isinstance(cause, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return httpx.ConnectError(f"the proxy refused the connection ({why})")
    if isinstance(cause, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake
        return httpx.ConnectError(why)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):  # no connection came in time
        return httpx.ConnectTimeout(why)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(why)
    if _unsent(cause):
        return httpx.ConnectError(UNSENT)
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(CLOSED)
    if isinstance(cause, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(
            f"the server closed the connection in the middle of its answer ({why})"
        )
    if isinstance(cause, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(f"the server's answer is not HTTP ({cause.message})")
    if isinstance(cause, aiohttp.ClientOSError):  # a reset, after the request may have left
        return httpx.ReadError(why)
    if isinstance(cause, aiohttp.ClientConnectionError):
        if "Connector is closed" in why:
            return httpx.ConnectError(SHUT)
        return httpx.ReadError(why)
    if isinstance(cause, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(why)
    if isinstance(exc, httpx.TransportError):
        return None
    return httpx.RemoteProtocolError(why)


def _unsent(cause: BaseException) -> bool:
    """Whether aiohttp refused to write the request's first bytes, the connection it was given
    having closed meanwhile: each request is written in one piece, head and body together, so
    nothing of it left."""
    seen: set[int] = set()
    link: BaseException | None = cause
    while link is not None and id(link) not in seen:
        if isinstance(link, aiohttp.ClientConnectionResetError) and str(link) == _NOT_WRITTEN:
            return True
        seen.add(id(link))
        link = link.__cause__
    return False


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
    """``body`` decompressed, at most :data:`MAX_ANSWER` bytes of it: every member of a gzip
    body (RFC 1952 allows several, one after the other); nothing may follow the last."""
    shown = coding.decode("ascii", "replace")
    plain = b""
    rest = body
    while rest:
        inflater = zlib.decompressobj(bits)
        try:
            plain += inflater.decompress(rest, MAX_ANSWER + 1 - len(plain))
        except zlib.error:
            if coding != b"deflate" or plain:
                raise
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent without its header
            plain += inflater.decompress(rest, MAX_ANSWER + 1)
        if len(plain) > MAX_ANSWER:
            raise httpx.RemoteProtocolError(_too_large())
        if not inflater.eof:  # the compressed stream stops before its end: a part is missing
            raise httpx.DecodingError(f"the answer's {shown} body is cut short")
        rest = inflater.unused_data
        if rest and bits != _CODINGS[b"gzip"]:
            raise httpx.DecodingError(f"the answer's {shown} body goes on after its end")
    return plain


def _too_large() -> str:
    return f"the answer is larger than {MAX_ANSWER // 2**20} MB, more than any the API gives"
