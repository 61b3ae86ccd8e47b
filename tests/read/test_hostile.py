"""Hostile input: every malformed file is one line and exit 2; random input never crashes."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from importer.checks.validate import validate
from importer.errors import InputError
from importer.model import Table
from importer.read.columns import looks_like_header
from importer.read.reader import read_table
from tests.helpers import invoke

FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def refused(path: Path) -> str:
    """Run the command on ``path``; assert exit 2 with one line and no traceback."""
    result = invoke("register", str(path), "--sandbox")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"Error: {path.name}: ")
    return result.stderr


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("firstName,lastName,email\n\n,,\n")
    assert "has a header in line 1 but no rows below it" in refused(path)


def test_header_only_workbook(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["firstName", "lastName", "email"])
    book.save(tmp_path / "header.xlsx")
    assert "no rows below it" in refused(tmp_path / "header.xlsx")


def test_huge_single_line(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("firstName,lastName,email\nAnn,Lee," + "x" * 400_000 + "\n")
    assert "cannot be read as CSV" in refused(path)


def test_mixed_delimiters(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text("firstName,lastName,email\nAnn;Lee;ann@example.com\nBo;Kim;bo@example.com\n")
    assert "the header is separated by commas but most rows by semicolons" in refused(path)


def test_password_protected_workbook(tmp_path: Path) -> None:
    # An encrypted workbook is an OLE2 container, not a zip.
    path = tmp_path / "secret.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 20)
    assert "password-protected" in refused(path)


def test_corrupt_workbook(tmp_path: Path) -> None:
    book = Workbook()
    book.active.append(["firstName", "lastName", "email"])
    book.save(tmp_path / "good.xlsx")
    data = (tmp_path / "good.xlsx").read_bytes()
    (tmp_path / "cut.xlsx").write_bytes(data[: len(data) // 2])
    assert "cannot be opened as an Excel workbook" in refused(tmp_path / "cut.xlsx")


def test_formula_cells_and_merged_header_are_read_without_surprises(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Guest list"])
    sheet.merge_cells("A1:C1")
    sheet.append(["firstName", "lastName", "email", "Note"])
    sheet.append(["Ann", "Lee", "ann@example.com", "=1+2"])
    sheet.append(["Bo", "Kim", '=LOWER("BO@EXAMPLE.COM")', ""])
    book.save(tmp_path / "formulas.xlsx")
    table = read_table(tmp_path / "formulas.xlsx")
    assert table.header_line == 2
    # A formula written by a program has no cached value: the row is reported, saying so,
    # never sent with a formula's text.
    plan = validate(table)
    assert [p.line for p in plan.registrants] == [3]
    assert plan.problems[4][0].message.startswith(
        'the cell holds a formula (=LOWER("BO@EXAMPLE.COM")) that Excel has not calculated'
    )


@FUZZ
@given(
    data=st.binary(max_size=3000),
    suffix=st.sampled_from([".csv", ".txt", ".xlsx"]),
    prefix=st.sampled_from([b"", b"PK\x03\x04", b"firstName,lastName,email\n"]),
)
def test_random_bytes_never_crash_the_reader(
    tmp_path: Path, data: bytes, suffix: str, prefix: bytes
) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(prefix + data)
    outcome: Table | InputError
    try:
        outcome = read_table(path)
    except InputError as exc:
        outcome = exc
    if isinstance(outcome, InputError):
        assert "\n" not in str(outcome)
    else:
        assert all(len(row.cells) == len(outcome.headers) for row in outcome.rows)


cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
)
emails = st.sampled_from(["ann@example.com", "ANN@example.com", "bo@example.org", "bad@", ""])


@FUZZ
@given(rows=st.lists(st.tuples(cell, cell, st.one_of(emails, cell), cell), max_size=40))
def test_every_row_is_accounted_for(tmp_path: Path, rows: list[tuple[str, ...]]) -> None:
    assume(not any(looks_like_header(row) for row in rows))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["firstName", "lastName", "email", "Notes"])
    writer.writerows(rows)
    path = tmp_path / "rows.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
    try:
        table = read_table(path)
    except InputError:
        assert not any(any(c.strip() for c in row) for row in rows)  # header only
        return
    plan = validate(table)
    assert len(table.rows) + table.blank_rows == len(rows)
    sent, invalid, duplicate = len(plan.registrants), len(plan.problems), len(plan.duplicates)
    assert sent + invalid + duplicate == len(table.rows)
    assert set(plan.problems).isdisjoint(plan.duplicates)


@pytest.mark.parametrize("name", ["utf16.csv", "semicolon_cp1252.csv"])
def test_encodings_reach_the_plan(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    text = "Vorname;Nachname;E-Mail\nJürgen;Müller;j@example.de\n"
    path.write_bytes(text.encode("utf-16" if name.startswith("utf16") else "cp1252"))
    plan = validate(read_table(path))
    assert isinstance(plan.table, Table)
    assert plan.registrants[0].last_name == "Müller"


def _attribute(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """An attribute as programs, and people, write them: either quotes, spaces about ``=``."""
    return st.builds(
        lambda value, quote, space: f" {name}{space}={space}{quote}{value}{quote}",
        values,
        st.sampled_from(['"', "'"]),
        st.sampled_from(["", " ", "\t"]),
    )


_column = st.integers(1, 9).map(lambda n: "ABCDEFGHI"[n - 1])
_reference = st.builds(
    lambda letters, number, lower, zeros: (
        (letters.lower() if lower else letters) + ("00" if zeros else "") + str(number)
    ),
    _column,
    st.integers(1, 9),
    st.booleans(),
    st.booleans(),
)
_odd = st.sampled_from(["", ' note=">"', " note='</row>'", ' note="&lt;c r=&quot;I9&quot;&gt;"'])
_content = st.sampled_from(
    [
        "<v>1</v>",
        "<is><t>a</t></is>",
        "<f>1+1</f><v>2</v>",
        "<v></v>",
        "<v>1</c><row r='1'></row></v>",  # calamine reads on to </v>, past the </row>
        "<is><row r='1'></row><t>b</t></is>",
        "<v>3<![CDATA[</c></row>]]></v>",
        "<!-- </c><row r='1'> --><v>4</v>",
    ]
)
_cell = st.builds(
    lambda prefix, reference, odd, content, empty: (
        f"<{prefix}c{reference}{odd}" + ("/>" if empty else f">{content}</{prefix}c>")
    ),
    st.sampled_from(["", "x:"]),
    st.one_of(st.just(""), _attribute("r", _reference)),
    _odd,
    _content,
    st.booleans(),
)
_row = st.builds(
    lambda prefix, number, cells, between: (
        f"<{prefix}row{number}>" + between.join(cells) + f"</{prefix}row>"
    ),
    st.sampled_from(["", "x:"]),
    st.one_of(st.just(""), _attribute("r", st.integers(1, 9).map(str))),
    st.lists(_cell, max_size=6),
    st.sampled_from(["", "<!-- <row r='9'> -->", "<?pi ?>", "text"]),
)


@FUZZ
@given(rows=st.lists(_row, max_size=6))
def test_no_sheet_reaches_calamine_larger_than_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[str]
) -> None:
    """However cells are written (without references, in lower case, with spaces or single
    quotes, with markup inside them), calamine is never given a sheet whose grid is larger
    than the workbook's checks allow."""
    from python_calamine import CalamineWorkbook

    from importer.read import workbook

    monkeypatch.setattr(workbook, "MAX_CELLS", 30)
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    path = tmp_path / "odd.xlsx"
    if not path.exists():
        Workbook().save(path)
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    parts["xl/worksheets/sheet1.xml"] = (
        f'<worksheet xmlns="{main}" xmlns:x="{main}"><sheetData>{"".join(rows)}</sheetData>'
        "</worksheet>"
    ).encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    try:
        workbook._inspect(path)
    except InputError:
        return
    try:
        book = CalamineWorkbook.from_path(str(path))
        grid = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except Exception:  # calamine cannot read it: nothing to hold in memory
        return
    assert len(grid) * max(map(len, grid), default=0) <= 30
