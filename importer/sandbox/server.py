"""Two ways to reach a :class:`Sandbox`: in-process through httpx, or over loopback HTTP.

Over loopback it is served by uvicorn (:mod:`importer.serve.server`), as the page is. In-process,
:class:`SandboxTransport` hands each httpx request straight to :meth:`Sandbox.handle`, with
no HTTP and no ASGI in between. ``httpx.ASGITransport`` over the same application costs about
the same CPU a call (both near 0.2 ms on a 2-core machine), but it ignores httpx's timeouts: a
slow answer would hold a run rather than time out, so a read timeout (an unknown outcome the
journal must settle) could not be tested in virtual time; and it has no connection to drop, so
a dropped one could not look as it does to a real client.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import httpx

from importer.sandbox.state import PREFIX, Sandbox
from importer.serve.exchange import Request


class SandboxTransport(httpx.AsyncBaseTransport):
    """Serves a :class:`Sandbox` to an ``httpx.AsyncClient`` in-process, timeouts included."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = {name.lower(): value for name, value in request.headers.items()}
        target = request.url.raw_path.decode("ascii")
        timeouts = request.extensions.get("timeout", {})
        try:
            answer = await asyncio.wait_for(
                self.sandbox.handle(Request(request.method, target, headers, body)),
                timeouts.get("read"),
            )
        except TimeoutError:
            raise httpx.ReadTimeout("the sandbox did not answer in time", request=request) from None
        if answer.drop:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(
            answer.status,
            headers=[("Content-Type", answer.content_type), *answer.headers],
            content=answer.body,
        )


class SandboxServer:
    """Serves a :class:`Sandbox` over HTTP/1.1 on 127.0.0.1, with uvicorn.

    Use as ``async with SandboxServer(sandbox, port=0) as server: ... server.api_url``.
    """

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        # uvicorn and Starlette are imported when a sandbox is served, not at every start
        from importer.serve.server import HttpServer

        self.sandbox = sandbox
        self._http = HttpServer(sandbox.handle, host=host, port=port)

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def connections(self) -> int:
        """How many connections it has accepted."""
        return self._http.accepted

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the sign-in server's address."""
        return f"http://{self._http.host}:{self._http.port}"

    @property
    def api_url(self) -> str:
        """The base URL to give the importer as ``--api-url``."""
        return f"{self.base_url}{PREFIX}"

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
