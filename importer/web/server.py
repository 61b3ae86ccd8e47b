"""Serve the page on 127.0.0.1: the socket, the launch secret, the address, uvicorn.

The socket is bound here, before uvicorn starts, so that the port (also a free one picked by
the system) is known for the address and the Host check, and so that a browser opened at once
waits in the queue rather than finding nothing there.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from importer.errors import UsageError
from importer.goto import oauth
from importer.goto.connection import Access
from importer.goto.credentials import NotSignedIn
from importer.jobs.common import open_connection
from importer.model import Status
from importer.serve.exchange import bind as bind_socket
from importer.serve.exchange import cannot_listen
from importer.serve.server import uvicorn_config
from importer.web.app import create_app
from importer.web.desk import Desk, default_folder
from importer.web.signin import OAuthClient, SignIn

__all__ = ["OAuthClient", "bind", "check_access", "serve", "uvicorn_server"]


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: any free port)."""
    try:
        return bind_socket(port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on 127.0.0.1:{port} ({cannot_listen(exc)}); choose another --port"
        ) from exc


def check_access(access: Access) -> None:
    """Fail at start on a setting that cannot work (a wrong --api-url, an unreadable
    --token-file), not later on the page; not being signed in yet is fine."""

    async def opened() -> None:
        async with open_connection(access):
            pass

    with contextlib.suppress(NotSignedIn):
        asyncio.run(opened())


def serve(
    access: Access,
    *,
    port: int = 0,
    client: OAuthClient | None = None,
    auth_url: str | None = None,
    sign_in_port: int | None = None,
    folder: Path | None = None,
    started: Callable[[str], None],
    open_browser: Callable[[str], None] | None = None,
) -> bool:
    """Serve the page until Ctrl-C; ``started`` is told its address (with the secret) first.

    An import under way when the server stops is stopped like Ctrl-C stops the command: the
    calls under way finish and the report is written before this returns. Whether the last
    import left rows to send is returned.
    """
    check_access(access)
    sock = bind(port)
    port = sock.getsockname()[1]
    secret = secrets.token_urlsafe(24)
    desk = Desk(access, folder or default_folder())
    signin = SignIn(
        access,
        client,
        open_browser,
        auth_url=auth_url or oauth.AUTH_URL,
        port=sign_in_port or oauth.CALLBACK_PORT,
    )
    app = create_app(desk, signin, port=port, secret=secret)
    address = f"http://127.0.0.1:{port}/?token={secret}"
    started(address)
    if open_browser is not None:
        threading.Thread(target=open_browser, args=(address,), daemon=True).start()
    # uvicorn stops gracefully on Ctrl-C, then passes it on: here it has done its work
    with sock, contextlib.suppress(KeyboardInterrupt):
        uvicorn_server(app).run(sockets=[sock])
    outcome = desk.run.outcome if desk.run is not None else None
    return outcome is not None and any(row.status is Status.PENDING for row in outcome.rows)


def uvicorn_server(app: ASGIApp) -> uvicorn.Server:
    """uvicorn for the page, as everything here runs it, with the page's lifespan; it runs
    until Ctrl-C in a loop of its own."""
    return uvicorn.Server(uvicorn_config(app, lifespan=True))
