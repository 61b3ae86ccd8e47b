"""The run's HTTP connections: one lane per request under way, lent and given back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from importer import connection
from importer.connection import Lanes

from .conftest import TOKEN, ThreadedServer

Run = Callable[[Coroutine[Any, Any, Any]], Any]


class Counted:
    """Makes lanes that answer after ``delay`` seconds; counts the lanes and their requests."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.lanes = 0
        self.under_way = 0
        self.most = 0

    def __call__(self) -> httpx.AsyncBaseTransport:
        self.lanes += 1
        lane = self.lanes

        async def answer(request: httpx.Request) -> httpx.Response:
            self.under_way += 1
            self.most = max(self.most, self.under_way)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.under_way -= 1
            return httpx.Response(200, json={"lane": lane})

        return httpx.MockTransport(answer)


def client(lanes: Lanes, pool: float | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url="http://api.invalid", transport=lanes, timeout=httpx.Timeout(5.0, pool=pool)
    )


def test_no_more_lanes_than_requests_under_way_at_once(run_virtual: Run) -> None:
    made = Counted()

    async def go() -> list[int]:
        async with client(Lanes(8, make=made)) as http:
            used = []
            for burst in (3, 5, 2):
                answers = await asyncio.gather(*(http.get("/x") for _ in range(burst)))
                used += [answer.json()["lane"] for answer in answers]
            return used

    used = run_virtual(go())
    assert made.lanes == 5  # the largest burst; the others reused lanes given back
    assert sorted(set(used)) == [1, 2, 3, 4, 5]


def test_requests_beyond_the_size_wait_for_a_lane(run_virtual: Run) -> None:
    made = Counted(delay=1.0)

    async def go() -> float:
        loop = asyncio.get_running_loop()
        async with client(Lanes(2, make=made)) as http:
            started = loop.time()
            answers = await asyncio.gather(*(http.get("/x") for _ in range(6)))
            assert all(answer.status_code == 200 for answer in answers)
            return loop.time() - started

    assert run_virtual(go()) == pytest.approx(3.0)  # two at a time, a second each
    assert made.lanes == 2
    assert made.most == 2


def test_a_lane_comes_back_only_when_the_answer_is_closed(run_virtual: Run) -> None:
    made = Counted(delay=0.0)

    async def go() -> None:
        async with client(Lanes(1, make=made), pool=2.0) as http:
            request = http.build_request("GET", "/x")
            held = await http.send(request, stream=True)  # the body not read: the lane is lent
            with pytest.raises(httpx.PoolTimeout):
                await http.get("/x")
            await held.aclose()
            assert (await http.get("/x")).status_code == 200

    run_virtual(go())
    assert made.lanes == 1


def test_a_failed_or_cancelled_request_gives_its_lane_back(run_virtual: Run) -> None:
    calls = 0

    def make() -> httpx.AsyncBaseTransport:
        async def answer(request: httpx.Request) -> httpx.Response:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise httpx.ConnectError("refused", request=request)
            await asyncio.sleep(10)
            return httpx.Response(200)

        return httpx.MockTransport(answer)

    async def go() -> None:
        lanes = Lanes(1, make=make)
        async with client(lanes, pool=1.0) as http:
            with pytest.raises(httpx.ConnectError):
                await http.get("/x")
            slow = asyncio.create_task(http.get("/x"))
            await asyncio.sleep(1)
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            assert (await http.get("/x")).status_code == 200  # not a PoolTimeout

    run_virtual(go())


def test_lanes_keep_their_connections_alive_over_a_real_socket(
    loopback_sandbox: Callable[..., ThreadedServer],
) -> None:
    server = loopback_sandbox(rate=0, latency=0.05)
    path = f"{server.api_url}/organizers/{server.sandbox.organizer_key}/webinars"
    query = {"fromTime": "2020-01-01T00:00:00Z", "toTime": "2040-01-01T00:00:00Z"}

    async def go() -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=Lanes(4), headers=headers) as http:
            for _ in range(3):
                answers = await asyncio.gather(*(http.get(path, params=query) for _ in range(4)))
                assert [answer.status_code for answer in answers] == [200] * 4

    asyncio.run(go())
    assert server.sandbox.stats["calls"] == 12
    assert server.server.connections == 4  # four lanes, each kept alive


def test_an_answer_larger_than_any_the_api_gives_is_not_read_whole(
    run_virtual: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "MAX_ANSWER", 1000)

    def make() -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 5000))

    async def go() -> None:
        async with client(Lanes(1, make=make)) as http:
            with pytest.raises(httpx.RemoteProtocolError, match="larger than"):
                await http.get("/x")
            monkeypatch.setattr(connection, "MAX_ANSWER", 10_000)
            assert len((await http.get("/x")).content) == 5000  # and the lane came back

    run_virtual(go())
