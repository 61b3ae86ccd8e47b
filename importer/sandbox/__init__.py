"""A local simulator of the GoTo Webinar API, for trying the importer, tests and benchmarks.

:func:`connect` is the one way product code reaches it: it returns a
:class:`~importer.connection.Connection` like any other, served in-process, with a journal
folder of its own that is thrown away afterwards (the in-process sandbox starts empty every
time). ``g2w-import sandbox`` serves the same simulator on a loopback socket
(:class:`SandboxServer`), with faults to switch on.

    state.py    the webinars, their registrants, the API's answers
    oauth.py    the sign-in server: authorize, token, refresh, token lifetimes
    faults.py   the settings, the rate window, the dice
    server.py   in-process (an httpx transport) or over loopback HTTP
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..connection import Connection
from ..credentials import Credentials
from ..oauth import RefreshingAuth
from .faults import SandboxConfig
from .server import SandboxServer, SandboxTransport
from .state import PREFIX, Sandbox
from .webinars import (
    JOIN_HOST,
    KICKOFF_KEY,
    ORGANIZER_KEY,
    SUMMIT_KEY,
    WEBINAR_KEY,
    WORKSHOP_KEY,
    WORKSHOP_QUESTIONS,
)

__all__ = [
    "JOIN_HOST",
    "KICKOFF_KEY",
    "ORGANIZER_KEY",
    "PREFIX",
    "SUMMIT_KEY",
    "WEBINAR_KEY",
    "WORKSHOP_KEY",
    "WORKSHOP_QUESTIONS",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "SandboxTransport",
    "connect",
    "serve",
]

#: the in-process sandbox's address; never resolved, since its transport answers every call
URL = f"http://sandbox.invalid{PREFIX}"
LABEL = "the built-in sandbox: nothing reaches GoTo"


@contextlib.contextmanager
def connect(
    config: SandboxConfig | None = None, *, organizer_key: str | None = None
) -> Iterator[Connection]:
    """A connection to a fresh in-process sandbox, and a journal folder that lives as long."""
    sandbox = Sandbox(config or SandboxConfig(rate=10.0, latency=0.25))
    token = sandbox.sign_in.issue()
    with tempfile.TemporaryDirectory(prefix="g2w-sandbox-") as folder:
        yield Connection(
            URL,
            organizer_key or ORGANIZER_KEY,
            RefreshingAuth(Credentials(token, organizer_key=ORGANIZER_KEY), None),
            transport=SandboxTransport(sandbox),
            label=LABEL,
            journal_folder=Path(folder),
            token_source="the built-in sandbox",
        )


async def serve(sandbox: Sandbox, port: int, ready: Callable[[SandboxServer], None]) -> None:
    """Serve ``sandbox`` on 127.0.0.1:``port`` until cancelled; ``ready`` hears when it listens."""
    async with SandboxServer(sandbox, port=port) as server:
        ready(server)
        await asyncio.Event().wait()
