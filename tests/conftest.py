"""Shared fixtures: a virtual-time event loop, sandboxes, a test CA, and input files in
tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from importer.jobs import journals as keeping
from importer.sandbox import Sandbox, SandboxConfig
from tests.helpers import TOKEN, SandboxProcess, T, ThreadedServer, VirtualTimeLoop


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Journals and reports of every test (and its subprocesses) go into the test's own
    folder."""
    folder = tmp_path / "user-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user-config"))
    monkeypatch.setenv("G2W_CREDENTIALS_FILE", str(tmp_path / "user-config" / "credentials.json"))
    for name in (
        "G2W_ACCESS_TOKEN",
        "G2W_ORGANIZER_KEY",
        "G2W_API_URL",
        "G2W_CLIENT_ID",
        "G2W_CLIENT_SECRET",
        "G2W_AUTH_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    # a command that writes beside the current folder (export, undo) writes into the test's own
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture
def run_virtual() -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    """Run a coroutine to completion on a :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop()

    def run(coroutine: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(coroutine)

    yield run
    loop.close()


@pytest.fixture
def ca() -> trustme.CA:
    """A certificate authority of the test's own, for HTTPS servers on 127.0.0.1."""
    return trustme.CA()


@pytest.fixture
def loopback_sandbox() -> Iterator[Callable[..., ThreadedServer]]:
    """Start a sandbox served over a real socket on 127.0.0.1; stopped after the test."""
    started: list[ThreadedServer] = []

    def start(**config: Any) -> ThreadedServer:
        server = ThreadedServer(Sandbox(SandboxConfig(**{"tokens": (TOKEN,), **config})))
        started.append(server.__enter__())
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def sandbox_process() -> Iterator[Callable[..., SandboxProcess]]:
    """Start ``g2w-import sandbox`` processes; each is stopped after the test."""
    started: list[SandboxProcess] = []

    def start(*options: str) -> SandboxProcess:
        started.append(SandboxProcess(*options))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.communicate(timeout=30)


@pytest.fixture
def journals_folder(own_data_folder: Path) -> Path:
    """The user's journals folder (in the test's own data folder), made empty."""
    where = keeping.folder()
    where.mkdir(parents=True)
    return where
