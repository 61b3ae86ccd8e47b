"""Serving on 127.0.0.1 with uvicorn: the page, the sandbox and the sign-in callback.

One way to run uvicorn for all three (:func:`uvicorn_config`): plain HTTP/1.1 parsed by h11,
no WebSocket, quiet. The page runs it in a process of its own until Ctrl-C; the sandbox and
the sign-in callback run it inside an event loop that is already running (:class:`HttpServer`),
with a handler that takes a :class:`Request` and returns an :class:`Answer`. Nothing here is
meant for a network: every socket is bound on loopback.

``Answer(drop=True)`` closes the connection without a byte of answer, as a server or gateway
that fails mid-request does; uvicorn has no such answer (an application that sends nothing
gets a 500), so the connection's own protocol aborts its transport.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import uvicorn
from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from importer.serve.exchange import Answer, Handler, Request, bind

#: the largest request body accepted, in bytes
MAX_BODY = 1 << 20
#: the key in a request's ASGI ``state`` under which its connection's drop is found
DROP = "importer.drop"


def uvicorn_config(
    app: ASGIApp,
    *,
    lifespan: bool,
    http: type[asyncio.Protocol] | str = "h11",
    timeout_keep_alive: int = 5,
) -> uvicorn.Config:
    """uvicorn as everything here runs it: HTTP/1.1 on h11, no WebSocket, no access log (the
    page's first address carries its secret), no ``Server`` header, warnings only."""
    return uvicorn.Config(
        app,
        http=http,
        ws="none",
        loop="asyncio",
        interface="asgi3",
        lifespan="on" if lifespan else "off",
        log_config=None,
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=timeout_keep_alive,
        timeout_graceful_shutdown=5,
    )


_TOO_LARGE = Answer(413, b'{"description": "the request body is too large"}')


def asgi(handler: Handler) -> ASGIApp:
    """An ASGI application answering every HTTP request with ``handler``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        incoming = StarletteRequest(scope, receive)
        body = bytearray()
        try:
            async for chunk in incoming.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    await _respond(_TOO_LARGE, scope, receive, send)
                    return
        except ClientDisconnect:  # gone before the whole request came: nobody to answer
            return
        query = scope["query_string"]
        target = scope["raw_path"] + b"?" + query if query else scope["raw_path"]
        request = Request(
            scope["method"],
            target.decode("ascii", "replace"),
            dict(incoming.headers.items()),
            bytes(body),
        )
        try:
            answer = await handler(request)
        except asyncio.CancelledError:
            # the server is closing: it has closed this connection already, and the answer
            # has nowhere to go; the task ends as one whose client went away
            return
        if answer.drop:
            scope["state"][DROP]()
            return
        await _respond(answer, scope, receive, send)

    return app


async def _respond(answer: Answer, scope: Scope, receive: Receive, send: Send) -> None:
    response = Response(answer.body, answer.status)
    response.raw_headers = [
        (b"content-type", answer.content_type.encode("latin-1")),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers),
    ]
    if answer.status >= 200 and answer.status not in (204, 304):  # those have no body at all
        response.raw_headers.append((b"content-length", str(len(answer.body)).encode("ascii")))
    await response(scope, receive, send)


class HttpServer:
    """Serves ``handler`` with uvicorn on ``host:port`` (port 0: any free one), in the running
    event loop, until closed.

    Use as ``async with HttpServer(handler, port=0) as server: ... server.port``. Closing ends
    every connection at once, answers under way included (a sandbox's slow answer can take a
    minute; nobody waits for it).
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        #: connections accepted so far
        self.accepted = 0
        self._server: uvicorn.Server | None = None

    async def start(self) -> None:
        """Listen; raises ``OSError`` when the port is taken."""
        sock = bind(self.port, self.host)
        self.port = sock.getsockname()[1]
        server = uvicorn.Server(
            # a client may keep a connection for as long as it likes, as with an API's servers:
            # one closed by the server just as the client reuses it would lose a request
            uvicorn_config(
                asgi(self.handler), lifespan=False, http=self._protocol(), timeout_keep_alive=3600
            )
        )
        server.config.load()
        server.lifespan = server.config.lifespan_class(server.config)  # "off": nothing to run
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._server = server

    def _protocol(self) -> type[asyncio.Protocol]:
        owner = self

        class Protocol(H11Protocol):
            """uvicorn's HTTP/1.1 connection, counted, and able to close without an answer."""

            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                owner.accepted += 1
                # every request on this connection finds how to drop it in its ASGI state
                self.app_state = {**self.app_state, DROP: self.drop}
                super().connection_made(transport)

            def drop(self) -> None:
                """Close the connection at once, with nothing sent."""
                if self.cycle is not None:
                    self.cycle.disconnected = True  # uvicorn then sends no 500 of its own
                self.transport.abort()

        return Protocol

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        for listening in server.servers:
            listening.close()
        for connection in list(server.server_state.connections):
            transport: Any = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        tasks = list(server.server_state.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for listening in server.servers:
            await listening.wait_closed()

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
