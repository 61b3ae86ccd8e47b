"""One list of join URLs: a needs-attention file, fixed and registered, brings its rows back into
the report it came from."""

from __future__ import annotations

import csv
import functools
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from openpyxl import load_workbook

from importer.sandbox import KICKOFF_KEY, WEBINAR_KEY
from tests import helpers
from tests.helpers import ThreadedServer, sheet_rows, statuses, summary, write_csv

GREEN, RED = "C6EFCE", "FFC7CE"
register = functools.partial(helpers.register, rate=500)


def guests(folder: Path) -> Path:
    """Six people: rows 3 and 4 are invalid, row 5 repeats row 2, row 7 has no e-mail."""
    return write_csv(
        folder / "guests.csv",
        [
            ["firstName", "lastName", "email", "Company"],
            ["Ann", "Lee", "ann@example.com", "Acme"],
            ["Bo", "", "bo@example.com", "Beta"],
            ["Cy", "Orr", "cy@example", "Core"],
            ["Ann", "Lee", "ANN@example.com", "Acme"],
            ["Di", "Ng", "di@example.com", "Delta"],
            ["Ed", "Po", "", "Echo"],
        ],
    )


def first_run(
    folder: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> tuple[ThreadedServer, Path, Path]:
    """The six guests registered once: the sandbox, the report and the needs-attention file."""
    server = loopback_sandbox(rate=0)
    assert register(server, guests(folder)).exit_code == 1
    return server, folder / "guests-joinurls.xlsx", folder / "guests-needs-attention.xlsx"


def fills(path: Path) -> list[str]:
    sheet = load_workbook(path)["Registrants"]
    return [row[0].fill.fgColor.rgb[-6:] for row in sheet.iter_rows(min_row=2)]


def fix(path: Path, changes: dict[tuple[str, str], str]) -> None:
    """Correct cells of a needs-attention workbook as a person would in Excel: by the row's
    ``row`` cell and the column's header."""
    book = load_workbook(path)
    sheet = book["Needs attention"]
    headers = [cell.value for cell in sheet[1]]
    for row in sheet.iter_rows(min_row=2):
        for (line, header), value in changes.items():
            if row[0].value == line:
                row[headers.index(header)].value = value
    book.save(path)


def test_a_fixed_needs_attention_file_brings_its_rows_back_into_the_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    first = register(server, guests(tmp_path))
    assert first.exit_code == 1, first.output
    home = tmp_path / "guests-joinurls.xlsx"
    attention = tmp_path / "guests-needs-attention.xlsx"
    book = load_workbook(attention)
    assert book.sheetnames == ["Needs attention", "Settings"]
    settings = {r[0]: r[1] for r in book["Settings"].iter_rows(min_row=3, values_only=True)}
    assert settings["Report"] == "guests-joinurls.xlsx"
    # each row names its line in the report; the repeated row 5 has nothing to fix
    assert [row["row"] for row in sheet_rows(attention, "Needs attention")] == ["3", "4", "7"]
    before = sheet_rows(home)

    fix(attention, {("3", "lastName"): "Kim", ("4", "email"): "cy@example.com"})
    again = register(server, attention)
    assert again.exit_code == 1, again.output  # row 7 still has no e-mail
    assert f"All join URLs: {home} (updated with 3 rows)" in again.stderr
    own = tmp_path / "guests-needs-attention-joinurls.xlsx"
    assert summary(own)["All join URLs"] == "guests-joinurls.xlsx (updated with 3 rows)"

    after = sheet_rows(home)
    assert [row["row"] for row in after] == [2, 3, 4, 5, 6, 7]  # the same rows, in place
    assert [row["status"] for row in after] == [
        "registered",
        "registered",
        "registered",
        "duplicate",
        "registered",
        "invalid",
    ]
    assert [after[i] for i in (0, 3, 4)] == [before[i] for i in (0, 3, 4)]  # untouched
    assert (after[1]["lastName"], after[1]["Company"]) == ("Kim", "Beta")
    assert after[2]["email"] == "cy@example.com"
    listed = {entry["email"]: entry["joinUrl"] for entry in server.sandbox.registrants()}
    assert [after[i]["joinUrl"] for i in (1, 2)] == [
        listed["bo@example.com"],
        listed["cy@example.com"],
    ]
    assert after[5]["error"].startswith("email: is empty")
    assert fills(home) == [GREEN] * 3 + [RED] + [GREEN] + [RED]
    said = summary(home)
    assert (said["Rows"], said["Registered"], said["Invalid"], said["Duplicate"]) == (6, 4, 1, 1)
    assert said["Input file"] == str(tmp_path / "guests.csv")
    assert said["Updated"].endswith(": 3 rows from guests-needs-attention.xlsx")
    assert said["Needs attention"] == "1 row: see the error column"

    # what is left to fix keeps its line in the first report, and goes back there too
    chained = tmp_path / "guests-needs-attention-needs-attention.xlsx"
    assert [row["row"] for row in sheet_rows(chained, "Needs attention")] == ["7"]
    fix(chained, {("7", "email"): "ed@example.com"})
    last = register(server, chained)
    assert last.exit_code == 0, last.output
    assert f"All join URLs: {home} (updated with 1 row)" in last.stderr
    assert statuses(home) == ["registered"] * 3 + [
        "duplicate",
        "registered",
        "registered",
    ]
    assert "Needs attention" not in summary(home)
    assert len(server.sandbox.registrants()) == 5


def test_a_needs_attention_file_saved_as_csv_goes_back_by_its_name(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    home = tmp_path / "guests-joinurls.csv"
    assert register(server, guests(tmp_path), "--out", str(home)).exit_code == 1
    before = home.read_text(encoding="utf-8-sig").splitlines()
    # Excel's "Save as CSV" keeps the first sheet only: the Settings sheet is gone
    rows = [
        [str(cell or "") for cell in row]
        for row in load_workbook(tmp_path / "guests-needs-attention.xlsx")[
            "Needs attention"
        ].iter_rows(values_only=True)
    ]
    assert [row[0] for row in rows] == ["row", "3", "4", "7"]
    rows[1][rows[0].index("lastName")] = "Kim"
    rows = rows[:2]  # only Bo is sent again
    saved = write_csv(tmp_path / "guests-needs-attention.csv", rows)
    again = register(server, saved)
    assert again.exit_code == 0, again.output
    assert f"All join URLs: {home} (updated with 1 row)" in again.stderr
    with home.open(encoding="utf-8-sig", newline="") as handle:
        after = list(csv.DictReader(handle))
    assert [row["status"] for row in after] == [
        "registered",
        "registered",
        "invalid",
        "duplicate",
        "registered",
        "invalid",
    ]
    assert after[1]["lastName"] == "Kim"
    assert after[1]["joinUrl"].startswith("https://")
    lines = home.read_text(encoding="utf-8-sig").splitlines()
    assert [lines[i] for i in (0, 1, 3, 4, 5, 6)] == [before[i] for i in (0, 1, 3, 4, 5, 6)]


def test_a_report_gone_or_edited_is_left_as_it_is_and_said_so_in_one_line(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    assert register(server, guests(tmp_path)).exit_code == 1
    home = tmp_path / "guests-joinurls.xlsx"
    attention = tmp_path / "guests-needs-attention.xlsx"
    fix(attention, {("3", "lastName"): "Kim"})
    kept = tmp_path / "kept.xlsx"
    home.rename(kept)

    gone = register(server, attention)
    assert gone.exit_code == 1, gone.output
    warnings = [line for line in gone.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        f"Warning: guests-joinurls.xlsx, the report guests-needs-attention.xlsx came from, is "
        f"not in {tmp_path} any more; this run's report has the rows' outcome"
    ]
    assert "All join URLs" not in gone.stderr
    assert not home.exists()
    own = tmp_path / "guests-needs-attention-joinurls.xlsx"
    assert statuses(own) == ["registered", "invalid", "invalid"]
    assert "All join URLs" not in summary(own)

    # the report is back, but someone has deleted a row from it
    book = load_workbook(kept)
    sheet = book["Registrants"]
    sheet.delete_rows(3)  # row 3, Bo
    book.save(home)
    edited = home.read_bytes()
    fix(attention, {("4", "email"): "cy@example.com"})
    mismatch = register(server, attention)
    assert mismatch.exit_code == 1, mismatch.output
    warnings = [line for line in mismatch.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: guests-joinurls.xlsx does not hold the rows guests-needs-attention.xlsx came "
        "from (row 3: another person, or none; edited since?), so it was left as it is; this "
        "run's report has their outcome"
    ]
    assert home.read_bytes() == edited
    assert "Traceback" not in mismatch.output


def test_a_row_fixed_to_repeat_another_is_named_by_its_row_in_the_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    assert register(server, guests(tmp_path)).exit_code == 1
    attention = tmp_path / "guests-needs-attention.xlsx"
    # rows 4 and 7 of the report are rows 3 and 4 of the file: both fixed to one address
    fix(attention, {("4", "email"): "cy@example.com", ("7", "email"): "cy@example.com"})
    again = register(server, attention)
    assert "row 4 (as row 3)" in again.stderr  # the file's own rows, in its plan
    report = {row["row"]: row for row in sheet_rows(tmp_path / "guests-joinurls.xlsx")}
    assert report[4]["status"] == "registered"
    assert report[7]["status"] == "duplicate"
    assert report[7]["error"] == "same e-mail as row 4; not sent again"


def edit_attention(path: Path, change: Callable[[Any], None]) -> None:
    """Change a needs-attention workbook as a person (or a mistake) might, and save it."""
    book = load_workbook(path)
    change(book)
    book.save(path)


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning:")]


@pytest.mark.parametrize("named", ["../other-joinurls.xlsx", "sub/r.xlsx", "a" * 300 + ".xlsx"])
def test_a_report_named_by_no_usable_path_is_one_warning_and_the_run_reports(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer], named: str
) -> None:
    server = loopback_sandbox(rate=0)
    assert register(server, guests(tmp_path)).exit_code == 1
    attention = tmp_path / "guests-needs-attention.xlsx"
    fix(attention, {("3", "lastName"): "Kim"})

    def rename(book: Any) -> None:
        for row in book["Settings"].iter_rows():
            if row[0].value == "Report":
                row[1].value = named

    edit_attention(attention, rename)
    again = register(server, attention)
    assert again.exit_code == 1, again.output
    assert "Traceback" not in again.output
    assert len(warnings_of(again)) == 1
    own = tmp_path / "guests-needs-attention-joinurls.xlsx"
    assert statuses(own) == ["registered", "invalid", "invalid"]


def test_a_join_url_in_the_report_is_never_traded_for_a_row_that_did_not_register(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server, home, attention = first_run(tmp_path, loopback_sandbox)
    before = sheet_rows(home)

    def add_ann(book: Any) -> None:  # Ann, registered, as a row to fix: her last name lost
        book["Needs attention"].append(["2", "Ann", "", "ann@example.com", "Acme"])

    edit_attention(attention, add_ann)
    fix(attention, {("3", "lastName"): "Kim"})
    again = register(server, attention)
    assert (
        "Warning: row 2 of guests-joinurls.xlsx keeps its join URL: guests-needs-attention.xlsx "
        "did not register that person again; this run's report has why" in again.stderr
    )
    after = sheet_rows(home)
    assert after[0] == before[0]  # Ann: registered, her join URL as it was
    assert after[1]["status"] == "registered"  # Bo, fixed, brought back


def test_rows_of_another_webinar_or_hidden_in_excel_stay_out_of_the_report(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server, home, attention = first_run(tmp_path, loopback_sandbox)
    before = sheet_rows(home)
    fix(attention, {("3", "lastName"): "Kim", ("4", "email"): "cy@example.com"})

    def elsewhere(book: Any) -> None:
        sheet = book["Needs attention"]
        headers = [cell.value for cell in sheet[1]]
        sheet.cell(row=2, column=headers.index("webinarKey") + 1, value=KICKOFF_KEY)  # Bo
        sheet.row_dimensions[4].hidden = True  # Ed, row 7, still without an e-mail

    edit_attention(attention, elsewhere)
    again = register(server, attention)
    assert (
        "Warning: guests-needs-attention.xlsx registered row 3 for another webinar than "
        f"guests-joinurls.xlsx's ({WEBINAR_KEY}): its outcome is only in this run's report"
        in again.stderr
    )
    after = sheet_rows(home)
    assert after[1] == before[1]  # Bo: registered for the Kick-off, not for this webinar
    assert after[2]["status"] == "registered"  # Cy
    assert after[5] == before[5]  # Ed, hidden: still to fix, and said so
    assert summary(home)["Needs attention"] == "2 rows: see the error column"


def test_a_row_number_pointing_at_someone_else_leaves_the_report_as_it_is(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server, home, attention = first_run(tmp_path, loopback_sandbox)
    before = sheet_rows(home)
    # Cy's row pointed at row 5, Ann's repeated e-mail: another person that needed no fix
    fix(attention, {("4", "row"): "5", ("4", "email"): "cy@example.com"})
    again = register(server, attention)
    assert "Warning: guests-joinurls.xlsx does not hold the rows" in again.stderr
    assert sheet_rows(home) == before


def written_long_ago(path: Path) -> None:
    """Date a workbook's writing (its created and modified properties) back to 2026-01-01."""
    with zipfile.ZipFile(path) as book:
        parts = {name: book.read(name) for name in book.namelist()}
    parts["docProps/core.xml"] = re.sub(
        rb"(<dcterms:(?:created|modified)[^>]*>)[^<]+<",
        rb"\g<1>2026-01-01T00:00:00Z<",
        parts["docProps/core.xml"],
    )
    with zipfile.ZipFile(path, "w") as book:
        for name, data in parts.items():
            book.writestr(name, data)


def test_corrections_not_registered_yet_are_kept_when_the_list_is_registered_again(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    source = guests(tmp_path)
    attention = tmp_path / "guests-needs-attention.xlsx"
    assert register(server, source).exit_code == 1
    assert register(server, source).exit_code == 1  # as written: simply written again
    assert sorted(path.name for path in tmp_path.glob("guests-needs-attention*")) == [
        attention.name
    ]
    written_long_ago(attention)  # an edit within the second of writing would go unseen
    fix(attention, {("3", "lastName"): "Kim"})  # saved, as Excel saves it
    again = register(server, source)
    (kept,) = (p for p in tmp_path.glob("guests-needs-attention-*.xlsx") if p != attention)
    assert (
        f"Warning: guests-needs-attention.xlsx was changed since it was written (corrections "
        f"not registered yet?): it was kept as {kept.name}" in again.stderr
    )
    assert sheet_rows(kept, "Needs attention")[0]["lastName"] == "Kim"
    assert sheet_rows(attention, "Needs attention")[0]["lastName"] in ("", None)
