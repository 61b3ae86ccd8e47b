"""Seconds and peak memory to read and validate a large CSV and XLSX file.

    python benchmarks/read_validate.py --rows 100000

Each file is generated once into benchmarks/out/, then measured in a fresh Python process so
that peak memory (ru_maxrss) belongs to that one read alone; import time is not counted.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
HEADER = ["First Name", "Last Name", "Email", "Company", "Job Title", "Phone", "Country", "Notes"]


def rows(count: int) -> list[list[object]]:
    rng = random.Random(1)
    return [
        [
            f"First{i}",
            f"Last{i}",
            f"person{i}@example{i % 97}.com",
            f"Company {i % 500}",
            rng.choice(["CTO", "Analyst", "Marketing Manager"]),
            4915112345000 + i,
            "Germany",
            "" if i % 3 else "VIP",
        ]
        for i in range(count)
    ]


def make(count: int) -> tuple[Path, Path]:
    OUT.mkdir(exist_ok=True)
    csv_path, xlsx_path = OUT / f"people-{count}.csv", OUT / f"people-{count}.xlsx"
    data = rows(count)
    if not csv_path.exists():
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows(data)
    if not xlsx_path.exists():
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("People")
        sheet.append(HEADER)
        for row in data:
            sheet.append(row)
        book.save(xlsx_path)
    return csv_path, xlsx_path


def measure(path: Path) -> None:
    import importer.checks.validate
    import importer.read.reader

    if path.suffix == ".xlsx":
        import python_calamine  # noqa: F401  (imported first: import time is not counted)
    started = time.perf_counter()
    table = importer.read.reader.read_table(path)
    plan = importer.checks.validate.validate(table)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "rows": len(table.rows),
                "valid": len(plan.registrants),
                "seconds": round(elapsed, 2),
                "peak_mib": round(peak),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    for path in make(args.rows):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        size = path.stat().st_size / 2**20
        print(f"{path.name} ({size:.1f} MiB): {done.stdout.strip()}")


if __name__ == "__main__":
    main()
