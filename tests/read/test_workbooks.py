"""Workbooks as people really have them (several sheets, hidden ones, the sheet Excel opens on,
rows hidden by a filter or by hand, formulas Excel never calculated) and CSV files in every
Unicode encoding."""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook

import importer
from importer.errors import EXIT_OK, EXIT_ROWS, EXIT_USAGE, InputError
from importer.model import Sheet, Status
from importer.read import workbook
from importer.read.reader import read_table
from tests.helpers import (
    ENV,
    ThreadedServer,
    invoke,
    register_args,
    sheet_rows,
    status_counts,
    write_workbook,
)

HEADER = ["firstName", "lastName", "email"]


def guests(count: int, domain: str = "example.com") -> list[list[Any]]:
    return [HEADER, *([f"First{i}", f"Last{i}", f"guest{i}@{domain}"] for i in range(count))]


def rewrite(path: Path, part: str, old: str, new: str) -> None:
    """Change one part of a workbook's zip, as another program would have written it."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    text = parts[part].decode()
    assert old in text, text
    parts[part] = text.replace(old, new).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)


# --- which sheet ------------------------------------------------------------------------------


def test_the_active_sheet_is_read_not_a_hidden_one_before_it(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Archive 2019": guests(4, "old.example"), "Guests": guests(2)},
        active="Guests",
        states={"Archive 2019": "hidden"},
    )
    table = read_table(path)
    assert table.sheet == "Guests"
    assert [row.cells[2] for row in table.rows] == ["guest0@example.com", "guest1@example.com"]
    assert table.other_sheets == (Sheet("Archive 2019", 4, hidden=True),)


def test_the_sheet_excel_opens_on_comes_before_the_first_one(tmp_path: Path) -> None:
    sheets = {"Last year": guests(3, "old.example"), "This year": guests(2)}
    path = write_workbook(tmp_path / "book.xlsx", sheets, active="This year")
    table = read_table(path)
    assert table.sheet == "This year"
    assert table.other_sheets == (Sheet("Last year", 3),)
    assert read_table(write_workbook(tmp_path / "first.xlsx", sheets)).sheet == "Last year"


def test_without_an_email_column_on_the_active_sheet_the_first_visible_one_is_read(
    tmp_path: Path,
) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {
            "Lookup": guests(5, "old.example"),
            "Read me": [["Fill in the People sheet"]],
            "People": guests(1),
        },
        active="Read me",
        states={"Lookup": "veryHidden"},
    )
    table = read_table(path)
    assert table.sheet == "People"
    assert table.other_sheets == (Sheet("Lookup", 5, hidden=True),)


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_a_hidden_sheet_is_never_read_unasked(tmp_path: Path, state: str) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Read me": [["Nothing to see"]], "Archive": guests(2)},
        states={"Archive": state},
    )
    message = (
        "book.xlsx: no visible sheet has an e-mail column, but the hidden sheet 'Archive' has "
        "one; if that is the list to register, choose it with --sheet 'Archive' (or unhide it "
        "in Excel)"
    )
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value) == message
    result = invoke("register", str(path), "--dry-run")
    assert result.exit_code == EXIT_USAGE
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_sheet_names_any_sheet_hidden_ones_too(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Archive 2019": guests(3, "old.example"), "Guests": guests(2)},
        active="Guests",
        states={"Archive 2019": "veryHidden"},
    )
    table = read_table(path, sheet="Archive 2019")
    assert table.sheet == "Archive 2019"
    assert table.rows[0].cells[2] == "guest0@old.example"
    assert table.other_sheets == ()  # the sheet was chosen: nothing to point at
    result = invoke("register", str(path), "--dry-run", "--sheet", "Archive 2019")
    assert result.exit_code == EXIT_OK, result.output
    assert "File:     book.xlsx, sheet 'Archive 2019' (header in line 1, 3 rows)" in result.stderr
    assert "Sheet:" not in result.stderr
    outcome = importer.check(path, sheet="Archive 2019")
    assert len(outcome.rows) == 3


def test_the_plan_names_the_sheet_read_and_the_others_with_e_mails(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {
            "Archive 2019": guests(1204, "old.example"),
            "Guests": guests(3),
            "Speakers": [["Name", "E-Mail"], ["Ann Lee", "ann@example.com"]],
            "Notes": [["Remember the badges"]],
        },
        active="Guests",
        states={"Archive 2019": "hidden"},
    )
    result = invoke("register", str(path), "--dry-run")
    assert result.exit_code == EXIT_OK, result.output
    assert "File:     book.xlsx, sheet 'Guests' (header in line 1, 3 rows)\n" in result.stderr
    assert (
        "Sheet:    'Guests' (also with e-mails: 'Archive 2019' (hidden, 1,204 rows), "
        "'Speakers' (1 row); choose one with --sheet)\n"
    ) in result.stderr


def test_a_workbook_of_one_list_names_no_other_sheet(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Guests": guests(2), "Settings": [["webinarKey", "8325357307900339981"]]},
    )
    result = invoke("register", str(path), "--dry-run")
    assert result.exit_code == EXIT_OK, result.output
    assert "Sheet:" not in result.stderr
    assert "Hidden:" not in result.stderr


# --- hidden rows ------------------------------------------------------------------------------


def filtered(path: Path) -> Path:
    """Six guests, an AutoFilter on 'attending' that hides the two who said no (rows 3 and 5),
    as Excel saves a filtered sheet: the filter, and the rows it hides marked hidden."""
    made = Workbook()
    sheet = made.active
    sheet.title = "Guests"
    sheet.append([*HEADER, "attending"])
    for i in range(6):
        sheet.append(
            [f"First{i}", f"Last{i}", f"guest{i}@example.com", "no" if i in (1, 3) else "yes"]
        )
    sheet.auto_filter.ref = "A1:D7"
    sheet.auto_filter.add_filter_column(3, ["yes"])
    for line in (3, 5):
        sheet.row_dimensions[line].hidden = True
    made.save(path)
    return path


def test_the_reader_marks_rows_hidden_by_a_filter_or_by_hand(tmp_path: Path) -> None:
    table = read_table(filtered(tmp_path / "guests.xlsx"))
    assert [row.line for row in table.rows if row.hidden] == [3, 5]
    assert table.hidden_rows == 2
    by_hand = write_workbook(
        tmp_path / "by-hand.xlsx",
        {"Guests": [["A list of guests"], [], *guests(4)]},
        hidden_rows={"Guests": [5]},
    )
    assert [row.line for row in read_table(by_hand).rows if row.hidden] == [5]


def test_rows_hidden_in_excel_are_reported_not_sent(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    path = filtered(tmp_path / "guests.xlsx")
    result = invoke(*register_args(path, server.api_url), env=ENV)
    assert result.exit_code == EXIT_OK, result.output
    assert (
        "Hidden:   2 rows hidden in Excel are not sent; --include-hidden-rows sends them\n"
    ) in result.stderr
    assert "To send:  4 registrants" in result.stderr
    assert "Done: 4 registered, 2 skipped hidden." in result.stderr
    sent = {entry["email"] for entry in server.sandbox.registrants()}
    assert sent == {
        "guest0@example.com",
        "guest2@example.com",
        "guest4@example.com",
        "guest5@example.com",
    }
    rows = sheet_rows(tmp_path / "guests-joinurls.xlsx")
    assert [row["status"] for row in rows] == [
        "registered",
        "skipped_hidden",
        "registered",
        "skipped_hidden",
        "registered",
        "registered",
    ]
    skipped = rows[1]
    assert skipped["registrantKey"] is None
    assert skipped["joinUrl"] is None
    assert any("hidden in Excel" in str(value) for value in skipped.values())
    assert not (tmp_path / "guests-needs-attention.xlsx").exists()

    again = invoke(*register_args(path, server.api_url, "--include-hidden-rows"), env=ENV)
    assert again.exit_code == EXIT_OK, again.output
    assert "Hidden:   2 rows hidden in Excel are sent too (--include-hidden-rows)" in again.stderr
    assert "To send:  2 registrants" in again.stderr
    assert len(server.sandbox.registrants()) == 6
    statuses = status_counts(tmp_path / "guests-joinurls.xlsx")
    assert statuses == {"registered": 6}


def test_hidden_rows_in_python_and_in_the_dry_run(tmp_path: Path) -> None:
    path = filtered(tmp_path / "guests.xlsx")
    outcome = importer.check(path)
    assert outcome.exit_code == EXIT_OK
    assert outcome.counts == {Status.PENDING: 4, Status.SKIPPED_HIDDEN: 2}
    included = importer.check(path, include_hidden_rows=True)
    assert included.counts == {Status.PENDING: 6}
    result = invoke("register", str(path), "--dry-run", "--include-hidden-rows")
    assert result.exit_code == EXIT_OK, result.output
    assert "Dry run of the file alone: nothing was sent; 6 rows pass." in result.stderr


def test_a_hidden_row_is_not_checked_or_counted_as_a_duplicate(tmp_path: Path) -> None:
    rows = [*guests(2), ["", "", "not an address"], ["First0", "Last0", "guest0@example.com"]]
    path = write_workbook(tmp_path / "book.xlsx", {"Guests": rows}, hidden_rows={"Guests": [4, 5]})
    outcome = importer.check(path)
    assert outcome.exit_code == EXIT_OK
    assert [row.status for row in outcome.rows] == [
        Status.PENDING,
        Status.PENDING,
        Status.SKIPPED_HIDDEN,
        Status.SKIPPED_HIDDEN,
    ]
    assert outcome.problems == ()


def test_hidden_rows_of_a_cancel_file_are_left_out_and_said_so(
    tmp_path: Path, loopback_sandbox: Callable[..., ThreadedServer]
) -> None:
    server = loopback_sandbox(rate=0)
    everyone = write_workbook(tmp_path / "everyone.xlsx", {"Guests": guests(3)})
    assert invoke(*register_args(everyone, server.api_url), env=ENV).exit_code == EXIT_OK
    leaving = write_workbook(
        tmp_path / "leaving.xlsx", {"Guests": guests(3)}, hidden_rows={"Guests": [3]}
    )
    result = invoke(
        "cancel", str(leaving), *register_args(everyone, server.api_url)[2:], "--yes", env=ENV
    )
    assert result.exit_code == EXIT_OK, result.output
    assert (
        "Warning: leaving.xlsx, sheet 'Guests': 1 row hidden in Excel (by a filter or by hand) "
        "is left out (row 3); unhide it and run again to include it"
    ) in result.stderr
    assert {entry["email"] for entry in server.sandbox.registrants()} == {"guest1@example.com"}
    report = load_workbook(tmp_path / "leaving-cancelled.xlsx")["Registrants"]
    assert [row[0] for row in report.iter_rows(min_row=2, values_only=True)] == [2, 4]


# --- formulas ---------------------------------------------------------------------------------


def test_a_formula_excel_never_calculated_says_so(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Guests": [HEADER, ["Ann", "Lee", '=LOWER("ANN@EXAMPLE.COM")'], ["Bo", "Kim", "=B3"]]},
    )
    table = read_table(path)
    assert table.rows[0].cells == ("Ann", "Lee", "")
    outcome = importer.check(path)
    assert outcome.exit_code == EXIT_ROWS
    assert [(p.line, p.column, p.message) for p in outcome.problems] == [
        (
            2,
            "email",
            'the cell holds a formula (=LOWER("ANN@EXAMPLE.COM")) that Excel has not calculated '
            "yet; open the file in Excel and save it, then run again",
        ),
        (
            3,
            "email",
            "the cell holds a formula (=B3) that Excel has not calculated yet; open the file in "
            "Excel and save it, then run again",
        ),
    ]
    result = invoke("register", str(path), "--dry-run")
    assert result.exit_code == EXIT_ROWS
    assert (
        "  row 3, email: the cell holds a formula (=B3) that Excel has not calculated yet; open "
        "the file in Excel and save it, then run again\n"
    ) in result.stderr


def test_a_row_of_nothing_but_uncalculated_formulas_is_not_taken_for_blank(
    tmp_path: Path,
) -> None:
    path = write_workbook(tmp_path / "book.xlsx", {"Guests": [*guests(1), ["=A2", "=B2", "=C2"]]})
    outcome = importer.check(path)
    assert [row.status for row in outcome.rows] == [Status.PENDING, Status.INVALID]
    assert [p.column for p in outcome.problems] == ["firstName", "lastName", "email"]


def test_formulas_with_calculated_values_read_their_values(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx", {"Guests": [HEADER, ["Ann", "Lee", "=LOWER(B2)"]]}
    )
    rewrite(
        path,
        "xl/worksheets/sheet1.xml",
        '<c r="C2"><f>LOWER(B2)</f><v /></c>',
        '<c r="C2" t="str"><f>LOWER(B2)</f><v>ann.lee@example.com</v></c>',
    )
    table = read_table(path)
    assert table.rows[0].cells == ("Ann", "Lee", "ann.lee@example.com")
    assert table.rows[0].formulas == ()
    assert importer.check(path).exit_code == EXIT_OK


def test_a_calculated_empty_text_is_an_empty_cell(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx", {"Guests": [[*HEADER, "Company"], [*guests(1)[1], "=X"]]}
    )
    rewrite(
        path,
        "xl/worksheets/sheet1.xml",
        '<c r="D2"><f>X</f><v /></c>',
        '<c r="D2" t="str"><f>IF(TRUE,"")</f><v></v></c>',
    )
    table = read_table(path)
    assert table.rows[0].formulas == ()
    assert importer.check(path).exit_code == EXIT_OK


def test_a_zero_written_in_place_of_a_value_by_a_program_is_no_value(tmp_path: Path) -> None:
    """XlsxWriter writes 0 as every formula's value and asks Excel to calculate the workbook
    when it is opened: the 0 is a placeholder, not what the formula comes to."""
    path = write_workbook(
        tmp_path / "book.xlsx", {"Guests": [HEADER, ["Ann", "Lee", "=LOWER(B2)"]]}
    )
    rewrite(
        path,
        "xl/worksheets/sheet1.xml",
        '<c r="C2"><f>LOWER(B2)</f><v /></c>',
        '<c r="C2"><f>LOWER(B2)</f><v>0</v></c>',
    )
    with zipfile.ZipFile(path) as made:
        assert b'fullCalcOnLoad="1"' in made.read("xl/workbook.xml")
    table = read_table(path)
    assert table.rows[0].cells == ("Ann", "Lee", "")
    problem = importer.check(path).problems[0]
    assert problem.message.startswith("the cell holds a formula (=LOWER(B2)) that Excel has not")


def test_a_cell_sharing_another_ones_formula_and_long_formulas(tmp_path: Path) -> None:
    long = "CONCATENATE(" + ",".join(f'"{letter}"' for letter in "abcdefghijklmnopqrstuvwxyz") + ")"
    path = write_workbook(
        tmp_path / "book.xlsx", {"Guests": [HEADER, ["Ann", "Lee", "x"], ["Bo", "Kim", "y"]]}
    )
    rewrite(
        path,
        "xl/worksheets/sheet1.xml",
        '<c r="C2" t="inlineStr"><is><t>x</t></is></c>',
        f'<c r="C2"><f t="shared" ref="C2:C3" si="0">{long}</f></c>',
    )
    rewrite(
        path,
        "xl/worksheets/sheet1.xml",
        '<c r="C3" t="inlineStr"><is><t>y</t></is></c>',
        '<c r="C3"><f t="shared" si="0"/></c>',
    )
    messages = [p.message for p in importer.check(path).problems]
    shown = "=" + long[: workbook.FORMULA_SHOWN - 1] + "…"
    assert messages == [
        f"the cell holds a formula ({shown}) that Excel has not calculated yet; open the file "
        "in Excel and save it, then run again",
        "the cell holds a formula that Excel has not calculated yet; open the file in Excel and "
        "save it, then run again",
    ]


def test_marks_are_found_in_a_sheet_whose_tags_carry_a_prefix(tmp_path: Path) -> None:
    """Some programs (the Open XML SDK) write ``<x:row>``, ``<x:c>``, ``<x:f>``."""
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"Guests": [*guests(2), ["Cy", "Orr", "=LOWER(A4)"]]},
        hidden_rows={"Guests": [3]},
    )
    main = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    with zipfile.ZipFile(path) as made:
        sheet = made.read("xl/worksheets/sheet1.xml").decode()
    prefixed = re.sub(
        r"<(/?)([A-Za-z]+)([\s/>])", r"<\1x:\2\3", sheet.replace(main, main[:5] + ":x" + main[5:])
    )
    rewrite(path, "xl/worksheets/sheet1.xml", sheet, prefixed)
    table = read_table(path)
    assert [row.line for row in table.rows if row.hidden] == [3]
    assert table.rows[2].formulas == ((2, "=LOWER(A4)"),)


def test_marks_are_found_across_the_chunks_a_sheet_is_read_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [*guests(40)]
    rows[20][2] = "=LOWER(B21)"
    rows[33][2] = "=LOWER(B34)"
    path = write_workbook(
        tmp_path / "book.xlsx", {"Guests": rows}, hidden_rows={"Guests": [9, 26, 41]}
    )

    def marks() -> tuple[list[int], dict[int, tuple[tuple[int, str], ...]]]:
        table = read_table(path)
        hidden = [row.line for row in table.rows if row.hidden]
        return hidden, {row.line: row.formulas for row in table.rows if row.formulas}

    whole = marks()
    assert whole == ([9, 26, 41], {21: ((2, "=LOWER(B21)"),), 34: ((2, "=LOWER(B34)"),)})
    for size in (7, 64, 333):
        monkeypatch.setattr(workbook, "_CHUNK", size)
        assert marks() == whole


# --- cells far out, however they are written -------------------------------------------------


@pytest.fixture
def no_calamine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if calamine is asked to read the workbook (a far cell makes it abort)."""
    import python_calamine

    class Refused:
        @staticmethod
        def from_path(path: str) -> None:
            raise AssertionError(f"calamine was asked to read {path}")

    monkeypatch.setattr(python_calamine, "CalamineWorkbook", Refused)


def with_rows(path: Path, rows: str) -> Path:
    """A workbook of one guest, and ``rows`` written after its rows as another program would."""
    write_workbook(path, {"Guests": guests(1)})
    rewrite(path, "xl/worksheets/sheet1.xml", "</sheetData>", rows + "</sheetData>")
    return path


BEYOND = "beyond the last cell of an Excel sheet (XFD1048576)"


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ('<c r="XFD99999999"><v>1</v></c>', f"XFD99999999, {BEYOND}"),
        ('<c r="C12345678"><v>1</v></c>', f"C12345678, {BEYOND}"),
        ('<c r="ZZZZ2000"><v>1</v></c>', f"ZZZZ2000, {BEYOND}"),
        ('<c r="A4294967298"><v>1</v></c>', f"A4294967298, {BEYOND}"),  # calamine wraps it
        ('<c r="XFD01000000"><v>1</v></c>', "XFD1000000, which makes 16,384,000,000 cells"),
        ('<c r="xfd1000000"><v>1</v></c>', "XFD1000000, which makes 16,384,000,000 cells"),
        ('<c r = "XFD1000000"><v>1</v></c>', "XFD1000000, which makes 16,384,000,000 cells"),
        ("<c r='XFD1000000'><v>1</v></c>", "XFD1000000, which makes 16,384,000,000 cells"),
        ('<c s="0"r="XFD1000000"><v>1</v></c>', "XFD1000000, which makes 16,384,000,000 cells"),
        ('<c t="n" note=">" r="XFD1000000"><v>1</v></c>', "XFD1000000, which makes 16,384,000,000"),
    ],
)
@pytest.mark.usefixtures("no_calamine")
def test_a_far_reference_written_any_way_calamine_reads_is_refused_first(
    tmp_path: Path, cell: str, shown: str
) -> None:
    path = with_rows(tmp_path / "far.xlsx", f'<row r="3">{cell}</row>')
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value).startswith(
        f"far.xlsx: sheet 'Guests' has a value as far out as cell {shown}"
    )
    assert str(caught.value).endswith(
        "; delete what stands beyond the list (in Excel, Ctrl+End goes to the last cell) and "
        "save again"
    )


@pytest.mark.parametrize(
    ("rows", "shown"),
    [
        # a cell without a reference takes the row's number and the column after the last
        ('<row r="1000000">' + "<c/>" * 20 + "<c><v>1</v></c></row>", "U1000000, which makes"),
        ('<row r="3">' + "<c/>" * 16_384 + "<c><v>1</v></c></row>", f"XFE3, {BEYOND}"),
        ("<row></row>" * 1_048_576 + "<row><c><v>1</v></c></row>", f"A1048579, {BEYOND}"),
        # a cell whose value holds a </row>, which calamine passes over: still counted
        (
            '<row r="5000"><c><v>1</c></row><row r="1"></row></v></c>'
            + "<c/>" * 5000
            + "<c><v>1</v></c></row>",
            "GJ",
        ),
    ],
)
@pytest.mark.usefixtures("no_calamine")
def test_cells_without_a_reference_are_counted_where_calamine_puts_them(
    tmp_path: Path, rows: str, shown: str
) -> None:
    path = with_rows(tmp_path / "far.xlsx", rows)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert f"far.xlsx: sheet 'Guests' has a value as far out as cell {shown}" in str(caught.value)


@pytest.mark.usefixtures("no_calamine")
def test_a_sheet_stored_anywhere_in_the_zip_is_checked(tmp_path: Path) -> None:
    """Calamine follows the workbook's links wherever they lead, in any case of letters."""
    path = with_rows(tmp_path / "far.xlsx", '<row r="3"><c r="XFD1048576"><v>1</v></c></row>')
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts["XL/Lists/Guests.XML"] = parts.pop("xl/worksheets/sheet1.xml")
    links = "xl/_rels/workbook.xml.rels"
    parts[links] = parts[links].replace(b"/xl/worksheets/sheet1.xml", b"lists/guests.xml")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert "sheet 'Guests' has a value as far out as cell XFD1048576, which makes" in str(
        caught.value
    )


def test_shared_strings_are_counted_by_the_part_calamine_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small decoy of shared strings elsewhere in the zip does not hide the real ones."""
    monkeypatch.setattr(workbook, "MAX_TEXT", 2**20)
    path = with_rows(
        tmp_path / "bomb.xlsx",
        "".join(f'<row r="{i}"><c r="D{i}" t="s"><v>1</v></c></row>' for i in range(3, 40)),
    )
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    links = "xl/_rels/workbook.xml.rels"
    parts[links] = parts[links].replace(
        b"</Relationships>",
        b'<Relationship Id="rIdS" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    )

    def strings(text: str) -> str:
        return f'<sst xmlns="{main}"><si><t>{text}</t></si><si><t>{text}</t></si></sst>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        target.writestr("xl/decoy/sharedStrings.xml", strings("x"))
        for name, data in parts.items():
            target.writestr(name, data)
        target.writestr("xl/SharedStrings.xml", strings("A" * 50_000))  # calamine's, any case
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert "comes to 2 MB of text once its repeated cells are spelt out" in str(caught.value)


@pytest.mark.usefixtures("no_calamine")
def test_a_far_reference_is_one_line_for_the_command(tmp_path: Path) -> None:
    path = with_rows(tmp_path / "far.xlsx", '<row r="3"><c r="XFD99999999"><v>1</v></c></row>')
    result = invoke("register", str(path), "--dry-run")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"far.xlsx: sheet 'Guests' has a value as far out as cell XFD99999999, {BEYOND}" in (
        result.stderr
    )


def test_cells_written_without_references_and_a_wide_dimension_are_read(tmp_path: Path) -> None:
    """Some programs leave out cells' references; calamine places them, and so is the sheet
    counted. The sheet's stated dimension plays no part (calamine does not go by it)."""
    path = write_workbook(tmp_path / "book.xlsx", {"Guests": [["placeholder"]]})
    rows = (
        "<row>" + "".join(f'<c t="inlineStr"><is><t>{h}</t></is></c>' for h in HEADER) + "</row>"
        '<row r="3"><c t="inlineStr"><is><t>Ann</t></is></c><c/>'
        '<c t="inlineStr"><is><t>ann@example.com</t></is></c></row>'
        '<row><c r="A4" t="inlineStr"><is><t>Bo</t></is></c>'
        '<c t="inlineStr"><is><t>Kim</t></is></c><c t="inlineStr"><is><t>bo@example.com</t>'
        "</is></c></row>"
    )
    with zipfile.ZipFile(path) as made:
        sheet = made.read("xl/worksheets/sheet1.xml").decode()
    data = re.search(r"<sheetData>.*</sheetData>", sheet)
    assert data is not None
    rewrite(path, "xl/worksheets/sheet1.xml", data.group(), f"<sheetData>{rows}</sheetData>")
    rewrite(path, "xl/worksheets/sheet1.xml", 'ref="A1:A1"', 'ref="A1:XFD1048576"')
    table = read_table(path)
    assert [(row.line, row.cells) for row in table.rows] == [
        (3, ("Ann", "", "ann@example.com")),
        (4, ("Bo", "Kim", "bo@example.com")),
    ]


# --- the workbook's own XML ----------------------------------------------------------------------


@pytest.mark.parametrize("tab", ["²", "\u0661", "1x", ""])  # superscript 2, Arabic-Indic 1
def test_an_active_tab_that_is_not_a_plain_number_is_passed_over(tmp_path: Path, tab: str) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {"First": guests(1, "first.example"), "Second": guests(1)},
        active="Second",
    )
    rewrite(path, "xl/workbook.xml", 'activeTab="1"', f'activeTab="{tab}"')
    assert read_table(path).sheet == "First"


STRICT = {
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main": (
        "http://purl.oclc.org/ooxml/spreadsheetml/main"
    ),
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships": (
        "http://purl.oclc.org/ooxml/officeDocument/relationships"
    ),
}


def test_a_strict_open_xml_workbook_says_its_active_sheet_hidden_rows_and_formulas(
    tmp_path: Path,
) -> None:
    path = write_workbook(
        tmp_path / "strict.xlsx",
        {"Old": guests(2, "old.example"), "Guests": [*guests(3), ["Cy", "Orr", "=LOWER(A5)"]]},
        active="Guests",
        hidden_rows={"Guests": [3]},
    )
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name).decode() for name in source.namelist()}
    for name, text in parts.items():
        for transitional, strict in STRICT.items():
            text = text.replace(transitional, strict)
        parts[name] = text.replace("<workbook ", '<workbook conformance="strict" ', 1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, text in parts.items():
            target.writestr(name, text)
    assert b"schemas.openxmlformats.org/spreadsheetml" not in path.read_bytes()
    table = read_table(path)
    assert table.sheet == "Guests"
    assert [row.line for row in table.rows if row.hidden] == [3]
    assert table.rows[3].formulas == ((2, "=LOWER(A5)"),)


def test_hidden_is_the_attribute_of_that_name_alone(tmp_path: Path) -> None:
    """``hidden = "1"`` hides a row; ``x14ac:hidden="1"`` is another attribute."""
    path = write_workbook(
        tmp_path / "book.xlsx", {"Guests": guests(4)}, hidden_rows={"Guests": [3]}
    )
    sheet = "xl/worksheets/sheet1.xml"
    rewrite(path, sheet, 'hidden="1"', "hidden\t=  '1'")
    rewrite(path, sheet, '<row r="4"', '<row r="4" x14ac:hidden="1"')
    assert [row.line for row in read_table(path).rows if row.hidden] == [3]


def error_cells(path: Path) -> Path:
    """Guests whose e-mail cells hold the error values Excel shows: alone, and as a formula's
    result."""
    write_workbook(path, {"Guests": [*guests(1), ["Ann", "Lee", "x"], ["Bo", "Kim", "y"]]})
    sheet = "xl/worksheets/sheet1.xml"
    rewrite(
        path,
        sheet,
        '<c r="C3" t="inlineStr"><is><t>x</t></is></c>',
        '<c r="C3" t="e"><v>#DIV/0!</v></c>',
    )
    rewrite(
        path,
        sheet,
        '<c r="C4" t="inlineStr"><is><t>y</t></is></c>',
        '<c r="C4" t="e"><f>VLOOKUP(A4,People!A:B,2,FALSE)</f><v>#N/A</v></c>',
    )
    return path


def test_a_cell_holding_an_error_value_is_marked_with_it(tmp_path: Path) -> None:
    """Calamine reads an error value as an empty cell: the reader says which error it was."""
    table = read_table(error_cells(tmp_path / "book.xlsx"))
    assert [(row.line, row.cells[2], row.formulas) for row in table.rows] == [
        (2, "guest0@example.com", ()),
        (3, "", ((2, "#DIV/0!"),)),
        (4, "", ((2, "#N/A"),)),
    ]


def test_a_cell_holding_an_error_value_is_named_not_called_empty(tmp_path: Path) -> None:
    outcome = importer.check(error_cells(tmp_path / "book.xlsx"))
    assert [(p.line, p.column, p.message) for p in outcome.problems] == [
        (
            line,
            "email",
            f"the cell holds an Excel error ({error}); correct it in Excel and save the file, "
            "then run again",
        )
        for line, error in ((3, "#DIV/0!"), (4, "#N/A"))
    ]


# --- CSV in every Unicode encoding ------------------------------------------------------------

TEXT = (
    "firstName;lastName;email\r\n"
    "Zoë;Ångström;zoe@example.com\r\n"
    "Иван;Петров;ivan@example.ru\r\n"
    "李;小龍;li@example.cn\r\n"
    "Emma 😀;O'Neil;emma@example.com\r\n"
)


@pytest.mark.parametrize(
    ("encoding", "mark"),
    [
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
        ("utf-32-le", b""),
        ("utf-32-be", b""),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
    ],
)
def test_csv_in_every_unicode_encoding(tmp_path: Path, encoding: str, mark: bytes) -> None:
    path = tmp_path / "guests.csv"
    path.write_bytes(mark + TEXT.encode(encoding))
    table = read_table(path)
    assert table.headers == ("firstName", "lastName", "email")
    assert [row.cells for row in table.rows] == [
        tuple(line.split(";")) for line in TEXT.splitlines()[1:]
    ]
    assert table.notes == ()
    assert importer.check(path).exit_code == EXIT_OK


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"%PDF-1.7\n%\x00\x01\x02",
            "guests.csv: holds binary data, not text: it looks like a PDF document; export the "
            "list from where it came as CSV UTF-8 or .xlsx",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504),
            "guests.csv: holds binary data, not text: it looks like an Excel 97-2003 workbook "
            "(.xls) or another Office file; open it in Excel and save it as .xlsx or CSV UTF-8",
        ),
        (
            ("email\n" + "guest@example.com\n" * 200 + "bad\x00line\n").encode(),
            "guests.csv: is text with 1 NUL byte in it (the first in line 202), which no "
            "spreadsheet program writes; export the list again as CSV UTF-8, or remove them",
        ),
        (
            bytes(range(256)) * 4,
            "guests.csv: holds binary data, not text (a NUL byte in line 1, at byte 0); export "
            "the list as CSV UTF-8 or .xlsx",
        ),
        (
            codecs.BOM_UTF32_LE + "email\n".encode("utf-32-le") + b"\x00\x00\x11\x00",
            "guests.csv: is damaged: broken UTF-32 text at byte 24; open it in Excel and save "
            "it again as 'CSV UTF-8'",
        ),
    ],
)
def test_other_files_with_nul_bytes_say_what_they_seem_to_be(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "guests.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert str(caught.value) == message
    result = invoke("register", str(path), "--dry-run")
    assert result.exit_code == EXIT_USAGE
    assert f"Error: {message}\n" in result.stderr
