"""The report, read back the way Excel would see it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from openpyxl import load_workbook

from importer import report
from importer.errors import ReportError
from importer.models import RawRow, Result, Status, Table
from importer.outcome import Outcome, WebinarOutcome, row_outcomes
from importer.validate import validate

KEY = "8325357307900339981"


def outcome() -> Outcome:
    headers = ("First Name", "Last Name", "Email", "Phone", "status", "Notes")
    rows = (
        RawRow(2, ("Ann", "Lee", "ann@example.com", "+49 30 123", "x", '=HYPERLINK("http://e")')),
        RawRow(3, ("Bo", "Kim", "bad-address", "", "", "@risk")),
        RawRow(4, ("Ann", "Lee", "ANN@example.com", "", "", "-5")),
        RawRow(5, ("Cy", "Orr", "cy@example.com", "", "", "")),
        RawRow(6, ("Di", "Ng", "di@example.com", "", "", "\tindented")),
        RawRow(7, ("Ed", "Po", "ed@example.com", "0049", "", "bell\x07")),
    )
    plan = validate(Table(Path("people.csv"), headers, 1, rows))
    results = {
        2: Result(2, Status.REGISTERED, KEY, f"https://sandbox.invalid/join/{KEY}"),
        5: Result(5, Status.FAILED, error="GoTo refused this row: Invalid phone"),
        6: Result(6, Status.ALREADY_REGISTERED, "1234567890123456789", "https://j/2"),
    }
    rows, problems = row_outcomes(KEY, plan, results, lambda line: PENDING)
    return Outcome(plan.table, (WebinarOutcome(KEY),), tuple(rows), problems=tuple(problems))


PENDING = "not sent: the run stopped first; run the command again"


def build() -> report.Report:
    return report.build(outcome())


def test_columns_statuses_and_errors() -> None:
    built = build()
    assert built.headers == (
        "row",
        "firstName",
        "lastName",
        "email",
        "Phone",
        "status (input)",
        "Notes",
        "status",
        "registrantKey",
        "joinUrl",
        "error",
    )
    assert [row[7] for row in built.rows] == [
        "registered",
        "invalid",
        "duplicate",
        "failed",
        "already_registered",
        "pending",
    ]
    by_line = {row[0]: row for row in built.rows}
    assert by_line[3][10].startswith("Email: 'bad-address' is not a valid e-mail address")
    assert by_line[4][10] == "same e-mail as row 2; not sent again"
    assert by_line[7][10] == "not sent: the run stopped first; run the command again"
    assert built.counts()[Status.REGISTERED] == 1


def test_xlsx_keys_are_text_links_work_and_nothing_is_a_formula(tmp_path: Path) -> None:
    path = report.write(build(), tmp_path / "out.xlsx")
    sheet = load_workbook(path)["Registrants"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:K7"
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)
    assert sheet["I2"].value == KEY
    assert sheet["I2"].data_type == "s"
    assert sheet["J2"].hyperlink.target == f"https://sandbox.invalid/join/{KEY}"
    assert sheet["G2"].value == '=HYPERLINK("http://e")'
    assert sheet["G2"].quotePrefix
    assert sheet["E2"].value == "+49 30 123"
    assert sheet["E7"].value == "0049"
    assert sheet["G7"].value == "bell\ufffd"
    assert sheet["A2"].value == 2
    assert sheet.column_dimensions["J"].width > 20


def test_csv_has_a_bom_and_defuses_formula_starts(tmp_path: Path) -> None:
    path = report.write(build(), tmp_path / "out.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[1][8] == KEY
    assert rows[1][4] == "'+49 30 123"
    assert rows[1][6] == '\'=HYPERLINK("http://e")'
    assert rows[2][6] == "'@risk"
    assert rows[3][6] == "'-5"
    assert rows[5][6] == "'\tindented"


def test_report_replaces_the_old_one_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.xlsx"
    target.write_bytes(b"old report")
    assert report.write(build(), target) == target
    assert target.read_bytes().startswith(b"PK")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xlsx"]


def test_report_open_elsewhere_is_written_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.csv"
    target.write_text("locked")
    real_replace = os.replace

    def locked(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == target:
            raise PermissionError(13, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", locked)
    written = report.write(build(), target)
    assert written != target
    assert written.name.startswith("out-")
    assert written.suffix == ".csv"
    assert target.read_text() == "locked"
    assert "registered" in written.read_text(encoding="utf-8-sig")


def test_unwritable_places_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no such folder"):
        report.write(build(), tmp_path / "missing" / "out.xlsx")
    with pytest.raises(ReportError, match=r"must end in \.xlsx or \.csv"):
        report.write(build(), tmp_path / "out.json")
