"""What the tests share: sandboxes in a thread or a process, loopback servers, a
virtual-time event loop, input files, the command run in-process, its reports read back, and the
constants they use."""

from __future__ import annotations

import asyncio
import collections
import csv
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

import httpx
import pytest
from click.testing import CliRunner, Result
from openpyxl import Workbook, load_workbook

from importer.cli import cli
from importer.goto.client import G2WClient
from importer.goto.credentials import Credentials
from importer.goto.oauth import RefreshingAuth
from importer.model import RawRow, Registrant, Table
from importer.sandbox import (
    ORGANIZER_KEY,
    PREFIX,
    WEBINAR_KEY,
    Sandbox,
    SandboxConfig,
    SandboxServer,
    SandboxTransport,
)
from importer.serve.exchange import Answer, Request
from importer.serve.server import HttpServer

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
#: the environment :func:`invoke` lays over this process's to reach a loopback sandbox
ENV = {"G2W_ACCESS_TOKEN": TOKEN}


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


class LoopServer:
    """A server whose event loop runs in a background thread: :meth:`_start` runs on that loop
    on entering a ``with``, :meth:`_close` on leaving it, and then the loop stops."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _start(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        self._submit(self._start()).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._submit(self._close()).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)


class ThreadedServer(LoopServer):
    """A :class:`SandboxServer` on 127.0.0.1, served from a background thread's event loop."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.server = SandboxServer(sandbox, port=0)

    async def _start(self) -> None:
        await self.server.start()

    async def _close(self) -> None:
        await self.server.close()

    @property
    def api_url(self) -> str:
        return self.server.api_url


class ScriptedServer(LoopServer):
    """Any handler of :mod:`importer.serve.server` on 127.0.0.1, from a background thread: a
    server that misbehaves on purpose."""

    def __init__(self, handler: Callable[[Request], Coroutine[Any, Any, Answer]]) -> None:
        super().__init__()
        self.http = HttpServer(handler, port=0)

    async def _start(self) -> None:
        await self.http.start()

    async def _close(self) -> None:
        await self.http.close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http.port}{PREFIX}"


class Serving(Protocol):
    """A server the command is pointed at: :class:`ThreadedServer`, :class:`ScriptedServer`,
    :class:`SandboxProcess` or a test's own."""

    @property
    def api_url(self) -> str: ...


def url_of(api: str | Serving) -> str:
    """The API address of ``api``: the address itself, or the server's."""
    return api if isinstance(api, str) else api.api_url


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def at(api: str | Serving, webinar: str = WEBINAR_KEY) -> list[str]:
    """The options that point a command at the sandbox's ``webinar`` at ``api``."""
    return ["--api-url", url_of(api), "--organizer-key", ORGANIZER_KEY, "--webinar-key", webinar]


def register_args(source: Path, api: str | Serving, *extra: str) -> list[str]:
    """``register`` arguments for the sandbox's webinar at ``api`` (a server or its address)."""
    return ["register", str(source), *at(api), *extra]


def invoke(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
    """``g2w-import ARGS`` in this process: ``env`` laid over this process's environment (no
    token unless given: see ``own_data_folder``), ``stdin`` as its input; exceptions propagate."""
    return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)


def register(
    api: str | Serving,
    source: Path,
    *extra: str,
    rate: int | None = None,
    keys: bool = True,
    env: Mapping[str, str] = ENV,
) -> Result:
    """``register`` of ``source`` at ``api`` (a server or its address) with the sandbox token.

    ``rate`` adds ``--rate``. With ``keys=False`` no key is given: the API is asked whose token it
    is, and the webinar's key comes in ``extra``."""
    options = [*(("--rate", str(rate)) if rate is not None else ()), *extra]
    if keys:
        return invoke(*register_args(source, api, *options), env=env)
    return invoke("register", str(source), "--api-url", url_of(api), *options, env=env)


def one_line_error(result: Result, code: int = 2) -> str:
    """Assert the command ended with exit ``code``, no traceback and one ``Error:`` line on
    stderr; return that line."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def command(*args: str) -> list[str]:
    """The importer as a separate process: ``python -m importer ARGS``."""
    return [sys.executable, "-m", "importer", *args]


def kill_repeatedly(
    argv: list[str],
    seed: int,
    runs: int = 6,
    *,
    pause: tuple[float, float] = (0.8, 1.6),
    env: dict[str, str] | None = None,
) -> int:
    """Start ``argv`` (with the sandbox token unless ``env`` is given) and kill it with SIGKILL
    after a random moment of ``pause`` seconds, ``runs`` times (fewer if it finishes first);
    return how many runs were killed."""
    rng = random.Random(seed)
    kills = 0
    for _ in range(runs):
        started = subprocess.Popen(
            argv,
            env=token_env() if env is None else env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(*pause))
        if started.poll() is not None:
            break
        started.send_signal(signal.SIGKILL)
        started.wait(timeout=30)
        kills += 1
    return kills


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


def person(i: int, company: str = "") -> Registrant:
    """Person ``i``, validated: from line ``i + 2``, with ``company`` as its organization."""
    fields = {"organization": company} if company else {}
    return Registrant(i + 2, f"F{i}", f"L{i}", f"p{i}@example.com", fields)


def table(*rows: tuple[str, ...], headers: tuple[str, ...] = ("First", "Last", "E-Mail")) -> Table:
    """A file read as ``headers`` over ``rows``, the first row on line 2."""
    raw = tuple(RawRow(line, cells) for line, cells in enumerate(rows, start=2))
    return Table(Path("people.csv"), headers, 1, raw)


def write_workbook(
    path: Path,
    sheets: dict[str, list[list[Any]]],
    *,
    active: str | None = None,
    states: dict[str, str] | None = None,
    hidden_rows: dict[str, list[int]] | None = None,
) -> Path:
    """A workbook as openpyxl writes it: ``states`` hides sheets, ``hidden_rows`` rows."""
    made = Workbook()
    made.remove(made.active)
    for name, rows in sheets.items():
        sheet = made.create_sheet(name)
        for row in rows:
            sheet.append(row)
        sheet.sheet_state = (states or {}).get(name, "visible")
        for line in (hidden_rows or {}).get(name, []):
            sheet.row_dimensions[line].hidden = True
    if active is not None:
        made.active = list(sheets).index(active)
    made.save(path)
    return path


def sheet_rows(path: Path, sheet: str = "Registrants") -> list[dict[str, Any]]:
    """A sheet of a workbook (a report's Registrants unless told) as one dict a row, by header."""
    rows = list(load_workbook(path)[sheet].iter_rows(values_only=True))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def statuses(path: Path) -> list[Any]:
    """The status of each row of a report, in order."""
    return [row["status"] for row in sheet_rows(path)]


def status_counts(path: Path) -> collections.Counter[Any]:
    """How many rows of a report have each status."""
    return collections.Counter(statuses(path))


def summary(path: Path) -> dict[str, Any]:
    """A report's Summary sheet: each label's value."""
    sheet = load_workbook(path)["Summary"]
    return {row[0]: row[1] for row in sheet.iter_rows(min_row=3, values_only=True)}


def csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV report as one dict a row, by header."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def server_registrants(api: str | Serving) -> list[dict[str, Any]]:
    """The sandbox webinar's registrants at ``api``, as its API lists them."""
    path = f"{url_of(api)}/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}/registrants"
    answer = httpx.get(path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    answer.raise_for_status()
    entries: list[dict[str, Any]] = answer.json()
    return entries


def mock_client(
    transport: httpx.AsyncBaseTransport, *, token: str = "secret-token"
) -> httpx.AsyncClient:
    """An httpx client for an API at api.example.test, answered by ``transport``."""
    return httpx.AsyncClient(
        base_url=f"https://api.example.test{PREFIX}",
        transport=transport,
        auth=RefreshingAuth(Credentials(token), None),
    )


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
