"""A local simulator of the GoTo Webinar API, for trying the importer, tests and benchmarks.

:func:`connect` is the one way product code reaches it: it returns a
:class:`~importer.goto.connection.Connection` like any other, served in-process. The in-process
sandbox keeps its registrants, and the journals of its runs, in the user's data folder
(``store.py``), so that a run can be stopped and continued, and exported, cancelled or undone
afterwards; ``g2w-import sandbox reset`` empties it. ``g2w-import sandbox`` serves the same
simulator on a loopback socket (:class:`SandboxServer`), with faults to switch on, starting
empty and keeping nothing.

    state.py    the webinars, their registrants, the API's answers
    store.py    what the in-process sandbox keeps between runs, in SQLite
    oauth.py    the sign-in server: authorize, token, refresh, token lifetimes
    faults.py   the settings, the rate window, the dice
    server.py   in-process (an httpx transport) or over loopback HTTP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

from importer.goto.connection import Connection
from importer.goto.credentials import Credentials
from importer.goto.oauth import RefreshingAuth
from importer.goto.session import DEFAULT_RATE
from importer.sandbox.faults import SandboxConfig
from importer.sandbox.server import SandboxServer, SandboxTransport
from importer.sandbox.state import PREFIX, Sandbox
from importer.sandbox.store import Reset, SandboxStore, journal_folder, reset, store_path
from importer.sandbox.webinars import (
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
    "Reset",
    "Sandbox",
    "SandboxConfig",
    "SandboxServer",
    "SandboxTransport",
    "connect",
    "reset",
    "serve",
]

#: the in-process sandbox's address; never resolved, since its transport answers every call
URL = f"http://sandbox.invalid{PREFIX}"
LABEL = "the built-in sandbox: nothing reaches GoTo"


@contextlib.contextmanager
def connect(
    config: SandboxConfig | None = None, *, organizer_key: str | None = None
) -> Iterator[Connection]:
    """A connection to the in-process sandbox, with the registrants earlier runs left in it
    and its own journal folder, both in the user's data folder (its file is made by the first
    registration: a command that only reads leaves none behind).

    The token is issued for this connection alone: the sandbox keeps registrants, never tokens.
    """
    sandbox = Sandbox(config or SandboxConfig(rate=DEFAULT_RATE, latency=0.25))
    with SandboxStore.open(store_path()) as store:
        store.attach(sandbox)
        token = sandbox.sign_in.issue()
        yield Connection(
            URL,
            organizer_key or ORGANIZER_KEY,
            RefreshingAuth(Credentials(token, organizer_key=ORGANIZER_KEY), None),
            transport=SandboxTransport(sandbox),
            label=LABEL,
            journal_folder=journal_folder(),
            token_source="the built-in sandbox",
        )


async def serve(sandbox: Sandbox, port: int, ready: Callable[[SandboxServer], None]) -> None:
    """Serve ``sandbox`` on 127.0.0.1:``port`` until cancelled; ``ready`` hears when it listens."""
    async with SandboxServer(sandbox, port=port) as server:
        ready(server)
        await asyncio.Event().wait()
