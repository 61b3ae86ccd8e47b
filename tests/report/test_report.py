"""The report, read back the way Excel would see it."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
from openpyxl import load_workbook

from importer import files, report
from importer.checks.validate import validate
from importer.errors import ReportError
from importer.model import WAITING_NOTE, RawRow, Result, Status, Table
from importer.report.outcome import ALREADY_NOTE, Outcome, WebinarOutcome, build, row_outcomes

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


def sample() -> report.Report:
    return build(outcome())


def test_columns_statuses_and_errors() -> None:
    built = sample()
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
        "note",
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
    assert (by_line[6][10], by_line[6][11]) == ("", ALREADY_NOTE)  # a note, not an error
    assert built.counts()[Status.REGISTERED] == 1


def test_xlsx_keys_are_text_links_work_and_nothing_is_a_formula(tmp_path: Path) -> None:
    path = report.write(sample(), tmp_path / "out.xlsx")
    sheet = load_workbook(path)["Registrants"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:L7"
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


def cells(path: Path) -> dict[str, list[list[object]]]:
    book = load_workbook(path)
    return {
        sheet.title: [
            [(cell.value, cell.hyperlink and cell.hyperlink.target) for cell in row]
            for row in sheet.iter_rows()
        ]
        for sheet in book.worksheets
    } | {
        "": [
            [book.sheetnames, book["Registrants"].freeze_panes, book["Registrants"].auto_filter.ref]
        ]
    }


def beside(folder: Path) -> list[str]:
    """What ``folder`` holds, but the tests' own data folder (see ``own_data_folder``)."""
    return sorted(p.name for p in folder.iterdir() if p.name != "user-data")


def test_rows_written_ahead_become_the_report_when_the_check_changed_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temporary = files.temp_folder()  # where XlsxWriter keeps the rows until the file is written
    assert temporary is not None
    whole = report.write(sample(), tmp_path / "whole.xlsx")
    draft = report.Draft(sample())
    draft.write_rows()  # while the check runs; the Summary then says what it found
    final = replace(sample(), summary=(*sample().summary, ("Checked", "all match")))

    def not_again(*_: object) -> None:
        raise AssertionError("the rows written ahead are written again")

    monkeypatch.setattr(report, "_write_sheet", not_again)
    ahead = report.write(final, tmp_path / "ahead.xlsx", draft=draft)
    written, expected = cells(ahead), cells(whole)
    assert written["Summary"][-1][:2] == [("Checked", None), ("all match", None)]
    assert written["Summary"][:-1] == expected["Summary"]
    assert {k: v for k, v in written.items() if k != "Summary"} == {
        k: v for k, v in expected.items() if k != "Summary"
    }
    assert beside(tmp_path) == ["ahead.xlsx", "whole.xlsx"]
    assert list(temporary.iterdir()) == []


def test_a_row_the_check_corrected_has_the_report_written_whole(
    tmp_path: Path,
) -> None:
    draft = report.Draft(sample())
    draft.write_rows()
    built = sample()
    first = list(built.rows[0])
    first[9] = "https://sandbox.invalid/join/from-the-list"  # GoTo's list wins
    corrected = replace(built, rows=[tuple(first), *built.rows[1:]])
    path = report.write(corrected, tmp_path / "out.xlsx", draft=draft)
    sheet = load_workbook(path)["Registrants"]
    assert sheet["J2"].value == "https://sandbox.invalid/join/from-the-list"
    assert sheet["J2"].hyperlink.target == "https://sandbox.invalid/join/from-the-list"
    assert not draft.fits(built)  # used up either way: its temporary files are gone
    assert beside(tmp_path) == ["out.xlsx"]
    aside = files.temp_folder()  # where XlsxWriter keeps the rows until the file is written
    assert aside is not None
    assert list(aside.iterdir()) == []


def test_csv_has_a_bom_and_defuses_formula_starts(tmp_path: Path) -> None:
    path = report.write(sample(), tmp_path / "out.csv")
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
    assert report.write(sample(), target) == target
    assert target.read_bytes().startswith(b"PK")
    assert beside(tmp_path) == ["out.xlsx"]


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
    written = report.write(sample(), target)
    assert written != target
    assert written.name.startswith("out-")
    assert written.suffix == ".csv"
    assert target.read_text() == "locked"
    assert "registered" in written.read_text(encoding="utf-8-sig")


def test_unwritable_places_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no such folder"):
        report.write(sample(), tmp_path / "missing" / "out.xlsx")
    with pytest.raises(ReportError, match=r"must end in \.xlsx or \.csv"):
        report.write(sample(), tmp_path / "out.json")


def approval_outcome() -> Outcome:
    """A webinar whose organizer approves by hand: two of ours wait, one of someone else's
    waits, one was registered already, one is repeated."""
    headers = ("firstName", "lastName", "email")
    people = [("Ann", "Lee", "ann@x.org"), ("Bo", "Kim", "bo@x.org"), ("Cy", "Orr", "cy@x.org")]
    people += [("Di", "Ng", "di@x.org"), ("Ed", "Po", "ANN@x.org"), ("Fa", "Ul", "fa@x.org")]
    rows = tuple(RawRow(line, cells) for line, cells in enumerate(people, start=2))
    plan = validate(Table(Path("people.csv"), headers, 1, rows))
    results = {
        2: Result.settled(2, Status.REGISTERED, "1", "https://j/1", "WAITING"),
        3: Result.settled(3, Status.REGISTERED, "2", "https://j/2", "WAITING"),
        4: Result.settled(4, Status.ALREADY_REGISTERED, "3", "https://j/3", "WAITING"),
        5: Result.settled(5, Status.ALREADY_REGISTERED, "4", "https://j/4", "APPROVED"),
        7: Result.settled(7, Status.REGISTERED, "5", "https://j/5", "APPROVED"),
    }
    rows_out, problems = row_outcomes(KEY, plan, results)
    return Outcome(plan.table, (WebinarOutcome(KEY),), tuple(rows_out), problems=tuple(problems))


def test_notes_that_are_no_errors_have_a_column_of_their_own(tmp_path: Path) -> None:
    done = approval_outcome()
    frame = done.to_pandas()
    assert list(frame.columns[-2:]) == ["error", "note"]
    assert list(frame["status"]) == [
        "waiting_approval",
        "waiting_approval",
        "waiting_approval",
        "already_registered",
        "duplicate",
        "registered",
    ]
    assert list(frame["error"]) == ["", "", "", "", "same e-mail as row 2; not sent again", ""]
    assert list(frame["note"]) == [WAITING_NOTE] * 3 + [ALREADY_NOTE, "", ""]
    xlsx_rows = list(load_workbook(done.write(tmp_path / "r.xlsx"))["Registrants"].values)
    assert xlsx_rows[0][-2:] == ("error", "note")
    assert [row[-2:] for row in xlsx_rows[1:3]] == [(None, WAITING_NOTE)] * 2
    with done.write(tmp_path / "r.csv").open(encoding="utf-8-sig", newline="") as handle:
        csv_rows = list(csv.DictReader(handle))
    assert [(row["error"], row["note"]) for row in csv_rows[3:5]] == [
        ("", ALREADY_NOTE),
        ("same e-mail as row 2; not sent again", ""),
    ]
    # the waiting people count as registered (or registered already), with how many wait
    assert done.summary() == (
        "3 registered, 2 of them await approval, 2 already registered, 1 of them awaits "
        "approval, 1 duplicate"
    )


def test_a_repeated_row_is_not_a_row_to_fix(tmp_path: Path) -> None:
    done = outcome()
    written = done.write(tmp_path / "people-joinurls.xlsx")
    fix = done.write_attention(tmp_path / "people-needs-attention.xlsx")
    assert fix is not None
    book = load_workbook(fix)
    assert book.sheetnames == ["Needs attention", "Settings"]
    rows = list(book["Needs attention"].values)
    assert rows[0] == (
        "row",
        "First Name",
        "Last Name",
        "Email",
        "Phone",
        "status",
        "Notes",
        "webinarKey",
        "error",
    )
    # rows 3 (invalid) and 5 (failed); row 4 repeats row 2's e-mail: nothing to fix there
    assert [row[0] for row in rows[1:]] == ["3", "5"]
    settings = {row[0]: row[1] for row in book["Settings"].iter_rows(min_row=3, values_only=True)}
    assert settings["Report"] == written.name
    assert dict(build(done).summary)["Needs attention"].startswith("2 rows: ")


def test_join_urls_cancelled_since_are_not_kept_as_lost(tmp_path: Path) -> None:
    old = outcome()
    # the people are cancelled (undo) and registered again: new keys, new join URLs
    rows = tuple(
        replace(row, registrant_key="7" * 19, join_url="https://sandbox.invalid/join/new")
        if row.line == 2
        else row
        for row in old.rows
    )
    cancelled = WebinarOutcome(KEY, retired=frozenset({f"https://sandbox.invalid/join/{KEY}"}))
    for retired, kept in ((cancelled, []), (WebinarOutcome(KEY), ["people-joinurls-"])):
        folder = tmp_path / str(bool(kept))
        folder.mkdir()
        target = folder / "people-joinurls.xlsx"
        report.write(build(old), target)
        notes: list[str] = []
        again = replace(old, rows=rows, webinars=(retired,))
        assert report.write(build(again), target, notes.append) == target
        assert [name[:16] for name in sorted(p.name for p in folder.iterdir())] == [
            *kept,
            "people-joinurls.",
        ]
        # without the journal's word, the old join URL is one the new report does not have
        assert len(notes) == len(kept)


def test_the_summary_line_and_the_pages_result_carry_the_notes() -> None:
    from types import SimpleNamespace

    from importer.cli.console import Console
    from importer.web import app

    done = approval_outcome()
    stream = io.StringIO()
    Console(stream=stream).summary(done)
    assert stream.getvalue().splitlines()[0] == (
        "Done: 3 registered, 2 of them await approval, 2 already registered, 1 of them awaits "
        "approval, 1 duplicate."
    )
    job = SimpleNamespace(
        outcome=done,
        built=build(done),
        error=None,
        listener=SimpleNamespace(notes=[]),
        report_notes=[],
        report_file=None,
        attention_file=None,
    )
    result = app._result(job, set())  # type: ignore[arg-type]
    assert result["columns"][-2:] == ["error", "note"]
    assert [row[-1] for row in result["rows"]] == [WAITING_NOTE] * 3 + [ALREADY_NOTE, "", ""]
