"""Reading CSV and Excel files into text rows with their spreadsheet line numbers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from importer.errors import InputError
from importer.read.columns import ColumnMap
from importer.read.reader import read_table
from tests.helpers import DATA, write_workbook


def cells(path: Path, **options: Any) -> list[tuple[int, tuple[str, ...]]]:
    return [(row.line, row.cells) for row in read_table(path, **options).rows]


def test_utf8_with_bom() -> None:
    table = read_table(DATA / "utf8_bom.csv")
    assert table.headers == ("firstName", "lastName", "email")
    assert cells(DATA / "utf8_bom.csv") == [(2, ("Zoë", "Ångström", "zoe@example.com"))]
    assert table.notes == ()


def test_invisible_characters_in_headers_do_not_hide_a_column(tmp_path: Path) -> None:
    """A second byte-order mark (a file saved twice by different programs), or a zero-width
    space pasted with a header, is invisible in every program: it must not hide the column."""
    path = tmp_path / "guests.csv"
    path.write_bytes(
        (
            "\ufeff\ufefffirstName,last\u200bName *\u200b,\u2060E\u00admail:\u200d\n"
            "A,B,a@example.com\n"
        ).encode()
    )
    table = read_table(path)
    assert ColumnMap.from_headers(table.headers).positions == {
        "firstName": 0,
        "lastName": 1,
        "email": 2,
    }


def test_excel_legacy_csv_is_read_as_windows_1252_with_a_warning() -> None:
    table = read_table(DATA / "semicolon_cp1252.csv")
    assert table.headers == ("Vorname", "Nachname", "E-Mail-Adresse", "Firma")
    assert table.rows[0].cells == (
        "Jürgen",
        "Müller",
        "juergen.mueller@example.de",
        "Bäckerei Süß GmbH",
    )
    assert table.rows[1].cells[3] == "Café €uro"
    assert len(table.notes) == 1
    assert "Windows-1252" in table.notes[0]
    assert table.notes[0].startswith("semicolon_cp1252.csv:")


def test_tab_delimited_text() -> None:
    assert cells(DATA / "tab_delimited.txt") == [
        (2, ("Ann", "Lee", "ann@example.com")),
        (3, ("Bo", "Kim", "bo@example.com")),
    ]


def test_utf16_unicode_text_from_excel() -> None:
    assert cells(DATA / "utf16_unicode_text.txt") == [(2, ("Łucja", "Nowak", "lucja@example.pl"))]


def test_delimiter_inside_quotes_does_not_confuse_detection() -> None:
    table = read_table(DATA / "semicolon_in_quotes.csv")
    assert table.headers == ("firstName", "lastName", "email", "Company")
    assert table.rows[0].cells[3] == "Lee, Kim & Partners"


def test_header_below_a_title_keeps_spreadsheet_line_numbers() -> None:
    table = read_table(DATA / "title_above_header.csv")
    assert table.header_line == 4
    assert table.headers == ("First name", "Surname", "E-mail")
    assert cells(DATA / "title_above_header.csv") == [(5, ("Ann", "Lee", "ann@example.com"))]


def test_blank_rows_are_skipped_and_counted() -> None:
    table = read_table(DATA / "blank_rows.csv")
    assert [row.line for row in table.rows] == [2, 5]
    assert table.blank_rows == 3


def test_quoted_newlines_stay_in_their_cell_and_lines_count_records() -> None:
    rows = cells(DATA / "quoted_newlines.csv")
    assert rows[0] == (2, ("Ann", "Lee", "ann@example.com", "first line\nsecond line"))
    assert rows[1][0] == 3


def test_ragged_rows_are_padded_and_extra_cells_get_a_header(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("firstName,lastName,email\nAnn,Lee\nBo,Kim,bo@example.com,extra\n")
    table = read_table(path)
    assert table.headers == ("firstName", "lastName", "email", "column D")
    assert table.rows[0].cells == ("Ann", "Lee", "", "")
    assert table.rows[1].cells == ("Bo", "Kim", "bo@example.com", "extra")


def test_apostrophe_marking_a_formula_start_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "marked.csv"
    path.write_text(
        "firstName,lastName,email,phone,note\nAnn,O'Neil,a@example.com,'+49 1,'quoted\n"
    )
    assert read_table(path).rows[0].cells == ("Ann", "O'Neil", "a@example.com", "+49 1", "'quoted")


def test_cells_stay_text_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text("firstName,lastName,email,zip,phone\nNA,NULL,na@example.com,01234,+4930 1\n")
    assert read_table(path).rows[0].cells == ("NA", "NULL", "na@example.com", "01234", "+4930 1")


def test_xlsx_header_not_on_row_one_and_typed_cells(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "people.xlsx",
        {
            "Guests": [
                ["Spring launch guest list"],
                [],
                ["First Name", "Last Name", "Email", "Phone", "Joined", "Score", "VIP", "Zip"],
                [
                    "Ann",
                    "Lee",
                    "ann@example.com",
                    4915112345678,
                    dt.datetime(2024, 5, 1),
                    3.5,
                    True,
                    "01234",
                ],
                [],
                [
                    "Bo",
                    "Kim",
                    "bo@example.com",
                    12,
                    dt.datetime(2024, 5, 1, 13, 45),
                    2.0,
                    False,
                    1234,
                ],
            ]
        },
    )
    table = read_table(path)
    assert table.sheet == "Guests"
    assert table.header_line == 3
    assert cells(path) == [
        (
            4,
            (
                "Ann",
                "Lee",
                "ann@example.com",
                "4915112345678",
                "2024-05-01",
                "3.5",
                "TRUE",
                "01234",
            ),
        ),
        (6, ("Bo", "Kim", "bo@example.com", "12", "2024-05-01 13:45:00", "2", "FALSE", "1234")),
    ]


def test_xlsx_first_sheet_with_an_email_column_is_used(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {
            "Read me": [["How to use this workbook"], ["Fill the second sheet"]],
            "People": [["firstName", "lastName", "email"], ["Ann", "Lee", "ann@example.com"]],
        },
    )
    table = read_table(path)
    assert table.sheet == "People"
    assert table.describe() == "book.xlsx, sheet 'People'"
    assert cells(path) == [(2, ("Ann", "Lee", "ann@example.com"))]


def test_xlsx_sheet_can_be_chosen(tmp_path: Path) -> None:
    path = write_workbook(
        tmp_path / "book.xlsx",
        {
            "A": [["firstName", "lastName", "email"], ["Ann", "Lee", "ann@example.com"]],
            "B": [["firstName", "lastName", "email"], ["Bo", "Kim", "bo@example.com"]],
        },
    )
    assert cells(path, sheet="B") == [(2, ("Bo", "Kim", "bo@example.com"))]
    with pytest.raises(
        InputError, match=r"^book\.xlsx: has no sheet 'C'; its sheets are 'A', 'B'$"
    ):
        read_table(path, sheet="C")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, r"no such file"),
        ("empty.csv", b"", r"^empty\.csv: the file is empty"),
        ("blank.csv", b"  \r\n\r\n", r"^blank\.csv: the file is empty"),
        ("garbage.csv", bytes(range(256)) * 4, r"^garbage\.csv: holds binary data"),
        ("fake.xlsx", b"firstName,lastName,email\n", r"^fake\.xlsx: is not an Excel workbook"),
        ("zip.csv", b"PK\x03\x04" + b"\x00" * 64, r"^zip\.csv: is an Excel workbook"),
        ("broken.xlsx", b"PK\x03\x04not really a zip", r"^broken\.xlsx: cannot be opened as an"),
        ("notes.pdf", b"%PDF-1.4", r"^notes\.pdf: cannot read '\.pdf' files"),
        ("names.csv", b"first,last\nAnn,Lee\n", r"^names\.csv: no e-mail column found .*'first'"),
    ],
)
def test_unusable_files_give_one_line_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as caught:
        read_table(path)
    assert "\n" not in str(caught.value)


def test_workbook_without_an_email_column_says_so(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "book.xlsx", {"S": [["Name", "Company"], ["Ann Lee", "Acme"]]})
    with pytest.raises(InputError, match=r"no e-mail column found in the first 10 rows"):
        read_table(path)
