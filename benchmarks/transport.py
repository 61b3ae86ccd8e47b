"""CPU a request of the HTTP clients a run could use, side by side, from one run.

    python benchmarks/transport.py
    python benchmarks/transport.py --requests 4000 --in-flight 40 --latency 0.05 --repeat 2

A server of this script's own runs in a process of its own on 127.0.0.1 (so its CPU is not
counted): it reads each POST whole and answers it ``--latency`` seconds later with a small JSON
body, as GoTo answers a registration, over kept-alive connections. In this process each client
then sends ``--requests`` POSTs with ``--in-flight`` under way at once, after a warm-up round
that opens its connections; its CPU a request is this process's CPU time (user and system,
every thread) over the requests:

* httpx with its default transport (httpcore);
* httpx over httpx-aiohttp's ``AiohttpTransport``, as that package makes it;
* aiohttp alone (``ClientSession.post``, the answer read whole);
* the run's own client: ``Connection.http_client`` as a run builds it (httpx over the wire of
  ``importer.goto.wire``, with the token, the headers and the answer read whole).

With ``--repeat N`` each is measured N times, in turn, and the range is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from multiprocessing.connection import Connection as Pipe
from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport

import importer
from importer.goto.connection import Access
from importer.jobs.common import open_connection

TOKEN = "benchmark-token"
BODY = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "email": "ada.lovelace@example.com",
    "organization": "Analytical Engines Ltd",
    "source": "g2w-import",
}
ANSWER = json.dumps(
    {"registrantKey": 8123456789012345678, "joinUrl": "https://global.gotowebinar.com/join/1/2"}
).encode()
PATH = "/G2W/rest/v2/organizers/1/webinars/2/registrants"


# --- the server, in a process of its own ------------------------------------------------------


def serve(latency: float, ready: Pipe) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER)
                )
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=1024)
        ready.send(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the clients --------------------------------------------------------------------------------


Send = Callable[[], Awaitable[int]]


async def hammer(send: Send, requests: int, in_flight: int) -> float:
    """CPU seconds this process spent sending ``requests`` with ``in_flight`` at once."""
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status = await send()
            assert status == 201, status

    left = in_flight * 2  # warm-up: every connection opened, nothing measured
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    left = requests
    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return time.process_time() - started


async def with_httpx(url: str, requests: int, in_flight: int, *, aiohttp_wire: bool) -> float:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    transport = AiohttpTransport(limits=limits) if aiohttp_wire else None
    async with httpx.AsyncClient(limits=limits, transport=transport, timeout=30) as http:
        target = httpx.URL(url + PATH)

        async def send() -> int:
            return (await http.post(target, json=BODY)).status_code

        return await hammer(send, requests, in_flight)


async def with_aiohttp(url: str, requests: int, in_flight: int) -> float:
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        target = yarl.URL(url + PATH)

        async def send() -> int:
            async with session.post(target, json=BODY) as answer:
                await answer.read()
                return answer.status

        return await hammer(send, requests, in_flight)


async def with_the_runs_client(url: str, requests: int, in_flight: int) -> float:
    access = Access(api_url=url + "/G2W/rest/v2", token=TOKEN, organizer_key="1")
    async with contextlib.AsyncExitStack() as stack:
        connection = await stack.enter_async_context(open_connection(access))
        http = await stack.enter_async_context(connection.http_client(in_flight, 30.0))

        target = httpx.URL(url + PATH)  # the API client keeps its addresses parsed, so here too

        async def send() -> int:
            return (await http.post(target, json=BODY)).status_code

        return await hammer(send, requests, in_flight)


CLIENTS: list[tuple[str, Callable[[str, int, int], Coroutine[Any, Any, float]]]] = [
    (
        "httpx, default transport (httpcore)",
        lambda url, n, k: with_httpx(url, n, k, aiohttp_wire=False),
    ),
    (
        "httpx over httpx-aiohttp (AiohttpTransport)",
        lambda url, n, k: with_httpx(url, n, k, aiohttp_wire=True),
    ),
    ("aiohttp alone", with_aiohttp),
    ("the run's own client (Connection.http_client)", with_the_runs_client),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--in-flight", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=1)
    options = parser.parse_args()
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)

    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; g2w-import "
        f"{importer.__version__}, httpx {httpx.__version__}, aiohttp {aiohttp.__version__}"
    )
    print(
        f"{options.requests:,} POSTs, {options.in_flight} in flight, "
        f"{options.latency * 1000:g} ms latency, server in a process of its own"
    )
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(options.latency, theirs), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ours.recv()}"
        seconds: dict[str, list[float]] = {name: [] for name, _ in CLIENTS}
        for _ in range(options.repeat):
            for name, client in CLIENTS:
                cpu = asyncio.run(client(url, options.requests, options.in_flight))
                seconds[name].append(cpu)
    finally:
        server.terminate()
        server.join()
    print()
    print("| client | CPU a request |")
    print("|---|---|")
    for name, spent in seconds.items():
        low, high = (min(spent), max(spent))
        each = f"{low / options.requests * 1000:.2f}"
        if options.repeat > 1:
            each += f"\N{EN DASH}{high / options.requests * 1000:.2f}"
        print(f"| {name} | {each} ms |")


if __name__ == "__main__":
    main()
