"""Excel workbooks (.xlsx, .xlsm), read with python-calamine: cells as the text Excel shows."""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from .columns import fold
from .errors import InputError
from .grid import (
    HEADER_SEARCH_ROWS,
    build_table,
    column_letter,
    header_index,
    no_email_column,
    read_settings,
)
from .models import Table


def read(path: Path, sheet: str | None) -> Table:
    """The first sheet with an e-mail column (or the one named), and the Settings sheet."""
    # python-calamine directly: pandas' read_excel over the same engine spends longer converting
    # cells than calamine spends parsing the file.
    from python_calamine import CalamineWorkbook

    _check_extent(path)

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine and zipfile raise many kinds; all mean "cannot open"
        raise InputError(
            f"{path.name}: cannot be opened as an Excel workbook (damaged, or password-protected); "
            "open it in Excel and save a copy without a password"
        ) from exc
    names = [str(name) for name in book.sheet_names]
    if sheet is not None and sheet not in names:
        listed = ", ".join(f"'{name}'" for name in names)
        raise InputError(f"{path.name}: has no sheet '{sheet}'; its sheets are {listed}")
    first_seen: list[str] = []
    for name in [sheet] if sheet is not None else names:
        grid = _grid(path, book, name)
        index = header_index(grid[:HEADER_SEARCH_ROWS])
        if index is not None:
            settings, notes = _settings_sheet(path, book, names, name)
            return build_table(
                path.name, path, grid, index, sheet=name, notes=notes, settings=settings
            )
        if not first_seen:
            first_seen = next((row for row in grid if any(row)), [])
    raise no_email_column(path.name, first_seen, sheet=sheet)


#: what a workbook of people may unpack to, and the most cells a sheet may span: calamine builds
#: a dense grid from the first cell to the last one with a value, so one stray value in cell
#: XFD1048576 would ask for seventeen billion cells
MAX_INFLATED = 512 * 2**20
MAX_CELLS = 20_000_000
#: the most text the cells may come to once each shared string is counted in every cell that
#: uses it (a 20 MB string used by a thousand cells is 20 GB to read)
MAX_TEXT = 256 * 2**20
#: a cell with a value: not self-closed (``<c r="B7" s="1"/>`` is formatting only); its
#: reference may stand after other attributes, the tag may carry a namespace prefix; a shared
#: string's index follows when it is one
_CELL = re.compile(
    rb'<(?:[A-Za-z_][\w.-]*:)?c\s([^>]*?)\br="([A-Z]{1,3})([0-9]{1,7})"([^>]*)>'
    rb"(?:\s*<(?:[A-Za-z_][\w.-]*:)?v>([0-9]{1,10})<)?"
)
_SHARED = re.compile(rb'\bt="s"')
_STRING = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s>/]")
_CHUNK = 1 << 20


def _check_extent(path: Path) -> None:
    """Refuse a workbook that unpacks to far more than a list needs, or whose sheets hold a
    value so far out that reading them would take the machine's memory."""
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return  # not a zip (encrypted, damaged): calamine says what it is
    with book:
        inflated = sum(info.file_size for info in book.infolist())
        if inflated > MAX_INFLATED:
            raise InputError(
                f"{path.name}: unpacks to {inflated / 2**20:,.0f} MB, far more than a list of "
                "people needs; copy the list alone into a new workbook and run again"
            )
        sizes = _string_sizes(book)
        for part, name in _sheet_parts(book).items():
            rows, columns, text = _extent(book, part, sizes)
            if text > MAX_TEXT:
                raise InputError(
                    f"{path.name}: sheet '{name}' comes to {text / 2**20:,.0f} MB of text once "
                    "its repeated cells are spelt out, far more than a list of people needs; "
                    "copy the list alone into a new workbook and run again"
                )
            if rows * columns > MAX_CELLS:
                raise InputError(
                    f"{path.name}: sheet '{name}' has a value as far out as cell "
                    f"{column_letter(columns - 1)}{rows}, which makes {rows * columns:,} cells to "
                    "read; delete what stands beyond the list (in Excel, Ctrl+End goes to the "
                    "last cell) and save again"
                )


def _sheet_parts(book: zipfile.ZipFile) -> dict[str, str]:
    """Each worksheet's part in the zip, with the sheet's name as Excel shows it."""
    parts = {n: n for n in book.namelist() if re.fullmatch(r"xl/worksheets/[^/]+\.xml", n)}
    try:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return parts
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    for sheet in workbook.iter(f"{_MAIN}sheet"):
        target = targets.get(sheet.get(f"{_RELS}id"), "").lstrip("/")
        part = target if target.startswith("xl/") else f"xl/{target}"
        if part in parts:
            parts[part] = sheet.get("name", part)
    return parts


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _extent(book: zipfile.ZipFile, part: str, sizes: list[int]) -> tuple[int, int, int]:
    """The last row and column (1-based) that hold a value in a worksheet, and the bytes of
    shared strings its cells use, read as a stream."""
    rows = columns = text = 0
    largest = max(sizes, default=0)

    def count(match: re.Match[bytes]) -> None:
        nonlocal rows, columns, text
        before, letters, number, after, index = match.groups()
        if after.endswith(b"/"):
            return
        columns = max(columns, _column_number(letters))
        rows = max(rows, int(number))
        if _SHARED.search(before) or _SHARED.search(after):
            position = int(index) if index is not None else -1
            text += sizes[position] if 0 <= position < len(sizes) else largest

    tail = b""
    with book.open(part) as stream:
        while chunk := stream.read(_CHUNK):
            data = tail + chunk
            cut = max(0, len(data) - 512)  # a match starting after this is read again next time
            for match in _CELL.finditer(data):
                if match.start() >= cut:
                    break
                count(match)
            tail = data[cut:]
    for match in _CELL.finditer(tail):  # the last few cells
        count(match)
    return rows, columns, text


def _string_sizes(book: zipfile.ZipFile) -> list[int]:
    """The size in bytes of each shared string, in order (the XML of each ``<si>``)."""
    name = next((n for n in book.namelist() if n.lower().endswith("sharedstrings.xml")), None)
    if name is None:
        return []
    starts: list[int] = []
    offset = 0  # of ``data`` in the part
    tail = b""
    with book.open(name) as stream:
        while chunk := stream.read(_CHUNK):
            data = tail + chunk
            cut = max(0, len(data) - 64)
            starts.extend(offset + m.start() for m in _STRING.finditer(data) if m.start() < cut)
            offset += cut
            tail = data[cut:]
        starts.extend(offset + m.start() for m in _STRING.finditer(tail))
        end = offset + len(tail)
    return [after - before for before, after in zip(starts, [*starts[1:], end], strict=True)]


def _column_number(letters: bytes) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number


def _grid(path: Path, book: Any, name: str) -> list[list[str]]:
    try:
        cells = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception as exc:  # a sheet calamine cannot decode
        raise InputError(
            f"{path.name}: sheet '{name}' cannot be read ({type(exc).__name__}); "
            "open it in Excel and save it again"
        ) from exc
    return [[value if type(value) is str else cell_text(value) for value in row] for row in cells]


def _settings_sheet(
    path: Path, book: Any, names: list[str], data_sheet: str
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The pairs of a sheet named Settings (the template's), if the workbook has one."""
    name = next((n for n in names if fold(n) == "settings" and n != data_sheet), None)
    if name is None:
        return {}, ()
    try:
        rows = _grid(path, book, name)
    except InputError:  # an unreadable settings sheet is as good as none
        return {}, ()
    return read_settings(path.name, rows, None, ())


def cell_text(value: object) -> str:
    """A cell as the text Excel shows for it, with no float noise: 4915112345678, not 4.9e12."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)
