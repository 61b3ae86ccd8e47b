"""The one-file app: its size, and how long it takes from start to the page answering.

bash .ci/build-app && python benchmarks/app.py dist/g2w-import --runs 5

The first start comes after the system's file cache is emptied when that is allowed (as
root on Linux), the closest to a first double-click after a download; every start unpacks the
app into a temporary folder, so every start pays for that.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def start_to_page(app: Path) -> float:
    """Seconds from starting ``app ui --sandbox --no-browser`` to its page answering."""
    with tempfile.TemporaryDirectory() as data:
        started = time.perf_counter()
        process = subprocess.Popen(
            [app, "ui", "--sandbox", "--no-browser"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "XDG_DATA_HOME": data},
            start_new_session=True,  # stopped as its window's Ctrl-C stops it: the group
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # Page: http://127.0.0.1:PORT/?token=…
            base = line.split()[1].split("/?")[0]
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/static/page.css", timeout=5) as answer:
                        if answer.status == 200:
                            return time.perf_counter() - started
                except OSError:
                    time.sleep(0.01)
        finally:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=30)


def drop_caches() -> bool:
    """Empty Linux's page cache, so that the first start reads the app from disk (root only);
    whether it was done."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", type=Path, help="the built file (.ci/build-app prints its path)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.app.stat().st_size
    print(f"{args.app}: {size / 1e6:.1f} MB")
    cold = drop_caches()
    times = [start_to_page(args.app) for _ in range(args.runs)]
    print(
        f"start to the page answering: first {times[0]:.2f} s "
        f"({'system cache dropped first' if cold else 'system cache not dropped'}), median "
        f"{statistics.median(times):.2f} s, max {max(times):.2f} s over {args.runs} runs "
        f"({os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
