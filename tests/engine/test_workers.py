"""The worker pool on virtual time: pacing, back-off, AIMD, reconciliation, stopping."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import functools
import json
import math
import random
import sqlite3
import time
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from importer.engine import directory as engine_directory
from importer.engine.canceller import Canceller, Settled, Target
from importer.engine.directory import Directory
from importer.engine.journal import Journal, State
from importer.engine.registrar import OnResult, Registrar
from importer.errors import (
    ApiUnavailable,
    AuthError,
    Interrupted,
    LimitReached,
    RateLimited,
    WebinarNotFound,
)
from importer.goto import provenance
from importer.goto.client import G2WClient
from importer.goto.connection import Access, Connection
from importer.goto.credentials import Credentials
from importer.goto.oauth import RefreshingAuth
from importer.goto.session import HEADROOM, ApiSession, Pacer, RetryPolicy, default_concurrency
from importer.jobs import register as registering
from importer.jobs.common import Options
from importer.model import Cancellation, Registrant, Result, Status
from importer.report.outcome import Outcome, build
from importer.sandbox import ORGANIZER_KEY, PREFIX, WEBINAR_KEY, Sandbox, SandboxTransport
from tests.helpers import TOKEN, api, people, sandbox_client, virtual_sandbox, write_csv

Run = Callable[[Coroutine[Any, Any, Any]], Any]


def registrants(count: int, start: int = 0) -> list[Registrant]:
    return [
        Registrant(i + 2, f"First{i}", f"Last{i}", f"person{i}@example.com")
        for i in range(start, start + count)
    ]


class Recorder(SandboxTransport):
    """Notes the virtual time and request line of every call that reaches the sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self.calls: list[tuple[float, str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        now = asyncio.get_running_loop().time()
        self.calls.append((now, request.method, request.url.path))
        return await super().handle_async_request(request)

    def creates(self) -> list[float]:
        return [t for t, method, _ in self.calls if method == "POST"]

    def lists(self) -> int:
        return sum(
            1 for _, method, path in self.calls if method == "GET" and path.endswith("/registrants")
        )


def session(rate: float = 10.0, **options: Any) -> ApiSession:
    """A session as a run makes one, with a seeded random source."""
    return ApiSession(rate=rate, rng=random.Random(1), **options)


async def send(
    sandbox: Sandbox,
    people: list[Registrant],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    read_timeout: float = 30.0,
    rate: float = 10.0,
    concurrency: int | None = None,
    **options: Any,
) -> tuple[dict[int, Result], ApiSession, float]:
    """Run a Registrar against ``sandbox``; return results by line, the session and the time."""
    results: dict[int, Result] = {}
    loop = asyncio.get_running_loop()
    async with sandbox_client(sandbox, timeout=read_timeout, transport=transport) as http:
        shared = session(rate, **options)
        workers = concurrency or default_concurrency(rate)
        registrar = Registrar(shared, api(http, sandbox), concurrency=workers)
        started = loop.time()
        await registrar.run(people, lambda _, r: results.__setitem__(r.line, r))
        return results, shared, loop.time() - started


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def registered_once(sandbox: Sandbox, people: list[Registrant]) -> None:
    counts = collections.Counter(entry["email"] for entry in sandbox.registrants())
    assert {p.email for p in people} == set(counts)
    assert max(counts.values()) == 1


def test_calls_are_spaced_just_under_the_rate(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    recorder = Recorder(sandbox)
    people = registrants(200)
    results, outcome, elapsed = run_virtual(send(sandbox, people, transport=recorder, rate=10))
    assert [r.status for r in results.values()] == [Status.REGISTERED] * 200
    assert sandbox.stats["throttled"] == 0
    assert max_in_any_second(recorder.creates()) <= 10
    ideal = 199 / (10 * HEADROOM)
    assert ideal <= elapsed <= ideal + 0.5
    assert outcome.calls == 200


def test_a_timer_that_fires_late_costs_the_pace_nothing(run_virtual: Run) -> None:
    """Timers fire a little late (epoll rounds its wait up to the millisecond): each slot is
    spaced from the one before as scheduled, so the lateness does not add up."""

    async def go() -> list[float]:
        loop = asyncio.get_running_loop()
        on_time = loop.call_at
        late = functools.partial(lambda when, *args, **kw: on_time(when + 0.003, *args, **kw))
        loop.call_at = late  # type: ignore[method-assign]
        pacer = Pacer(100)
        stop = asyncio.Event()
        given: list[float] = []

        async def call() -> None:
            for _ in range(25):
                assert await pacer.acquire(stop)
                given.append(loop.time())

        await asyncio.gather(*(call() for _ in range(4)))
        return given

    given = run_virtual(go())
    assert len(given) == 100
    assert given[-1] - given[0] == pytest.approx(99 / (100 * HEADROOM), abs=0.01)


def test_keys_and_join_urls_come_from_the_server(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0)
    people = registrants(30)
    results, _, _ = run_virtual(send(sandbox, people))
    by_email = {entry["email"]: entry for entry in sandbox.registrants()}
    for person in people:
        entry, result = by_email[person.email], results[person.line]
        assert result.registrant_key == entry["registrantKey"]
        assert len(result.registrant_key) == 19
        assert result.join_url == entry["joinUrl"]


def test_pool_slows_down_when_the_api_limit_is_lower_than_the_rate(run_virtual: Run) -> None:
    # The sandbox allows 4 calls a second; the pool is told 10 and must learn from 429s.
    sandbox = virtual_sandbox(rate=4, latency=0.2)
    people = registrants(200)
    results, outcome, elapsed = run_virtual(send(sandbox, people, rate=10))
    assert all(r.status is Status.REGISTERED for r in results.values())
    registered_once(sandbox, people)
    # Holding 9.7/s against a 4/s limit would draw a 429 for more than half of all calls.
    assert outcome.throttled < 100  # a fixed pace draws about 290 here
    assert elapsed > 200 / 10


def test_server_errors_and_spurious_429s_are_retried(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0, error_rate=0.2, throttle_rate=0.1, seed=3)
    people = registrants(150)
    results, outcome, _ = run_virtual(send(sandbox, people, rate=50))
    assert all(r.status is Status.REGISTERED for r in results.values())
    registered_once(sandbox, people)
    assert outcome.retries >= sandbox.stats["errors"] + sandbox.stats["throttled"] > 0


def test_lost_answers_are_reconciled_not_sent_twice(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0, drop_rate=0.1, dedupe=False, seed=5)
    recorder = Recorder(sandbox)
    people = registrants(300)
    results, _, _ = run_virtual(send(sandbox, people, transport=recorder, rate=50))
    assert sandbox.stats["dropped"] > 10
    registered_once(sandbox, people)
    assert all(r.status is Status.REGISTERED for r in results.values())
    by_email = {entry["email"]: entry["registrantKey"] for entry in sandbox.registrants()}
    assert {results[p.line].registrant_key for p in people} == set(by_email.values())
    assert recorder.lists() >= 1


def test_answers_slower_than_the_timeout_are_reconciled(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0, slow_rate=0.1, slow_seconds=60, dedupe=False, seed=9)
    people = registrants(120)
    results, _, _ = run_virtual(send(sandbox, people, rate=50, read_timeout=5.0))
    assert sandbox.stats["slow"] > 3
    registered_once(sandbox, people)
    assert all(r.status is Status.REGISTERED for r in results.values())


@pytest.mark.parametrize("conflict_keys", [False, True])
def test_people_already_registered_get_their_existing_keys(
    run_virtual: Run, conflict_keys: bool
) -> None:
    sandbox = virtual_sandbox(rate=0, conflict_keys=conflict_keys)
    people = registrants(20)
    for i in range(450):  # more than two pages of the registrant list
        sandbox.add_registrant(
            {"firstName": "X", "lastName": "Y", "email": f"other{i}@example.com"}
        )
    existing = {p.email: sandbox.add_registrant(p.body()) for p in people[:5]}
    recorder = Recorder(sandbox)
    results, _, _ = run_virtual(send(sandbox, people, transport=recorder, rate=50))
    for person in people[:5]:
        result = results[person.line]
        assert result.status is Status.ALREADY_REGISTERED
        assert result.registrant_key == existing[person.email]["registrantKey"]
        assert result.join_url == existing[person.email]["joinUrl"]
    assert all(results[p.line].status is Status.REGISTERED for p in people[5:])
    # with keys or without, a 409 does not say whether the organizer declined the person:
    # the list is read once for all of them (455 people, three pages)
    assert recorder.lists() == 3


def test_expired_token_stops_the_run_and_leaves_rows_pending(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0, latency=0.1, token_calls=25)
    recorder = Recorder(sandbox)
    people = registrants(100)
    results, outcome, _ = run_virtual(
        send(sandbox, people, transport=recorder, rate=20, concurrency=8)
    )
    assert isinstance(outcome.stopped, AuthError)
    assert len(results) == 25
    assert len(sandbox.registrants()) == 25
    # after the first refusal, only calls already under way may follow
    assert len(recorder.creates()) <= 25 + 8


def test_unknown_webinar_stops_the_run(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0)

    async def go() -> Any:
        async with sandbox_client(sandbox) as http:
            client = G2WClient(http, sandbox.organizer_key, "1234567890123456789")
            shared = session(50)
            registrar = Registrar(shared, client, concurrency=default_concurrency(50))
            await registrar.run(registrants(10), lambda _, r: None)
            return shared

    outcome = run_virtual(go())
    assert isinstance(outcome.stopped, WebinarNotFound)
    assert outcome.calls <= default_concurrency(50)


def mock_api(handler: Callable[[httpx.Request, int], httpx.Response]) -> httpx.MockTransport:
    """A MockTransport whose handler also receives how often this e-mail was sent before.

    The registrant list it serves is empty: nobody the handler answered got registered.
    """
    seen: collections.Counter[str] = collections.Counter()

    def respond(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=[])
        address = json.loads(request.content)["email"]
        seen[address] += 1
        return handler(request, seen[address])

    return httpx.MockTransport(respond)


def created(request: httpx.Request) -> httpx.Response:
    """A 201 with a key of the person's own (GoTo never gives one key to two people)."""
    key = 9_000_000_000_000_000_000 + zlib.crc32(request.content)
    return httpx.Response(201, json={"registrantKey": key, "joinUrl": f"https://j/{key}"})


def test_a_rejected_row_fails_alone(run_virtual: Run) -> None:
    def handler(request: httpx.Request, attempt: int) -> httpx.Response:
        if b"person3@" in request.content:
            return httpx.Response(400, json={"errorCode": "X", "description": "Invalid phone"})
        return created(request)

    results, _, _ = run_virtual(send(Sandbox(), registrants(10), transport=mock_api(handler)))
    assert results[5].status is Status.FAILED
    assert results[5].error == "GoTo refused this row: Invalid phone"
    assert sum(r.status is Status.REGISTERED for r in results.values()) == 9


def test_retry_after_is_honoured(run_virtual: Run) -> None:
    times: list[float] = []

    def handler(request: httpx.Request, attempt: int) -> httpx.Response:
        times.append(asyncio.get_running_loop().time())
        if attempt == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return created(request)

    results, _, _ = run_virtual(send(Sandbox(), registrants(1), transport=mock_api(handler)))
    assert results[2].status is Status.REGISTERED
    assert times[1] - times[0] >= 7.0


def test_a_row_that_keeps_failing_gives_up_with_the_reason(run_virtual: Run) -> None:
    attempts: list[int] = []

    def handler(request: httpx.Request, attempt: int) -> httpx.Response:
        attempts.append(attempt)
        return httpx.Response(503, text="<html>down</html>")

    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=4.0, max_wait=100.0)
    results, _, elapsed = run_virtual(
        send(Sandbox(), registrants(1), transport=mock_api(handler), policy=policy)
    )
    assert results[2].status is Status.FAILED
    assert results[2].error is not None
    assert results[2].error.startswith("gave up after 5 attempts: the API failed (HTTP 503")
    assert len(attempts) == 5
    assert elapsed <= 1 + 2 + 4 + 4 + 1


def test_total_back_off_is_bounded(run_virtual: Run) -> None:
    def handler(request: httpx.Request, attempt: int) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "40"})

    policy = RetryPolicy(attempts=100, max_wait=100.0)
    results, _, elapsed = run_virtual(
        send(
            Sandbox(),
            registrants(1),
            transport=mock_api(handler),
            policy=policy,
            give_up_after=1000,
        )
    )
    assert results[2].status is Status.FAILED
    assert elapsed <= 100.0 + 1


def test_endless_429s_stop_the_run_resumably(run_virtual: Run) -> None:
    def handler(request: httpx.Request, attempt: int) -> httpx.Response:
        return httpx.Response(429)

    results, outcome, elapsed = run_virtual(
        send(Sandbox(), registrants(30), transport=mock_api(handler), give_up_after=60)
    )
    assert isinstance(outcome.stopped, LimitReached)
    assert "answered only 429" in str(outcome.stopped)
    assert results == {}  # every row stays pending
    assert 60 <= elapsed <= 60 + 31  # at most one more back-off after the limit


def test_max_calls_stops_the_run_resumably(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0)
    results, outcome, _ = run_virtual(send(sandbox, registrants(50), max_calls=20))
    assert isinstance(outcome.stopped, LimitReached)
    assert outcome.calls == 20
    assert len(results) == len(sandbox.registrants()) == 20


@given(attempt=st.integers(0, 40), seed=st.integers(0, 2**32))
def test_backoff_is_full_jitter_under_the_cap(attempt: int, seed: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0)
    delay = policy.backoff(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(30.0, 0.5 * 2**attempt)


def test_default_concurrency_reaches_the_rate_at_half_a_second_latency() -> None:
    for rate in (1, 10, 25, 100):
        assert default_concurrency(rate) * 2 >= rate  # 2 calls a second per worker at 0.5 s


def test_pacer_cuts_gently_for_a_lone_429_and_halves_in_a_storm(run_virtual: Run) -> None:
    async def go() -> list[float]:
        pacer = Pacer(10)
        seen = [pacer.rate]
        loop = asyncio.get_running_loop()
        for wait in (0.0, 0.2, 1.5, 1.5, 10.0):  # the 0.2 s one is the same burst: no cut
            await asyncio.sleep(wait)
            pacer.throttled()
            seen.append(pacer.rate)
        for _ in range(100):
            pacer.succeeded()
        seen.append(pacer.rate)
        assert loop.time() > 13
        return seen

    ceiling = 10 * HEADROOM
    seen = run_virtual(go())
    expected = [ceiling, ceiling * 0.9, ceiling * 0.9, ceiling * 0.45, ceiling * 0.225]
    assert seen[:5] == pytest.approx(expected)
    assert seen[5] == pytest.approx(seen[4] * 0.9)  # ten quiet seconds: jitter again
    assert seen[6] == pytest.approx(ceiling)


def test_pacer_never_goes_below_its_floor(run_virtual: Run) -> None:
    async def go() -> float:
        pacer = Pacer(10)
        for _ in range(30):
            pacer.throttled()
            await asyncio.sleep(1.0)
        return pacer.rate

    assert run_virtual(go()) == pytest.approx(0.5)


def test_a_caller_cancelled_while_waiting_for_a_slot_is_passed_over(run_virtual: Run) -> None:
    async def go() -> list[float]:
        pacer = Pacer(1.0 / HEADROOM)  # a slot a second
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        given: list[float] = []

        async def call() -> None:
            assert await pacer.acquire(stop)
            given.append(loop.time())

        first = asyncio.create_task(call())
        second = asyncio.create_task(call())
        third = asyncio.create_task(call())
        await asyncio.sleep(0.5)
        second.cancel()
        await asyncio.gather(first, third)
        fourth = asyncio.create_task(call())
        await fourth
        return given

    assert run_virtual(go()) == pytest.approx([0.0, 1.0, 2.0])


def test_a_stop_ends_the_wait_for_a_slot_at_once(run_virtual: Run) -> None:
    async def go() -> tuple[list[str], float]:
        session = ApiSession(rate=0.1)  # a slot every ten seconds
        loop = asyncio.get_running_loop()
        ended: list[str] = []

        async def call() -> None:
            try:
                await session.call(lambda: asyncio.sleep(0), what="reading")
                ended.append("called")
            except Interrupted:
                ended.append("stopped")

        first = asyncio.create_task(call())
        await asyncio.sleep(1)
        waiting = asyncio.create_task(call())
        await asyncio.sleep(1)
        session.stop()
        await asyncio.gather(first, waiting)
        return ended, loop.time()

    ended, at = run_virtual(go())
    assert ended == ["called", "stopped"]
    assert at == pytest.approx(2.0)  # not at the next slot, ten seconds after the first


def listing(pages: Callable[[int], httpx.Response]) -> httpx.MockTransport:
    """Registrant-list pages from ``pages``; creates answer 409 without a body."""

    def respond(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(409)
        return pages(int(request.url.params.get("page", "0")))

    return httpx.MockTransport(respond)


def full_page(page: int, style: str = "array", total: int | None = None) -> httpx.Response:
    entries = [
        {"registrantKey": 10**18 + page * 200 + i, "email": f"r{page}-{i}@example.com"}
        for i in range(200)
    ]
    if style == "data":
        return httpx.Response(200, json={"data": entries, "total": total})
    return httpx.Response(200, json=entries)


def test_a_list_claiming_more_than_a_webinar_holds_stops_the_run(run_virtual: Run) -> None:
    transport = listing(lambda page: full_page(page, "data", total=10**9))
    results, shared, _ = run_virtual(send(Sandbox(), registrants(2), transport=transport))
    assert isinstance(shared.stopped, ApiUnavailable)
    assert "claims 1,000,000,000 entries" in str(shared.stopped)
    assert results == {}  # pending: the list could not settle them
    assert shared.calls == 2 + 1  # two creates, one page


def test_a_list_that_never_ends_is_bounded_and_a_stop_ends_it(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_directory, "MAX_PAGES", 30)
    pages: list[int] = []

    def endless(page: int) -> httpx.Response:
        pages.append(page)
        return full_page(page)  # always 200 new people

    _, shared, _ = run_virtual(send(Sandbox(), registrants(1), transport=listing(endless)))
    assert isinstance(shared.stopped, ApiUnavailable)
    assert "did not end after 30 pages" in str(shared.stopped)
    assert len(pages) == 31

    async def stopped_midway() -> ApiSession:
        async with sandbox_client(Sandbox(), transport=listing(endless)) as http:
            shared = session(rate=100)  # a page every 10 ms (virtual time)
            directory = Directory(shared, api(http, Sandbox()))

            async def stop_soon() -> None:
                await asyncio.sleep(0.05)
                shared.stop()  # Ctrl-C

            stopper = asyncio.create_task(stop_soon())
            with pytest.raises(Interrupted):
                await directory.read()
            await stopper
            return shared

    pages.clear()
    shared = run_virtual(stopped_midway())
    assert len(pages) < 30  # the stop ended the reading at once


def test_a_201_without_a_join_url_is_completed_from_the_list(run_virtual: Run) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"registrantKey": 9_000_000_000_000_000_001})
        listed = [
            {
                "registrantKey": 9_000_000_000_000_000_001,
                "email": "person0@example.com",
                "joinUrl": "https://j/1",
                "status": "APPROVED",
            }
        ]
        return httpx.Response(200, json=listed)

    transport = httpx.MockTransport(respond)
    results, _, _ = run_virtual(send(Sandbox(), registrants(1), transport=transport))
    assert results[2] == Result(
        2, Status.REGISTERED, "9000000000000000001", "https://j/1", approval="APPROVED"
    )

    def nowhere(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"registrantKey": 9_000_000_000_000_000_001})
        return httpx.Response(200, json=[])

    results, _, _ = run_virtual(
        send(Sandbox(), registrants(1), transport=httpx.MockTransport(nowhere))
    )
    assert results[2].status is Status.REGISTERED
    assert results[2].error == "GoTo gave no join URL for this person; find it in GoTo Webinar"


# --- workers sized to the pace -----------------------------------------------------------------


class Busy(SandboxTransport):
    """Notes, by hundreds of rows registered, the most registrations under way at once and the
    most workers holding a row (under way, waiting for the pace, or settling)."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(sandbox)
        self.calls = self.rows = 0
        self.most_calls: collections.Counter[int] = collections.Counter()
        self.most_rows: collections.Counter[int] = collections.Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self._note()
        try:
            return await super().handle_async_request(request)
        finally:
            self.calls -= 1

    def _note(self) -> None:
        hundreds = self.sandbox.stats["created"] // 100
        self.most_calls[hundreds] = max(self.most_calls[hundreds], self.calls)
        self.most_rows[hundreds] = max(self.most_rows[hundreds], self.rows)

    def registrar(self, session: ApiSession, http: httpx.AsyncClient, most: int) -> Registrar:
        busy = self

        class Counted(Registrar):
            async def _send(self, registrant: Registrant, on_result: OnResult) -> Result | None:
                busy.rows += 1
                busy._note()
                try:
                    return await super()._send(registrant, on_result)
                finally:
                    busy.rows -= 1

        return Counted(session, api(http, self.sandbox), concurrency=most)

    def between(self, counts: collections.Counter[int], first: int, last: int) -> int:
        """The most while rows ``first`` to ``last`` were being registered."""
        return max(counts[hundreds] for hundreds in range(first // 100, last // 100))


async def send_counted(
    busy: Busy, people: list[Registrant], *, rate: float, most: int = 256
) -> tuple[int, float]:
    """Register ``people`` through ``busy``; how many were settled, and how long it took."""
    loop = asyncio.get_running_loop()
    settled = 0

    def count(_: Registrant, result: Result) -> None:
        nonlocal settled
        settled += result.status is Status.REGISTERED

    async with sandbox_client(busy.sandbox, transport=busy) as http:
        registrar = busy.registrar(session(rate), http, most)
        started = loop.time()
        await registrar.run(people, count)
        return settled, loop.time() - started


def test_workers_follow_the_rate_times_the_answer_time(run_virtual: Run) -> None:
    # 100 calls a second at 0.3 s an answer: 30 under way (Little's law), so about 47 workers
    # (with the margin for slower answers), not the 256 allowed
    sandbox = virtual_sandbox(rate=100, latency=0.3)
    busy = Busy(sandbox)
    settled, elapsed = run_virtual(send_counted(busy, registrants(1000), rate=100))
    assert settled == 1000
    assert sandbox.stats["throttled"] == 0
    # (from the 200th row on: the first workers were hired before any answer came)
    assert busy.between(busy.most_calls, 200, 1000) == 30
    assert 45 <= busy.between(busy.most_rows, 200, 1000) <= 48
    ideal = 999 / (100 * HEADROOM)
    assert ideal <= elapsed <= ideal + 1.0  # the pace held, but for the first answer's 0.3 s


def test_workers_grow_and_shrink_as_answers_slow_down_and_speed_up(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=100, latency=0.1)

    class Changing(Busy):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sandbox.config.latency = [0.1, 0.6, 0.2][sandbox.stats["created"] // 500]
            return await super().handle_async_request(request)

    busy = Changing(sandbox)
    settled, elapsed = run_virtual(send_counted(busy, registrants(1500), rate=100))
    assert settled == 1500
    # each time, once the answers of the time before are in: the calls Little's law says,
    # and half as many workers again and two
    for first, last, calls in ((200, 500, 10), (600, 1000, 60), (1100, 1500, 20)):
        assert calls <= busy.between(busy.most_calls, first, last) <= calls + 2
        workers = busy.between(busy.most_rows, first, last)
        assert calls * 1.5 <= workers <= calls * 1.5 + 4, (first, workers)
    assert elapsed <= 1499 / (100 * HEADROOM) + 1.5  # the pace held throughout


def test_cancelling_runs_on_the_same_engine_its_workers_follow_the_pace(
    run_virtual: Run, tmp_path: Path
) -> None:
    """The DELETE calls of cancel and undo take the engine registering takes: as many workers
    as the pace needs with the answer times seen (here about 47, as above), not one for each of
    the ``concurrency`` allowed."""
    sandbox = virtual_sandbox(rate=100, latency=0.3)
    listed = [sandbox.add_registrant(r.body()) for r in registrants(1000)]
    busy = Busy(sandbox)
    held = 0
    most: list[int] = []

    class Counted(Canceller):
        async def _send(self, target: Target, on_done: Callable[[Target, Settled], None]) -> Any:
            nonlocal held
            held += 1
            most.append(held)
            try:
                return await super()._send(target, on_done)
            finally:
                held -= 1

    targets = [
        Target(2 + i, entry["email"], str(entry["registrantKey"]), entry["joinUrl"])
        for i, entry in enumerate(listed)
    ]
    cancelled: list[Settled] = []

    async def cancel() -> float:
        loop = asyncio.get_running_loop()
        with Journal.open(
            tmp_path / "journal.sqlite3", organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY
        ) as journal:
            async with sandbox_client(sandbox, transport=busy) as http:
                canceller = Counted(session(100), api(http, sandbox), journal, concurrency=256)
                started = loop.time()
                await canceller.run(targets, lambda _, done: cancelled.append(done))
                return loop.time() - started

    elapsed = run_virtual(cancel())
    assert [done.status for done in cancelled] == [Cancellation.CANCELLED] * 1000
    assert sandbox.registrants() == []
    assert 45 <= max(most[200:]) <= 48  # workers sized to the pace, as registering's
    ideal = 999 / (100 * HEADROOM)
    assert ideal <= elapsed <= ideal + 1.0


def test_concurrency_caps_the_workers(run_virtual: Run) -> None:
    sandbox = virtual_sandbox(rate=0, latency=0.3)
    busy = Busy(sandbox)
    settled, elapsed = run_virtual(send_counted(busy, registrants(100), rate=100, most=5))
    assert settled == 100
    assert max(busy.most_calls.values()) == max(busy.most_rows.values()) == 5
    assert elapsed == pytest.approx(100 / 5 * 0.3, abs=0.5)  # five at a time, 0.3 s each


def test_workers_needed_follow_answers_and_count_calls_waiting_to_be_tried_again(
    run_virtual: Run,
) -> None:
    async def go() -> list[int]:
        shared = session(100)
        seen = [shared.workers(256)]
        for _ in range(3):  # answers of 0.2 s
            await shared.call(lambda: asyncio.sleep(0.2), what="reading")
        seen.append(shared.workers(256))
        refused: set[int] = set()

        async def once_429(n: int) -> None:
            await asyncio.sleep(0.2)
            if n not in refused:
                refused.add(n)
                raise RateLimited("429", retry_after=5.0)

        calls = [
            asyncio.create_task(shared.call(functools.partial(once_429, n), what="reading"))
            for n in range(3)
        ]
        await asyncio.sleep(1.0)  # all three wait for their next attempt
        seen += [shared.workers(256), shared.workers(10)]
        await asyncio.gather(*calls)
        seen.append(shared.workers(256))
        return seen

    first, steady, waiting, capped, after = run_virtual(go())
    assert first == math.ceil(99 * 1.0 * 1.5) + 2  # one second assumed before any answer
    assert steady == math.ceil(99 * 0.2 * 1.5) + 2
    assert waiting == math.ceil(99 * 0.9 * 0.2 * 1.5) + 2 + 3  # the lone 429 cut the pace
    assert capped == 10
    assert after < waiting


# --- the journal's batches ----------------------------------------------------------------------


def test_every_create_leaves_with_its_row_on_disk_as_sending(
    run_virtual: Run, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite3"
    sandbox = virtual_sandbox(rate=100, latency=0.3, drop_rate=0.02, seed=4)
    seen: list[str] = []

    class Checking(SandboxTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                address = json.loads(request.content)["email"]
                with contextlib.closing(sqlite3.connect(path)) as other:  # as a later run would
                    (state,) = other.execute(
                        "SELECT state FROM people WHERE email_key = ?", (address,)
                    ).fetchone()
                seen.append(state)
            return await super().handle_async_request(request)

    people = registrants(600)

    async def go() -> int:
        with Journal.open(path, organizer_key="1", webinar_key="2") as journal:
            async with sandbox_client(sandbox, transport=Checking(sandbox)) as http:
                client = api(http, sandbox)
                registrar = Registrar(session(100), client, journal=journal, concurrency=200)
                prepared = await registrar.prepare(people)
                await registrar.run(prepared.to_send, lambda _, __: None)
            return journal.batches

    batches = run_virtual(go())
    assert sandbox.stats["dropped"] > 5  # lost answers, settled from the registrant list
    assert len(seen) == 600
    assert set(seen) == {"sending"}
    assert batches < 600 / 2  # fewer commits than rows, let alone two a row
    with contextlib.closing(sqlite3.connect(path)) as other:
        states = collections.Counter(s for (s,) in other.execute("SELECT state FROM people"))
    assert states == {"registered": 600}


# --- the path to the first create ---------------------------------------------------------------


def run_import(
    run_virtual: Run,
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    transport: Recorder,
    *,
    verify: bool = True,
    draft_report: bool = False,
) -> Outcome:
    """``registering.register`` for 20 people of ``people()`` on virtual time, through
    ``transport``."""

    @contextlib.asynccontextmanager
    async def connected(access: Access, table: object = None) -> AsyncIterator[Connection]:
        auth = RefreshingAuth(Credentials(TOKEN), None)
        url = f"http://sandbox.invalid{PREFIX}"
        yield Connection(url, ORGANIZER_KEY, auth, transport=transport, journal_folder=folder)

    monkeypatch.setattr(registering, "open_connection", connected)
    source = write_csv(folder / "guests.csv", people(20))
    options = Options(
        webinar_keys=(WEBINAR_KEY,),
        journal=folder / "journal.sqlite3",
        verify=verify,
        draft_report=draft_report,
    )
    outcome: Outcome = run_virtual(registering.register(source, Access(), options))
    return outcome


def test_a_first_run_sends_without_reading_the_registrant_list(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    recorder = Recorder(sandbox)
    outcome = run_import(run_virtual, monkeypatch, tmp_path, recorder, verify=False)
    assert outcome.counts == {Status.REGISTERED: 20}
    assert recorder.lists() == 0
    gets = [t for t, method, _ in recorder.calls if method == "GET"]
    # the webinar, its form and the organizer's webinars (for the approval), side by side
    assert len(gets) == 3
    assert recorder.creates()[0] == pytest.approx(0.3 + 0.202, abs=0.01)  # once all answered


def test_once_sending_ends_one_list_read_checks_every_row(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    recorder = Recorder(sandbox)
    outcome = run_import(run_virtual, monkeypatch, tmp_path, recorder)
    assert outcome.counts == {Status.REGISTERED: 20}
    assert recorder.lists() == 1
    last_create = recorder.creates()[-1]
    assert [t for t, m, p in recorder.calls if p.endswith("/registrants") and m == "GET"] > [
        last_create
    ]
    assert outcome.webinars[0].checked
    assert outcome.webinars[0].corrected == 0


def test_a_run_stopped_at_the_look_ups_still_reports_what_earlier_runs_settled(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    people = registrants(20)
    with Journal.open(
        tmp_path / "journal.sqlite3", organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY
    ) as journal:  # an earlier run settled the first, and was killed while sending the second
        journal.admit(people[:2])
        entry = sandbox.add_registrant(people[0].body())
        key, url = str(entry["registrantKey"]), entry["joinUrl"]
        journal.settle(people[0], Result.settled(2, Status.REGISTERED, key, url, None))
        journal.sending(people[1], 0.0)

    class ListDown(Recorder):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and request.url.path.endswith("/registrants"):
                return httpx.Response(503, request=request)
            return await super().handle_async_request(request)

    outcome = run_import(run_virtual, monkeypatch, tmp_path, ListDown(sandbox))
    assert outcome.stopped is not None  # the list it needed before sending never came
    first, second = outcome.rows[:2]
    assert (first.status, first.registrant_key, first.join_url) == (Status.REGISTERED, key, url)
    assert second.status is Status.PENDING  # its outcome is still open
    assert {row.status for row in outcome.rows[2:]} == {Status.PENDING}
    assert sandbox.stats["created"] == 1  # nothing sent


def test_the_reports_rows_are_written_while_the_check_reads_the_list(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    outcome = run_import(run_virtual, monkeypatch, tmp_path, Recorder(sandbox), draft_report=True)
    assert outcome.webinars[0].checked
    assert outcome.draft is not None
    assert outcome.draft.fits(build(outcome))
    written = outcome.write(tmp_path / "guests-joinurls.xlsx")
    sheet = load_workbook(written)["Registrants"]
    assert [row[0] for row in sheet.iter_rows(min_row=2, max_col=8, values_only=True)] == list(
        range(2, 22)
    )
    (tmp_path / "again").mkdir()
    unchecked = run_import(
        run_virtual,
        monkeypatch,
        tmp_path / "again",
        Recorder(virtual_sandbox()),
        verify=False,
        draft_report=True,
    )
    assert unchecked.draft is None  # no check to wait for: the report is written at the end


def test_a_journal_with_rows_of_unknown_outcome_reads_the_list_beside_the_look_ups(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    with Journal.open(
        tmp_path / "journal.sqlite3", organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY
    ) as journal:  # an earlier run was killed with two registrations under way
        sent = [
            Registrant(2 + i, f"First{i}", f"Last{i}", f"person{i}@example.com") for i in (0, 1)
        ]
        journal.admit(sent)
        for person in sent:
            journal.sending(person, 0.0)  # the clocks agreed, as measured then
    arrived = sandbox.add_registrant(sent[0].body())  # the first one went through
    recorder = Recorder(sandbox)
    outcome = run_import(run_virtual, monkeypatch, tmp_path, recorder)
    assert outcome.counts == {Status.REGISTERED: 20}
    assert outcome.rows[0].registrant_key == arrived["registrantKey"]
    assert recorder.lists() == 2  # beside the look-ups, and the check once sending ended
    times = [t for t, _, _ in recorder.calls]
    assert max(times[:3]) < 0.3  # the webinar, its form and the list all asked before any answer
    assert len(recorder.creates()) == 19  # the first is not sent again
    registered_once(sandbox, registrants(20))


@pytest.mark.parametrize(
    ("style", "asked", "answers"),
    [
        # the pages 1,000 people fill and the page that shows the end (empty here), together
        ("array", 6, 1),
        ("data", 6, 1),
        # the spec's shape ignores "limit" (its pages are 20): the first page asked again for
        # full pages, then the other four
        ("spec", 6 + 1 + 4, 3),
    ],
)
def test_the_pages_of_a_long_list_are_asked_for_side_by_side(
    run_virtual: Run, style: str, asked: int, answers: int
) -> None:
    sandbox = virtual_sandbox(rate=0, latency=0.3, list_style=style)
    for first, last, email in people(1000)[1:]:
        sandbox.add_registrant({"firstName": first, "lastName": last, "email": email})
    recorder = Recorder(sandbox)

    async def read() -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        async with sandbox_client(sandbox, transport=recorder) as http:
            directory = Directory(session(rate=100), api(http, sandbox), expected=1000)
            started = loop.time()
            found = await directory.read()
            return len(found), loop.time() - started

    found, took = run_virtual(read())
    assert found == 1000
    assert recorder.lists() == asked
    assert answers * 0.3 <= took < answers * 0.3 + 0.1  # each round of pages takes one answer


def test_a_registration_made_while_the_call_waited_out_429s_is_not_claimed(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What counts is when the call that could register the person left, not the first try."""
    wall = time.time()

    def now() -> float:  # this computer's clock, moving with the virtual loop
        return wall + asyncio.get_running_loop().time()

    monkeypatch.setattr(provenance, "now", now)
    elsewhere: list[dict[str, object]] = []

    def respond(request: httpx.Request) -> httpx.Response:
        date = {"Date": formatdate(now(), usegmt=True)}
        if request.method == "GET":
            return httpx.Response(200, json=elsewhere, headers=date)
        if not elsewhere:  # refused; meanwhile the person registers on GoTo's own page
            stamp = dt.datetime.fromtimestamp(now(), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            elsewhere.append(
                {
                    "registrantKey": 7 * 10**18,
                    "email": "person0@example.com",
                    "joinUrl": "https://j/7",
                    "status": "APPROVED",
                    "registrationDate": stamp,
                }
            )
            return httpx.Response(429, headers={"Retry-After": "10", **date})
        return httpx.Response(504, headers=date)  # the attempt after the wait: no answer

    transport = httpx.MockTransport(respond)
    results, _, _ = run_virtual(send(Sandbox(), registrants(1), transport=transport))
    assert results[2].status is Status.ALREADY_REGISTERED
    assert results[2].registrant_key == str(7 * 10**18)


def test_an_answer_that_strays_across_webinars_is_refused(run_virtual: Run) -> None:
    other = "4617712963571298411"
    truth = {WEBINAR_KEY: 5 * 10**18 + 1, other: 5 * 10**18 + 2}

    def respond(request: httpx.Request) -> httpx.Response:
        webinar = other if other in request.url.path else WEBINAR_KEY
        if request.method == "GET":
            entry = {"registrantKey": truth[webinar], "email": "person0@example.com"}
            return httpx.Response(200, json=[{**entry, "joinUrl": f"https://j/{webinar}"}])
        # both webinars answer with the first webinar's registration
        key = truth[WEBINAR_KEY]
        return httpx.Response(201, json={"registrantKey": key, "joinUrl": f"https://j/{key}"})

    async def both() -> tuple[list[Result], int]:
        owners: dict[str, tuple[str, str]] = {}
        got: list[Result] = []
        async with sandbox_client(Sandbox(), transport=httpx.MockTransport(respond)) as http:
            shared = session(rate=100)
            second = None
            for key in (WEBINAR_KEY, other):
                registrar = Registrar(
                    shared, G2WClient(http, ORGANIZER_KEY, key), owners=owners, settle_delay=0
                )
                await registrar.run(registrants(1), lambda _, r: got.append(r))
                second = registrar
            assert second is not None
            return got, second.strays

    got, strays = run_virtual(both())
    assert strays == 1
    assert [r.registrant_key for r in got] == [str(truth[WEBINAR_KEY]), str(truth[other])]


def test_a_stopped_run_leaves_sending_only_the_rows_whose_call_left(
    run_virtual: Run, tmp_path: Path
) -> None:
    sandbox = virtual_sandbox(rate=10, latency=0.3)
    people_ = registrants(40)

    async def go() -> dict[str, State]:
        async with sandbox_client(sandbox) as http:
            shared = session(rate=10)
            path = tmp_path / "j.sqlite3"
            with Journal.open(path, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as j:
                j.admit(people_)
                registrar = Registrar(shared, api(http, sandbox), journal=j, concurrency=8)
                loop = asyncio.get_running_loop()
                loop.call_later(1.0, shared.stop)  # Ctrl-C, with rows waiting for their turn
                await registrar.run(people_, lambda *_: None)
                return {key: entry.state for key, entry in j.entries().items()}

    states = run_virtual(go())
    posted = {entry["email"] for entry in sandbox.registrants()}
    assert {key for key, state in states.items() if state == State.SENDING} <= posted
    assert sum(state == State.TODO for state in states.values()) == 40 - len(posted)


def test_a_call_refused_with_429_leaves_its_row_todo_while_it_waits(
    run_virtual: Run, tmp_path: Path
) -> None:
    def respond(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(429, headers={"Retry-After": "30"})
        return httpx.Response(200, json=[])

    async def go() -> State:
        async with sandbox_client(Sandbox(), transport=httpx.MockTransport(respond)) as http:
            shared = session(rate=10)
            path = tmp_path / "j.sqlite3"
            with Journal.open(path, organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY) as j:
                people_ = registrants(1)
                j.admit(people_)
                registrar = Registrar(shared, api(http, Sandbox()), journal=j)
                running = asyncio.create_task(registrar.run(people_, lambda *_: None))
                await asyncio.sleep(5)  # within the wait: a kill now leaves what is on disk
                with sqlite3.connect(path) as other:
                    (state,) = other.execute("SELECT state FROM people").fetchone()
                other.close()
                shared.stop()
                await running
                return State(state)

    assert run_virtual(go()) is State.TODO
