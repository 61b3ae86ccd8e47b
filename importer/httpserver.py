"""A small HTTP/1.1 server on 127.0.0.1 (asyncio and h11), for the sandbox and the sign-in.

It parses requests with h11, so that a malformed one is refused rather than misread, keeps
connections alive, runs one task per connection, and hands each request to an async handler
that returns an :class:`Answer`. It serves loopback only: nothing here is meant for a network.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

import h11

#: the largest request body accepted, in bytes
MAX_BODY = 1 << 20


def cannot_listen(exc: OSError) -> str:
    """Why a port could not be listened on, in the system's words ("address already in
    use"), without asyncio's wrapping of them."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc) or type(exc).__name__


@dataclass(frozen=True)
class Answer:
    """A response, or ``drop=True`` for a connection closed without one."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False
    headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class Request:
    """A request as the handler sees it: header names in lower case."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Request], Awaitable[Answer]]


class HttpServer:
    """Serves ``handler`` on ``host:port`` (port 0: any free one) until closed.

    Use as ``async with HttpServer(handler, port=0) as server: ... server.port``.
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        #: connections accepted so far
        self.accepted = 0

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the port is taken."""
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> HttpServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.accepted += 1
        try:
            await self._serve(reader, writer)
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # closing the server: end quietly (on 3.11 a cancelled connection task is logged)
            pass
        finally:
            self._connections.discard(task)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            request: h11.Request | None = None
            body = bytearray()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    if not data and conn.their_state is h11.IDLE:
                        return
                    conn.receive_data(data)
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        return
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                    return
            assert request is not None
            answer = await self.handler(
                Request(
                    request.method.decode("ascii", "replace"),
                    request.target.decode("ascii", "replace"),
                    {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers},
                    bytes(body),
                )
            )
            if answer.drop:
                return
            headers = [
                ("Content-Type", answer.content_type),
                *answer.headers,
                ("Content-Length", str(len(answer.body))),
            ]
            writer.write(conn.send(h11.Response(status_code=answer.status, headers=headers)) or b"")
            writer.write(conn.send(h11.Data(data=answer.body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
            if conn.our_state is h11.MUST_CLOSE:
                return
            with contextlib.suppress(h11.ProtocolError):
                conn.start_next_cycle()
