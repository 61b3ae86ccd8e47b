"""The XLSX writer: its workbooks read back by openpyxl, as Excel would show them, and by this
tool's own reader."""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from importer import files, report
from importer.model import Status
from importer.read import reader
from importer.report import xlsx as report_xlsx
from importer.report.outcome import write_attention

KEY = "8325357307900339981"
URL = f"https://global.gotowebinar.com/join/{KEY}/1234567890123456789"
LONG = "x" * 40_000
WORLD = "Grüße, 日本 😀"
MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
#: CT_Worksheet's children, in the order ECMA-376 requires them
WORKSHEET_ORDER = [
    "sheetPr",
    "dimension",
    "sheetViews",
    "sheetFormatPr",
    "cols",
    "sheetData",
    "sheetCalcPr",
    "sheetProtection",
    "protectedRanges",
    "scenarios",
    "autoFilter",
    "sortState",
    "dataConsolidate",
    "customSheetViews",
    "mergeCells",
    "phoneticPr",
    "conditionalFormatting",
    "dataValidations",
    "hyperlinks",
    "printOptions",
    "pageMargins",
    "pageSetup",
    "headerFooter",
]


def made() -> report.Report:
    headers = ("row", "firstName", "lastName", "email", "Notes", "status", "registrantKey")
    rows: list[tuple[int | str, ...]] = [
        (2, "Ann", "Lee", "ann@example.com", '=HYPERLINK("http://e")', "registered", KEY, URL, ""),
        (3, "  Bo", "Kim ", "bo@example.com", WORLD, "already_registered", "1", "http://j/2", ""),
        (4, "Cy", "Orr\x07", "cy@example.com", "-5", "invalid", "", "", "Email: is not valid"),
        (5, "Di", "Ng", "di@example.com", LONG, "failed", "", "'https://quoted", "GoTo refused"),
        (6, "Ed", "Po", "ed@example.com", "a & b <c>\r\n_x0041_", "pending", "", "https://a b", ""),
        (7, "Fay", "Wu", "fay@example.com", "@risk", "denied", "", "", ""),
    ]
    return report.Report(
        (*headers, "joinUrl", "error"),
        rows,
        [Status(str(row[5])) for row in rows],
        (("Input file", "people.csv"), ("Rows", 6), ("Pending", "+1 to send")),
    )


@pytest.fixture
def written(tmp_path: Path) -> Path:
    return report.write(made(), tmp_path / "people-joinurls.xlsx")


def registrants(path: Path) -> Worksheet:
    sheet = load_workbook(path)["Registrants"]
    assert isinstance(sheet, Worksheet)
    return sheet


def shown(width: float | None) -> float:
    """A column's width as Excel shows it: the file holds it with the cell's padding, 5 pixels
    of a 7-pixel character."""
    assert width is not None
    return round(width - 0.7109375, 4)


def test_values_keep_their_kind_and_nothing_is_a_formula(written: Path) -> None:
    sheet = registrants(written)
    cells = [cell for row in sheet.iter_rows() for cell in row]
    assert all(cell.data_type in ("s", "n") for cell in cells if cell.value is not None)
    assert [cell.value for cell in sheet[1]] == list(made().headers)
    assert (sheet["A2"].value, sheet["A2"].data_type) == (2, "n")
    assert (sheet["G2"].value, sheet["G2"].data_type) == (KEY, "s")
    assert (sheet["G3"].value, sheet["G3"].data_type) == ("1", "s")  # text, though a number
    assert sheet["E2"].value == '=HYPERLINK("http://e")'
    assert sheet["E3"].value == WORLD
    assert sheet["B3"].value == "  Bo"  # spaces kept at both ends
    assert sheet["C3"].value == "Kim "
    assert sheet["C4"].value == "Orr\ufffd"  # a bell: no XML can hold it
    assert sheet["E5"].value == "x" * 32_767  # Excel's most for a cell
    # a carriage return and a literal "_x0041_" as the file holds them, escaped as Excel reads
    # them (openpyxl leaves the escapes of inline text as they are; the reader test reads them)
    assert sheet["E6"].value == "a & b <c>_x000D_\n_x005F_x0041_"
    assert sheet["I2"].value is None  # empty text is an empty cell
    assert sheet.max_row == 7


def test_text_that_starts_like_a_formula_has_a_quote_prefix(written: Path) -> None:
    sheet = registrants(written)
    quoted = {cell.coordinate for row in sheet.iter_rows() for cell in row if cell.quotePrefix}
    assert quoted == {"E2", "E4", "E7"}  # =…, -5, @risk
    summary = load_workbook(written)["Summary"]
    assert summary["B5"].value == "+1 to send"
    assert summary["B5"].quotePrefix


def test_header_is_bold_frozen_and_filtered(written: Path) -> None:
    sheet = registrants(written)
    assert all(cell.font.b for cell in sheet[1])
    assert not any(cell.font.b for cell in sheet[2])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:I7"
    with zipfile.ZipFile(written) as book:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
    (name,) = workbook.iter(f"{MAIN}definedName")
    assert name.attrib == {"name": "_xlnm._FilterDatabase", "localSheetId": "1", "hidden": "1"}
    assert name.text == "Registrants!$A$1:$I$7"


def test_each_row_is_filled_with_its_status_colour_empty_cells_too(written: Path) -> None:
    sheet = registrants(written)
    expected = [report.GREEN, report.PALE_GREEN, report.RED, report.RED, report.YELLOW, report.RED]
    for row, colour in zip(sheet.iter_rows(min_row=2), expected, strict=True):
        for cell in row:
            assert cell.fill.patternType == "solid", cell.coordinate
            assert cell.fill.fgColor.rgb[-6:] == colour, cell.coordinate
    assert sheet["I2"].value is None
    assert sheet["I2"].fill.fgColor.rgb[-6:] == report.GREEN
    assert sheet["A1"].fill.patternType is None


def test_web_addresses_in_the_join_url_column_are_links(written: Path) -> None:
    sheet = registrants(written)
    linked = {cell.coordinate: cell for row in sheet.iter_rows() for cell in row if cell.hyperlink}
    assert set(linked) == {"H2", "H3"}  # not "'https://…", not an address with a space
    assert linked["H2"].hyperlink.target == URL
    assert linked["H3"].hyperlink.target == "http://j/2"
    for cell in linked.values():
        assert cell.style == "Hyperlink"
        assert cell.font.u == "single"
        assert cell.font.color.rgb[-6:] == "0563C1"
        assert cell.fill.patternType == "solid"  # and still in its row's colour
    assert linked["H3"].fill.fgColor.rgb[-6:] == report.PALE_GREEN
    assert sheet["H6"].style == "Normal"
    assert sheet["H6"].value == "https://a b"
    with zipfile.ZipFile(written) as book:
        rels = ElementTree.fromstring(book.read("xl/worksheets/_rels/sheet2.xml.rels"))
    assert [(rel.get("Target"), rel.get("TargetMode")) for rel in rels] == [
        (URL, "External"),
        ("http://j/2", "External"),
    ]


def test_column_widths_and_printing(written: Path) -> None:
    sheet = registrants(written)
    widths = list(report.widths(made()))
    assert [shown(sheet.column_dimensions[c].width) for c in "ABCDEFGHI"] == widths
    assert shown(sheet.column_dimensions["E"].width) == 90  # the longest text is capped
    assert sheet.page_setup.orientation == "landscape"
    assert (sheet.page_setup.fitToWidth or 1, sheet.page_setup.fitToHeight) == (1, 0)  # 1 if unsaid
    assert sheet.sheet_properties.pageSetUpPr.fitToPage


def test_summary_sheet_comes_first(written: Path) -> None:
    book = load_workbook(written)
    assert book.sheetnames == ["Summary", "Registrants"]
    assert book.active is not None
    assert book.active.title == "Summary"
    summary = book["Summary"]
    rows = list(summary.iter_rows(values_only=True))
    assert rows == [
        ("Registration report", None),
        (None, None),
        ("Input file", "people.csv"),
        ("Rows", 6),
        ("Pending", "+1 to send"),
    ]
    assert summary["A1"].font.b
    assert summary["A1"].font.sz == 14
    assert all(summary[f"A{n}"].font.b for n in (3, 4, 5))
    assert not any(summary[f"B{n}"].font.b for n in (3, 4, 5))
    assert summary["B4"].data_type == "n"
    assert shown(summary.column_dimensions["A"].width) == 22
    assert shown(summary.column_dimensions["B"].width) == 80
    assert (summary.page_setup.fitToWidth or 1, summary.page_setup.fitToHeight) == (
        1,
        0,
    )  # 1 if unsaid
    assert summary.sheet_properties.pageSetUpPr.fitToPage
    assert summary.freeze_panes is None


def test_the_tools_own_reader_reads_it_back(written: Path) -> None:
    table = reader.read_table(written, sheet="Registrants")
    assert table.headers == made().headers
    first, second = table.rows[0].cells, table.rows[1].cells
    assert first[:4] == ("2", "Ann", "Lee", "ann@example.com")
    assert first[6:8] == (KEY, URL)
    assert second[1:3] == ("  Bo", "Kim ")
    assert second[4] == WORLD
    assert table.rows[4].cells[4] == "a & b <c>\r\n_x0041_"
    assert len(table.rows[3].cells[4]) == 32_767
    assert report._join_urls(written) == report._join_urls(made())


def test_every_part_is_well_formed_and_where_the_package_says(written: Path) -> None:
    with zipfile.ZipFile(written) as book:
        names = book.namelist()
        parts = {name: ElementTree.fromstring(book.read(name)) for name in names}
    assert names[0] == "[Content_Types].xml"
    types = parts["[Content_Types].xml"]
    overridden = {
        item.get("PartName", "").lstrip("/") for item in types if "PartName" in item.attrib
    }
    assert overridden == {name for name in names if name.endswith(".xml")} - {"[Content_Types].xml"}
    for name, root in parts.items():
        if not name.endswith(".rels"):
            continue
        folder = name.replace("_rels/", "").removesuffix(".rels").rpartition("/")[0]
        for rel in root.iter(f"{RELS}Relationship"):
            if rel.get("TargetMode") != "External":
                target = "/".join(filter(None, (folder, rel.get("Target", ""))))
                assert target in names, (name, target)
    styles = parts["xl/styles.xml"]
    fills = [fill[0].get("patternType") for fill in styles.iter(f"{MAIN}fill")]
    assert fills[:2] == ["none", "gray125"]
    assert {(s.get("name"), s.get("builtinId")) for s in styles.iter(f"{MAIN}cellStyle")} == {
        ("Normal", "0"),
        ("Hyperlink", "8"),
    }
    for number in (1, 2):
        sheet = parts[f"xl/worksheets/sheet{number}.xml"]
        order = [WORKSHEET_ORDER.index(child.tag.removeprefix(MAIN)) for child in sheet]
        assert order == sorted(order), [child.tag for child in sheet]
    formats = len(next(styles.iter(f"{MAIN}cellXfs")))
    cells = [cell for n in (1, 2) for cell in parts[f"xl/worksheets/sheet{n}.xml"].iter(f"{MAIN}c")]
    # text is written in its cell (no shared strings), and no cell holds a formula
    assert {cell.get("t") for cell in cells} == {"inlineStr", None}
    assert not any(cell.find(f"{MAIN}f") is not None for cell in cells)
    assert all(0 <= int(cell.get("s", 0)) < formats for cell in cells)


def test_needs_attention_file_has_no_summary_and_no_fill(tmp_path: Path) -> None:
    attention = report.Report(
        ("email", "webinarKey", "error"),
        [],
        [],
        attention_headers=("email", "webinarKey", "error"),
        attention=[(" ann@example", KEY, "Email: is not valid"), ("=1+1", KEY, "")],
    )
    path = write_attention(attention, tmp_path / "people-needs-attention.xlsx")
    assert path == tmp_path / "people-needs-attention.xlsx"
    book = load_workbook(path)
    assert book.sheetnames == ["Needs attention"]
    sheet = book["Needs attention"]
    assert list(sheet.iter_rows(values_only=True)) == [
        ("email", "webinarKey", "error"),
        (" ann@example", KEY, "Email: is not valid"),
        ("=1+1", KEY, None),
    ]
    assert all(cell.fill.patternType is None for row in sheet.iter_rows() for cell in row)
    assert sheet["A3"].quotePrefix
    assert sheet.auto_filter.ref == "A1:C3"
    with zipfile.ZipFile(path) as zipped:
        workbook = zipped.read("xl/workbook.xml").decode()
    assert 'localSheetId="0" hidden="1">\'Needs attention\'!$A$1:$C$3<' in workbook


def test_more_rows_than_a_sheet_holds_go_to_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_xlsx, "MAX_ROWS", 6)  # a header and five rows
    notes: list[str] = []
    written = report.write(made(), tmp_path / "out.xlsx", notes.append)
    assert written == tmp_path / "out.csv"
    with written.open(encoding="utf-8-sig", newline="") as handle:
        assert len(list(csv.reader(handle))) == 7
    assert notes == [
        "out.xlsx could not be written as XLSX (it has more rows or columns than a sheet holds); "
        "the report was written to out.csv instead"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
    attention = report.Report((), [], [], (), ("email", "error"), [("a@b", "x")] * 6)
    old = tmp_path / "fix.xlsx"
    old.write_bytes(b"an old run's")
    assert write_attention(attention, old) == tmp_path / "fix.csv"
    assert not old.exists()


def test_what_no_sheet_can_be_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    wide = report_xlsx.Rows("Wide", ["h"] * 16_385, [], [])
    with pytest.raises(ValueError, match=r"16,385 columns, more than .* 16,384 columns"):
        report_xlsx.write(path, [wide])
    with pytest.raises(ValueError, match="cannot name an Excel sheet"):
        report_xlsx.write(path, [report_xlsx.Rows("a/b", ["h"], [], [])])
    with pytest.raises(ValueError, match="no RGB colour"):
        report_xlsx.write(path, [report_xlsx.Rows("T", ["h"], [["x"]], ["green"])])
    with pytest.raises(ValueError, match="share a name"):
        report_xlsx.write(
            path, [report_xlsx.Summary("S", ()), report_xlsx.Summary("S", (), name="summary")]
        )


def test_links_past_excels_limits_stay_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_xlsx, "LINK_LIMIT", 2)
    too_long = "https://e/" + "a" * report_xlsx.URL_LIMIT
    rows = [["https://e/1"], [too_long], ["https://e/2"], ["https://e/3"]]
    path = tmp_path / "links.xlsx"
    report_xlsx.write(path, [report_xlsx.Rows("Links", ["joinUrl"], rows, [None] * 4, link=0)])
    sheet = load_workbook(path)["Links"]
    linked = [cell.value for (cell,) in sheet.iter_rows(min_row=2) if cell.hyperlink]
    assert linked == ["https://e/1", "https://e/2"]
    assert [cell.style for (cell,) in sheet.iter_rows(min_row=2)] == [
        "Hyperlink",
        "Normal",
        "Hyperlink",
        "Normal",
    ]


def test_text_is_cut_where_excel_counts_utf16_units(tmp_path: Path) -> None:
    path = tmp_path / "cut.xlsx"
    report_xlsx.write(
        path, [report_xlsx.Rows("T", ["h"], [["😀" * 20_000], [" " * 40_000 + "x"]], [None] * 2)]
    )
    sheet = load_workbook(path)["T"]
    assert sheet["A2"].value == "😀" * 16_383  # two units each: 32,766, and half of one dropped
    assert sheet["A3"].value == " " * 32_767  # still all spaces


def test_the_report_no_longer_imports_openpyxl(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys; from pathlib import Path; from importer import report; "
        f"report.write_xlsx(report.Report(('a',), [('b',)], [report.Status.PENDING]), "
        f"Path({str(tmp_path / 'r.xlsx')!r})); print('openpyxl' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
    assert re.match(rb"PK\x03\x04", (tmp_path / "r.xlsx").read_bytes())


def test_text_that_looks_like_a_number_a_date_or_an_address_stays_text(tmp_path: Path) -> None:
    texts = ["1e5", "0012", "TRUE", "#N/A", "2024-01-31", "http://e/x", "=A1", "{=A1}"]
    path = tmp_path / "kinds.xlsx"
    report_xlsx.write(path, [report_xlsx.Rows("T", ["h"], [[text] for text in texts], [None] * 8)])
    sheet = load_workbook(path)["T"]
    cells = [cell for (cell,) in sheet.iter_rows(min_row=2)]
    assert [(cell.value, cell.data_type) for cell in cells] == [(text, "s") for text in texts]
    assert not any(cell.hyperlink for cell in cells)  # no link column: no links


def test_rows_added_one_by_one_under_a_summary_filled_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "streamed.xlsx"
    book = report_xlsx.Book(path, ["Summary", "Rows"])
    table = book.table("Rows", ["n", "joinUrl"], link=1)
    for number in range(1, 4):
        table.add([number, f"https://e/{number}"], report.GREEN if number % 2 else None)
        assert not path.exists()  # nothing there before the workbook is closed
    table.finish([8.0, 30.0])
    book.summary(report_xlsx.Summary("Streamed", [("Rows", 3)]))
    book.close()
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["Summary", "Rows"]
    assert list(workbook["Summary"].values) == [("Streamed", None), (None, None), ("Rows", 3)]
    sheet = workbook["Rows"]
    assert list(sheet.values) == [("n", "joinUrl"), *((n, f"https://e/{n}") for n in (1, 2, 3))]
    assert [cell.hyperlink.target for cell in sheet["B"][1:]] == [
        f"https://e/{n}" for n in (1, 2, 3)
    ]
    assert [sheet[f"A{n}"].fill.patternType for n in (2, 3, 4)] == ["solid", None, "solid"]
    assert sheet.auto_filter.ref == "A1:B4"
    assert sheet.freeze_panes == "A2"


def test_a_row_past_the_last_a_sheet_holds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_xlsx, "MAX_ROWS", 3)  # a header and two rows
    aside = files.temp_folder()  # where XlsxWriter keeps the rows until the file is written
    assert aside is not None
    path = tmp_path / "full.xlsx"
    refused = pytest.raises(ValueError, match="4 rows of 1 columns, more than the 3 rows")
    with refused, report_xlsx.Book(path, ["T"]) as book:
        table = book.table("T", ["h"])
        table.add(["a"])
        table.add(["b"])
        with pytest.raises(ValueError, match="16,385 columns"):
            table.add(["x"] * 16_385)
        table.add(["c"])
    assert not path.exists()
    assert list(aside.iterdir()) == []  # the rows kept aside until the end are gone too
