"""One whole ``g2w-import register`` run against the sandbox served by a separate process.

    python benchmarks/throughput.py --rate 10 --latency 0.25 --jitter 0.1 --rows 4000
    python benchmarks/throughput.py --rate 100 --latency 0.25 --jitter 0.1 --rows 4000
    python benchmarks/throughput.py --rate 0 --latency 0.05 --rows 4000

The sandbox runs in a process of its own on 127.0.0.1: it allows ``--rate`` calls in any
one-second window (0: no limit) and holds every answer ``--latency`` ± ``--jitter`` seconds. The
importer runs as a person runs it, in another process: ``g2w-import register FILE --yes
--quiet`` with its journal and an XLSX report, given the same rate (1,000 calls a second, the
command's highest, against a server without a limit). Printed, for the one run:

* server-side rate: registrations the sandbox accepted per second, from the first to the last,
  and that over the limit;
* whole run: rows over the command's time from launch to exit (start-up, reading the file,
  the webinar's look-ups, sending, the report), and that over the limit (the ideal run sends
  every row at exactly the limit, nothing else taking any time);
* the 429s the sandbox answered, and the rows not registered;
* the command's CPU time (user and system) per row, and its peak resident memory;
* the sandbox's own CPU time per row: on a 2-core machine it has the other core, and without a
  limit it can be what holds the pace back;
* with a limit (unless ``--no-bare-loop``), the CPU a request of a bare loop run next, against
  the same sandbox at the same rate (and the same 1 % under it): ``aiohttp`` posting the same
  rows (under other e-mails) through an ``aiolimiter`` limiter, each answer read whole, nothing
  else (no journal, no checks, no report), in a process of its own started the same way; and
  the command's CPU a row over it.

The package is byte-compiled first, as pip leaves an installed one, so that every run measures
the same thing.

``--serial`` sends one row at a time, as the old curl script did.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import csv
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import importer
from importer.goto.session import HEADROOM
from importer.sandbox import ORGANIZER_KEY, WEBINAR_KEY, Sandbox, SandboxConfig, SandboxServer
from importer.serve.exchange import Answer, Request

TOKEN = "benchmark-token"
#: the command's highest --rate, given to it against a server without a limit
UNLIMITED = 1000.0


class TimedSandbox(Sandbox):
    """The sandbox, noting when it accepted each registration (before its latency)."""

    def __init__(self, config: SandboxConfig) -> None:
        super().__init__(config)
        self.created: list[float] = []

    async def handle(self, request: Request) -> Answer:
        accepted = self.clock()
        answer = await super().handle(request)
        if request.method == "POST" and answer.status == 201:
            self.created.append(accepted)
        return answer


def serve(settings: dict[str, Any], pipe: Connection) -> None:
    """The sandbox process: send the API's URL, then serve, sending what it saw so far each time
    it is asked (and starting afresh), until it is told to stop."""

    async def main() -> None:
        sandbox = TimedSandbox(SandboxConfig(tokens=(TOKEN,), **settings))
        async with SandboxServer(sandbox, port=0) as server:
            pipe.send(server.api_url)
            loop = asyncio.get_running_loop()
            cpu = time.process_time()
            while (await loop.run_in_executor(None, pipe.recv)) != "stop":
                seen = {
                    "created": sandbox.created,
                    "throttled": sandbox.stats["throttled"],
                    "calls": sandbox.stats["calls"],
                    "cpu": time.process_time() - cpu,
                }
                pipe.send(seen)
                sandbox.created = []
                sandbox.stats["throttled"] = sandbox.stats["calls"] = 0
                cpu = time.process_time()

    asyncio.run(main())


BARE_LOOP = """
import asyncio, json, sys
import aiohttp, aiolimiter

async def main(url: str, token: str, rows: int, rate: float) -> None:
    limiter = aiolimiter.AsyncLimiter(rate, 1)
    # started full, so that it lets calls through evenly spaced, as the command's pace does,
    # rather than a second's worth at once (which the sandbox would answer with 429s)
    await limiter.acquire(rate)
    headers = {"Authorization": f"Bearer {token}"}
    params = {"resendConfirmation": "false"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async def post(i: int) -> int:
            body = {"firstName": f"First{i}", "lastName": f"Last{i}",
                    "email": f"bare{i}@example.com", "organization": "Example Ltd"}
            async with limiter:
                async with http.post(url, params=params, json=body) as answer:
                    await answer.read()
                    return answer.status
        statuses = await asyncio.gather(*(post(i) for i in range(rows)))
    failed = sum(status != 201 for status in statuses)
    if failed:
        sys.exit(f"{failed} of the bare loop's posts were not registered")

url, token, rows, rate = sys.argv[1:]
asyncio.run(main(url, token, int(rows), float(rate)))
"""


@dataclass(frozen=True)
class Client:
    """What the command's process took."""

    exit_code: int
    #: when it started (``time.monotonic``, the clock the sandbox notes registrations by)
    launched: float
    seconds: float
    user: float
    system: float
    peak_rss: int  # bytes

    @property
    def cpu(self) -> float:
        return self.user + self.system


def run_command(argv: list[str], env: dict[str, str], log: Path) -> Client:
    """Run ``argv``; its wall time, CPU time and peak memory, from the kernel's accounting."""
    with log.open("wb") as errors:
        launched = time.monotonic()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - launched
    process.returncode = os.waitstatus_to_exitcode(status)
    return Client(
        process.returncode,
        launched,
        seconds,
        usage.ru_utime,
        usage.ru_stime,
        usage.ru_maxrss * 1024,  # KiB on Linux
    )


def write_people(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["firstName", "lastName", "email", "organization"])
        writer.writerows(
            [f"First{i}", f"Last{i}", f"bench{i}@example.com", "Example Ltd"] for i in range(rows)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="the limit (0: none)")
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, help="the command's --concurrency")
    parser.add_argument("--serial", action="store_true", help="one request at a time")
    parser.add_argument("--csv", action="store_true", help="a CSV report instead of XLSX")
    parser.add_argument(
        "--no-verify", action="store_true", help="the command's --no-verify: no check at the end"
    )
    parser.add_argument(
        "--no-bare-loop", action="store_true", help="skip the bare loop run after the command"
    )
    args = parser.parse_args()
    settings = {"rate": args.rate, "latency": args.latency, "jitter": args.jitter}
    # compiled once, as pip compiles an installed package: an editable install (or
    # PYTHONDONTWRITEBYTECODE) would otherwise have the command compile its modules every run
    compileall.compile_dir(Path(importer.__file__).parent, quiet=1)
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(settings, theirs))
    server.start()
    try:
        api_url = ours.recv()
        with tempfile.TemporaryDirectory(prefix="g2w-bench-") as folder:
            here = Path(folder)
            write_people(here / "people.csv", args.rows)
            concurrency = 1 if args.serial else args.concurrency
            argv = [
                sys.executable,
                "-m",
                "importer",
                "register",
                str(here / "people.csv"),
                "--api-url",
                api_url,
                "--organizer-key",
                ORGANIZER_KEY,
                "--webinar-key",
                WEBINAR_KEY,
                "--rate",
                f"{args.rate or UNLIMITED:g}",
                "--journal",
                str(here / "journal.sqlite3"),
                "--out",
                str(here / ("report.csv" if args.csv else "report.xlsx")),
                "--yes",
                "--quiet",
                *(["--concurrency", str(concurrency)] if concurrency else []),
                *(["--no-verify"] if args.no_verify else []),
            ]
            env = {**os.environ, "G2W_ACCESS_TOKEN": TOKEN, "XDG_DATA_HOME": folder}
            client = run_command(argv, env, here / "stderr.txt")
            errors = (here / "stderr.txt").read_text(encoding="utf-8", errors="replace")
            ours.send("seen")
            seen = ours.recv()
            bare = None
            if args.rate and not args.no_bare_loop:
                url = f"{api_url}/organizers/{ORGANIZER_KEY}/webinars/{WEBINAR_KEY}/registrants"
                rate = f"{args.rate * HEADROOM:g}"
                argv = [sys.executable, "-c", BARE_LOOP, url, TOKEN, str(args.rows), rate]
                bare = run_command(argv, env, here / "bare.txt")
                if bare.exit_code:
                    print((here / "bare.txt").read_text(encoding="utf-8", errors="replace"))
        ours.send("stop")
    finally:
        server.join(timeout=30)
        if server.is_alive():
            server.kill()
    report(args, client, seen, errors, bare)


def report(
    args: argparse.Namespace, client: Client, seen: dict[str, Any], errors: str, bare: Client | None
) -> None:
    created: list[float] = seen["created"]
    rows = args.rows
    limit = f"{args.rate:g}/s" if args.rate else "none"
    jitter = f" ± {args.jitter * 1000:.0f}" if args.jitter else ""
    kind = "CSV" if args.csv else "XLSX"
    print(f"{rows:,} rows, limit {limit}, latency {args.latency * 1000:.0f}{jitter} ms, {kind}")
    if client.exit_code:
        print(f"the command exited with {client.exit_code}:\n{errors}")
    span = created[-1] - created[0] if len(created) > 1 else 0.0
    server_rate = (len(created) - 1) / span if span else 0.0
    whole = rows / client.seconds
    if args.rate:
        print(
            f"server-side rate   {server_rate:7.2f} rows/s = "
            f"{server_rate / args.rate:.3f} of the limit"
        )
        print(
            f"whole run          {whole:7.2f} rows/s = {whole / args.rate:.3f} of the limit "
            f"({client.seconds:.2f} s; ideal {rows / args.rate:.2f} s)"
        )
    else:
        print(f"server-side rate   {server_rate:7.2f} rows/s")
        print(f"whole run          {whole:7.2f} rows/s ({client.seconds:.2f} s)")
    if created:
        before = created[0] - client.launched
        after = client.launched + client.seconds - created[-1]
        print(f"first registration {before:7.2f} s after launch; exit {after:.2f} s after the last")
    print(f"429s               {seen['throttled']} (of {seen['calls']:,} calls)")
    print(f"not registered     {rows - len(created)}")
    print(
        f"client CPU         {client.cpu * 1000 / rows:.2f} ms a row ({client.user:.2f} s user, "
        f"{client.system:.2f} s system)"
    )
    print(f"client peak RSS    {client.peak_rss / 2**20:.0f} MiB")
    if bare is not None:
        print(
            f"bare loop CPU      {bare.cpu * 1000 / rows:.2f} ms a request (aiohttp + aiolimiter "
            f"at the same rate; {bare.seconds:.2f} s); the command's CPU a row is "
            f"{client.cpu / bare.cpu:.2f}x it"
        )
    print(f"sandbox CPU        {seen['cpu'] * 1000 / rows:.2f} ms a row (on the other core)")


if __name__ == "__main__":
    main()
