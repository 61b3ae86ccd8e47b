"""Every kind of workbook the tool writes opens in LibreOffice Calc (the closest stand-in for
Excel on this machine) without complaint, and reads back cell for cell as written."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import Result
from openpyxl import load_workbook

from tests import helpers
from tests.helpers import people, write_csv

SOFFICE = shutil.which("soffice")
if SOFFICE is None:
    if os.environ.get("G2W_REQUIRE_LIBREOFFICE"):
        pytest.fail(
            "no LibreOffice: .ci/run installs it (apt-get install libreoffice-calc-nogui)",
            pytrace=False,
        )
    pytest.skip("no LibreOffice (apt-get install libreoffice-calc-nogui)", allow_module_level=True)

#: CSV export of every sheet (the last token, -1), UTF-8 (76), cells as shown
_EXPORT = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


def invoke(*args: str) -> Result:
    asks = args[0] in ("register", "cancel", "undo", "export")
    options = ["--sandbox", *(["--yes"] if asks else [])]
    result = helpers.invoke(*args, *options)
    assert "Traceback" not in result.output
    return result


def as_calc_reads(books: list[Path], folder: Path) -> dict[tuple[str, str], list[list[str]]]:
    """Each sheet of each workbook as LibreOffice reads it: ``(file stem, sheet) → rows``."""
    out = folder / "calc"
    # a profile of its own: runs side by side never share one
    profile = f"-env:UserInstallation={(folder / 'profile').as_uri()}"
    assert SOFFICE is not None
    done = subprocess.run(
        [SOFFICE, profile, "--headless", "--convert-to", _EXPORT, "--outdir", str(out)]
        + [str(book) for book in books],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    read: dict[tuple[str, str], list[list[str]]] = {}
    for book in books:
        for sheet in load_workbook(book, read_only=True).sheetnames:
            path = out / f"{book.stem}-{sheet}.csv"
            assert path.is_file(), f"LibreOffice did not read {book.name}, sheet {sheet}"
            with path.open(encoding="utf-8", newline="") as handle:
                read[book.stem, sheet] = [row for row in csv.reader(handle)]
    return read


def _trimmed(cells: list[str]) -> list[str]:
    """A row without its trailing empty cells."""
    while cells and not cells[-1]:
        cells = cells[:-1]
    return cells


def as_written(book: Path) -> dict[str, list[list[str]]]:
    """Each sheet's cells as text, as the file holds them (trailing empty cells left out)."""
    sheets = {}
    for sheet in load_workbook(book).worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True):
            rows.append(_trimmed(["" if value is None else str(value) for value in row]))
        while rows and not rows[-1]:
            rows.pop()
        sheets[sheet.title] = rows
    return sheets


def test_every_workbook_the_tool_writes_reads_back_the_same_in_libreoffice(
    tmp_path: Path,
) -> None:
    rows = people(6)
    rows[1][0] = "=1+2"  # text that looks like a formula stays text
    rows[2][1] = "Müller-Lüdenscheidt @home"
    rows[3][2] = "not-an-address"  # invalid: a needs-attention file
    rows[4][2] = rows[1][2]  # a repeated e-mail
    source = write_csv(tmp_path / "guests.csv", rows)
    assert invoke("register", str(source)).exit_code == 1
    leaving = write_csv(tmp_path / "leaving.csv", [rows[0], rows[5], ["", "", "nobody@x.com"]])
    assert invoke("cancel", str(leaving)).exit_code == 1
    undone = tmp_path / "undone.xlsx"
    assert invoke("undo", "--out", str(undone)).exit_code == 0
    exported = tmp_path / "exported.xlsx"
    assert invoke("export", "--out", str(exported)).exit_code == 0
    template = tmp_path / "template.xlsx"
    assert invoke("template", str(template), "--webinar-key", "4617712963571298411").exit_code == 0
    books = [
        tmp_path / "guests-joinurls.xlsx",
        tmp_path / "guests-needs-attention.xlsx",
        tmp_path / "leaving-cancelled.xlsx",
        undone,
        exported,
        template,
    ]

    calc = as_calc_reads(books, tmp_path)
    # each report's Summary and rows, the needs-attention sheet and its Settings, the template's
    assert len(calc) == 13
    for book in books:
        for sheet, written in as_written(book).items():
            read = [_trimmed(cells) for cells in calc[book.stem, sheet]]  # padded to width
            while read and not read[-1]:
                read.pop()
            assert read == written, f"{book.name}, sheet {sheet}"
    report = as_written(tmp_path / "guests-joinurls.xlsx")["Registrants"]
    assert report[1][1] == "=1+2"
    assert len(report[1][report[0].index("registrantKey")]) == 19
