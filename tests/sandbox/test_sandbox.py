"""The simulated API behaves like the reference says the real one does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from importer.sandbox import (
    ORGANIZER_KEY,
    PREFIX,
    WEBINAR_KEY,
    WORKSHOP_KEY,
    Sandbox,
    SandboxConfig,
)
from importer.serve.exchange import Request
from tests.helpers import (
    TOKEN,
    SandboxProcess,
    ThreadedServer,
    command,
    people,
    posix_only,
    register_args,
    token_env,
    write_csv,
)

BASE = f"{PREFIX}/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}"
AUTH = {"authorization": f"Bearer {TOKEN}"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ask(
    sandbox: Sandbox,
    method: str,
    target: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    request = Request(method, target, AUTH if headers is None else headers, raw)
    answer = asyncio.run(sandbox.handle(request))
    return answer.status, json.loads(answer.body) if answer.body.startswith((b"{", b"[")) else None


def person(i: int) -> dict[str, str]:
    return {"firstName": f"F{i}", "lastName": f"L{i}", "email": f"p{i}@example.com"}


def test_create_issues_19_digit_keys_and_sandbox_join_urls() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0))
    status, body = ask(sandbox, "POST", f"{BASE}/registrants", person(1))
    assert status == 201
    assert body["registrantKey"] > 2**53
    assert len(str(body["registrantKey"])) == 19
    assert body["joinUrl"].startswith("https://sandbox.g2w-import.invalid/join/")


def test_repeated_email_conflicts_without_keys_unless_asked() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0))
    ask(sandbox, "POST", f"{BASE}/registrants", person(1))
    status, body = ask(
        sandbox, "POST", f"{BASE}/registrants", {**person(1), "email": "P1@Example.com"}
    )
    assert status == 409
    assert body is None  # the spec's 409 has no body
    sandbox.config.conflict_keys = True
    status, body = ask(sandbox, "POST", f"{BASE}/registrants", person(1))
    assert str(body["registrantKey"]) == sandbox.registrants()[0]["registrantKey"]


def test_without_dedupe_a_repeated_email_is_registered_again() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0, dedupe=False))
    for _ in range(2):
        assert ask(sandbox, "POST", f"{BASE}/registrants", person(1))[0] == 201
    assert len(sandbox.registrants()) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"firstName": "A", "lastName": "B"}, "email is required"),
        ({**person(1), "email": "nobody"}, "Invalid email address"),
        ({**person(1), "city": "x" * 129}, "city is longer than 128"),
    ],
)
def test_bad_bodies_get_400_with_a_description(body: dict[str, str], message: str) -> None:
    status, answer = ask(
        Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0)), "POST", f"{BASE}/registrants", body
    )
    assert status == 400
    assert message in answer["description"]


def test_bodies_no_client_would_send_are_400_too() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0))
    workshop = f"{PREFIX}/organizers/{ORGANIZER_KEY}/webinars/{WORKSHOP_KEY}/registrants"
    deep = b"[" * 100_000 + b"]" * 100_000  # nested past any parser's depth
    odd = {**person(1), "responses": [{"questionKey": {"x": 1}, "responseText": "y"}]}
    for target, raw in ((f"{BASE}/registrants", deep), (workshop, json.dumps(odd).encode())):
        answer = asyncio.run(sandbox.handle(Request("POST", target, AUTH, raw)))
        assert answer.status == 400, answer.body


def test_missing_token_is_403_invalid_token() -> None:
    status, body = ask(Sandbox(SandboxConfig(tokens=(TOKEN,))), "GET", BASE, headers={})
    assert (status, body["int_err_code"]) == (403, "InvalidToken")


def test_unknown_webinar_is_404() -> None:
    target = f"{PREFIX}/organizers/{ORGANIZER_KEY}/webinars/42"
    assert ask(Sandbox(SandboxConfig(tokens=(TOKEN,))), "GET", target)[0] == 404


def test_rate_limit_counts_calls_in_any_one_second_window() -> None:
    clock = Clock()
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=3), clock=clock)
    statuses = []
    for moment in (0.0, 0.1, 0.2, 0.3, 0.99, 1.0, 1.05, 1.15, 1.25):
        clock.now = moment
        statuses.append(ask(sandbox, "GET", BASE)[0])
    assert statuses == [200, 200, 200, 429, 429, 200, 429, 200, 200]


@pytest.mark.parametrize("style", ["array", "data", "spec", "plain"])
def test_registrant_list_pages_in_each_style(style: str) -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0, list_style=style))
    for i in range(5):
        sandbox.add_registrant(person(i))
    everyone = [f"p{i}@example.com" for i in range(5)]
    size = "size" if style == "spec" else "limit"
    status, page = ask(sandbox, "GET", f"{BASE}/registrants?page=1&{size}=2")
    assert status == 200
    if style == "array":
        assert [entry["email"] for entry in page] == everyone[2:4]
    elif style == "data":
        assert (page["total"], page["page"], page["pageSize"]) == (5, 1, 2)
        assert [entry["email"] for entry in page["data"]] == everyone[2:4]
    elif style == "spec":
        assert page["page"] == {"size": 2, "totalElements": 5, "totalPages": 3, "number": 1}
        assert [e["email"] for e in page["_embedded"]["registrants"]] == everyone[2:4]
    else:
        assert [entry["email"] for entry in page] == everyone  # paging ignored
    assert ask(sandbox, "GET", f"{BASE}/registrants?page=0&{size}=201")[0] in (
        (200,) if style == "plain" else (400,)
    )


def test_fields_and_webinar() -> None:
    status, fields = ask(
        Sandbox(SandboxConfig(tokens=(TOKEN,))), "GET", f"{BASE}/registrants/fields"
    )
    required = {f["field"] for f in fields["fields"] if f["required"]}
    assert (status, required) == (200, {"firstName", "lastName", "email"})
    status, webinar = ask(Sandbox(SandboxConfig(tokens=(TOKEN,))), "GET", BASE)
    assert webinar["subject"] == "Product launch (sandbox)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT15:00:00Z", webinar["times"][0]["startTime"])


def test_loopback_server_drops_connections_after_registering() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0, drop_rate=1.0))
    with ThreadedServer(sandbox) as server, httpx.Client(base_url=server.api_url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(f"{BASE[len(PREFIX) :]}/registrants", json=person(1), headers=AUTH)
        assert len(sandbox.registrants()) == 1
        answer = http.get(f"{BASE[len(PREFIX) :]}/registrants", headers=AUTH)
        assert answer.status_code == 200
        assert answer.json()[0]["email"] == "p1@example.com"


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a new connection; everything the server sent until it closed."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
    return received


def post_bytes(body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"POST {BASE}/registrants HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    return (head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + body


def test_a_dropped_connection_is_closed_without_a_byte_of_answer() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0, drop_rate=1.0))
    with ThreadedServer(sandbox) as server:
        port = int(server.api_url.split(":")[2].split("/")[0])
        assert raw_exchange(port, post_bytes(json.dumps(person(1)).encode())) == b""
        assert [p["email"] for p in sandbox.registrants()] == ["p1@example.com"]
        assert server.server.connections == 1


def test_the_loopback_server_refuses_what_it_cannot_read() -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0))
    with ThreadedServer(sandbox) as server:
        port = server.server.port
        too_large = raw_exchange(port, post_bytes(b"[" + b" " * (1 << 20) + b"]", close=True))
        assert too_large.startswith(b"HTTP/1.1 413 ")
        garbled = raw_exchange(port, b"POST \x00 HTTP/1.1\r\n\r\n")
        assert garbled.startswith(b"HTTP/1.1 400 ")
        no_host = raw_exchange(port, f"GET {BASE} HTTP/1.1\r\n\r\n".encode())
        assert no_host.startswith(b"HTTP/1.1 400 ")
        assert sandbox.stats["calls"] == 0  # none reached the API
        fine = raw_exchange(port, post_bytes(json.dumps(person(2)).encode(), close=True))
        assert fine.startswith(b"HTTP/1.1 201 ")


def test_closing_the_loopback_server_cuts_a_slow_answer_short_and_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = Sandbox(SandboxConfig(tokens=(TOKEN,), rate=0, slow_rate=1.0, slow_seconds=600))
    server = ThreadedServer(sandbox).__enter__()
    got: list[bytes] = []
    asking = threading.Thread(
        target=lambda: got.append(
            raw_exchange(server.server.port, post_bytes(json.dumps(person(3)).encode()))
        )
    )
    asking.start()
    # real time: the request must be under way in the server's own thread before it closes
    deadline = time.monotonic() + 10
    while not sandbox.stats["slow"] and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.__exit__(None, None, None)
    asking.join(timeout=10)
    assert time.monotonic() - started < 2  # uvicorn's own graceful shutdown would wait 5 s
    assert got == [b""]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@posix_only
def test_sandbox_command_serves_a_real_import_between_two_processes(
    tmp_path: Path, sandbox_process: Callable[..., SandboxProcess]
) -> None:
    """``g2w-import sandbox`` in one process, ``g2w-import register`` in another, over loopback."""
    server = sandbox_process("--latency", "0.05", "--rate", "50")
    source = write_csv(tmp_path / "guests.csv", people(25))
    done = subprocess.run(
        command(*register_args(source, server.api_url, "--rate", "40")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=token_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "Done: 25 registered" in done.stderr
    sheet = load_workbook(tmp_path / "guests-joinurls.xlsx")["Registrants"]
    rows = list(sheet.iter_rows(values_only=True))
    keys = [row[rows[0].index("registrantKey")] for row in rows[1:]]
    assert len(set(keys)) == 25
    stopped = server.stop()
    assert re.search(
        # the webinar, its form, its approval setting, 25 registrations, the check of every row
        r"Sandbox stopped after 29 calls \(0 answered 429\); it held 25 registrants",
        stopped,
    )


def test_jitter_spreads_answers_over_latency_plus_or_minus_jitter(
    run_virtual: Callable[[Any], Any],
) -> None:
    sandbox = Sandbox(SandboxConfig(rate=0, latency=0.25, jitter=0.1, tokens=(TOKEN,), seed=3))
    request = Request("GET", BASE, AUTH, b"")

    async def timed() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await sandbox.handle(request)
        return loop.time() - started

    async def all_of_them() -> list[float]:
        return list(await asyncio.gather(*(timed() for _ in range(200))))

    delays = run_virtual(all_of_them())
    assert all(0.15 <= delay <= 0.35 for delay in delays)
    # spread across the range, not fixed
    assert min(delays) < 0.17
    assert max(delays) > 0.33
    assert sum(delays) / len(delays) == pytest.approx(0.25, abs=0.015)


@posix_only
@pytest.mark.parametrize(
    "numbers",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGTERM, signal.SIGINT, signal.SIGINT]],
    ids=["ctrl-c", "sigterm", "sigterm-then-ctrl-c-twice"],
)
def test_sandbox_started_in_the_background_of_a_script_stops_with_its_summary(
    numbers: list[int],
) -> None:
    """A shell gives a background job SIGINT ignored; the sandbox still stops on it (and on
    SIGTERM), saying what it held, instead of running on or dying without a word; signals
    while it closes change nothing."""
    process = subprocess.Popen(
        command("sandbox", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("Sandbox API on http://127.0.0.1:")
        for number in numbers:
            process.send_signal(number)
            time.sleep(0.001)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert "Sandbox stopped after 0 calls (0 answered 429); it held 0 registrants." in err
    assert "Traceback" not in err
    assert process.returncode == 0
