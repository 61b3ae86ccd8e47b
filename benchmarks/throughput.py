"""Registration throughput against the sandbox served on loopback by a separate process.

    python benchmarks/throughput.py --rate 10 --latency 0.3 --rows 1000
    python benchmarks/throughput.py --rate 100 --latency 0.3 --rows 1000
    python benchmarks/throughput.py --rate 10 --latency 0.3 --rows 1000 --serial

The sandbox enforces ``--rate`` calls in any one-second window and adds ``--latency`` to every
answer; the importer is given the same rate and keeps a journal, as the command does. Printed:
rows per second while sending, that as a fraction of the limit, the same counting the
registrant-list check that precedes the first create call, and how many rows failed and how many
429s the sandbox sent. ``--serial`` sends one row at a time, as the old curl script did.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from importer.client import G2WClient
from importer.credentials import Credentials
from importer.journal import Journal
from importer.models import Registrant, Status
from importer.oauth import RefreshingAuth
from importer.register import Registrar
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY


def start_sandbox(rate: float, latency: float) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "importer",
            "sandbox",
            "--port",
            "0",
            "--rate",
            str(rate),
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    match = re.fullmatch(r"Sandbox API on (\S+)\n", server.stdout.readline())
    if not match:
        server.kill()
        raise SystemExit("the sandbox did not start")
    return server, match[1]


async def measure(api_url: str, rows: int, rate: float, concurrency: int | None) -> None:
    people = [
        Registrant(i + 2, f"First{i}", f"Last{i}", f"bench{i}@example.com") for i in range(rows)
    ]
    statuses: list[Status] = []
    workers = concurrency or 256
    with (
        tempfile.TemporaryDirectory() as folder,
        Journal.open(
            Path(folder) / "journal.sqlite3", organizer_key=ORGANIZER_KEY, webinar_key=WEBINAR_KEY
        ) as journal,
    ):
        async with httpx.AsyncClient(
            base_url=api_url,
            auth=RefreshingAuth(Credentials("benchmark"), None),
            timeout=30,
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        ) as http:
            client = G2WClient(http, ORGANIZER_KEY, WEBINAR_KEY)
            registrar = Registrar(client, rate=rate, concurrency=concurrency, journal=journal)
            await registrar.call(client.get_webinar)  # as the command does before it sends
            before = time.perf_counter()
            prepared = await registrar.prepare(people)  # the journal and the registrant list
            started = time.perf_counter()
            outcome = await registrar.run(
                prepared.to_send, lambda _, result: statuses.append(result.status)
            )
            elapsed = time.perf_counter() - started
            preparing = started - before
    per_second = len(statuses) / elapsed
    failed = sum(status is not Status.REGISTERED for status in statuses)
    print(f"rows {rows}, rate limit {rate:g}/s, concurrency {registrar.concurrency}")
    print(
        f"sending {elapsed:.2f} s, {per_second:.2f} rows/s = {per_second / rate:.3f} of the limit"
    )
    whole = len(statuses) / (elapsed + preparing)
    print(
        f"with the registrant-list check before it ({preparing:.2f} s): {whole:.2f} rows/s = "
        f"{whole / rate:.3f} of the limit"
    )
    print(
        f"not registered {failed + rows - len(statuses)}, 429s seen {outcome.throttled}, "
        f"calls {outcome.calls}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--serial", action="store_true", help="one request at a time")
    args = parser.parse_args()
    server, api_url = start_sandbox(args.rate, args.latency)
    try:
        asyncio.run(measure(api_url, args.rows, args.rate, 1 if args.serial else None))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
