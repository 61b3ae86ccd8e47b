"""How long ``g2w-import --help`` takes to start: the median of several runs.

python benchmarks/startup.py --runs 15
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    command = shutil.which("g2w-import")
    argv = [command] if command else [sys.executable, "-m", "importer"]
    for sub in ([], ["register"]):
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            subprocess.run([*argv, *sub, "--help"], capture_output=True, check=True)
            times.append(time.perf_counter() - started)
        label = " ".join(["g2w-import", *sub, "--help"])
        print(
            f"{label}: median {statistics.median(times):.3f} s, "
            f"max {max(times):.3f} s over {args.runs} runs"
        )


if __name__ == "__main__":
    main()
