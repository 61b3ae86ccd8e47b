"""What a loopback server and its handler exchange (:class:`Request`, :class:`Answer`), and
the sockets it listens on: the light half of :mod:`importer.serve.server`, which the sandbox, the
sign-in callback and the commands use without starting uvicorn (kept apart so that the commands
do not import uvicorn and Starlette at every start: about 30 ms)."""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


def cannot_listen(exc: OSError) -> str:
    """Why a port could not be listened on, in the system's words ("address already in
    use"), without asyncio's wrapping of them."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc) or type(exc).__name__


def bind(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port); ``OSError`` when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":  # elsewhere the flag would let another program take the port over
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


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
