"""What the tests share: sandboxes in a thread or a process, loopback servers, a
virtual-time event loop, input files and the constants they use."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from importer.goto.client import G2WClient
from importer.goto.credentials import Credentials
from importer.goto.oauth import RefreshingAuth
from importer.sandbox import (
    ORGANIZER_KEY,
    PREFIX,
    WEBINAR_KEY,
    Sandbox,
    SandboxConfig,
    SandboxServer,
    SandboxTransport,
)
from importer.serve.server import Answer, HttpServer, Request

T = TypeVar("T")
#: the variables that name a proxy (httpx, aiohttp and curl read them in either case)
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)
DATA = Path(__file__).parent / "data"
#: for tests that need POSIX: signals such as SIGINT and SIGKILL sent to another process, and
#: file modes such as 0600
posix_only = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX signals and file modes; Windows has neither"
)
#: the access token the tests' sandboxes accept (a sandbox accepts only tokens it issued)
TOKEN = "sandbox-test-token"


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing is ready to run.

    Sleeps, timeouts and aiolimiter's waits all read ``loop.time()``, so a run that would take
    minutes of rate-limited waiting finishes at once, and its timings can be asserted exactly.
    Only in-memory I/O may be used on it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0

    def time(self) -> float:
        return self._now

    def _run_once(self) -> None:
        ready: Any = self._ready  # type: ignore[attr-defined]
        scheduled: Any = self._scheduled  # type: ignore[attr-defined]
        if not ready and scheduled:
            # Time moves on by at least a microsecond, as it does on a real loop: a timer set
            # for "now" by float rounding (aiolimiter's can be) would otherwise fire forever.
            self._now = max(self._now + 1e-6, scheduled[0].when())
        super()._run_once()  # type: ignore[misc]


def sandbox_client(
    sandbox: Sandbox,
    *,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client wired to ``sandbox`` in-process (or through ``transport``)."""
    return httpx.AsyncClient(
        base_url=f"http://sandbox.invalid{PREFIX}",
        auth=RefreshingAuth(Credentials(TOKEN), None),
        transport=transport or SandboxTransport(sandbox),
        timeout=timeout,
    )


def api(http: httpx.AsyncClient, sandbox: Sandbox) -> G2WClient:
    """A client for the sandbox's webinar."""
    return G2WClient(http, sandbox.organizer_key, sandbox.webinar_key)


def virtual_sandbox(**config: Any) -> Sandbox:
    """A sandbox whose rate window reads the running (virtual) loop's clock."""
    return Sandbox(
        SandboxConfig(**{"tokens": (TOKEN,), **config}),
        clock=lambda: asyncio.get_running_loop().time(),
    )


class ThreadedServer:
    """A :class:`SandboxServer` on 127.0.0.1, served from a background thread's event loop."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.server = SandboxServer(sandbox, port=0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        self._submit(self.server.start()).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._submit(self.server.close()).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    @property
    def api_url(self) -> str:
        return self.server.api_url


class ScriptedServer:
    """Any handler of :mod:`importer.serve.server` on 127.0.0.1, from a background thread: a
    server that misbehaves on purpose."""

    def __init__(self, handler: Callable[[Request], Coroutine[Any, Any, Answer]]) -> None:
        self.http = HttpServer(handler, port=0)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.http.start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.http.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}{PREFIX}"


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def register_args(source: Path, api_url: str, *extra: str) -> list[str]:
    """``register`` arguments for the sandbox's webinar at ``api_url``."""
    return [
        "register",
        str(source),
        "--api-url",
        api_url,
        "--organizer-key",
        ORGANIZER_KEY,
        "--webinar-key",
        WEBINAR_KEY,
        *extra,
    ]


def command(*args: str) -> list[str]:
    """The importer as a separate process: ``python -m importer ARGS``."""
    return [sys.executable, "-m", "importer", *args]


def token_env(token: str = TOKEN) -> dict[str, str]:
    """This process's environment with ``G2W_ACCESS_TOKEN`` set."""
    return {**os.environ, "G2W_ACCESS_TOKEN": token}


def write_csv(
    path: Path, rows: Sequence[Sequence[str]], *, delimiter: str = ",", encoding: str = "utf-8"
) -> Path:
    """Write ``rows`` as CSV the way a spreadsheet program would."""
    with path.open("w", newline="", encoding=encoding) as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)
    return path


def people(count: int, *, domain: str = "example.com") -> list[list[str]]:
    """A header and ``count`` valid rows."""
    rows = [["firstName", "lastName", "email"]]
    rows += [[f"First{i}", f"Last{i}", f"person{i}@{domain}"] for i in range(count)]
    return rows


class SandboxProcess:
    """``g2w-import sandbox`` in a child process on a free loopback port."""

    def __init__(self, *options: str) -> None:
        self.process = subprocess.Popen(
            command("sandbox", "--port", "0", "--token", TOKEN, *options),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.fullmatch(r"Sandbox API on (http://127\.0\.0\.1:\d+/G2W/rest/v2)\n", first)
        if not match:
            self.process.kill()
            raise AssertionError(f"the sandbox did not start: {first!r}")
        self.api_url = match[1]

    def stop(self) -> str:
        """Stop it as Ctrl-C would; return what it printed on stderr."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=30)
        return err
