"""Excel workbooks (.xlsx, .xlsm), read with python-calamine: cells as the text Excel shows.

Which sheet: the one named, else the sheet the workbook opens on (its active sheet) when it has
an e-mail column, else the first visible sheet that has one; a hidden sheet only when named.
What calamine does not say is read from the sheet's XML: which rows Excel hides (by a filter,
or by hand), and which formulas Excel has never calculated (a file written by a program), whose
cells hold no value to read.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

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
from .models import Sheet, Table


def read(path: Path, sheet: str | None) -> Table:
    """The sheet named, or the one a person sees first that has an e-mail column (see the
    module's docstring), with the rows Excel hides marked, and the Settings sheet."""
    # python-calamine directly: pandas' read_excel over the same engine spends longer converting
    # cells than calamine spends parsing the file.
    from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum

    layout = _inspect(path)

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
    kinds = {str(meta.name): meta for meta in book.sheets_metadata}
    hidden = {name for name, meta in kinds.items() if meta.visible != SheetVisibleEnum.Visible}
    worksheets = [
        name for name in names if name not in kinds or kinds[name].typ == SheetTypeEnum.WorkSheet
    ]
    if sheet is not None:
        candidates = [sheet]
    else:
        visible = [name for name in worksheets if name not in hidden]
        active = [layout.active] if layout.active in visible else []
        candidates = active + [name for name in visible if name not in active]
    grids: dict[str, list[list[str]]] = {}
    first_seen: list[str] = []
    for name in candidates:
        grid = grids[name] = _grid(path, book, name)
        index = header_index(grid[:HEADER_SEARCH_ROWS])
        if index is not None:
            break
        if not first_seen:
            first_seen = next((row for row in grid if any(row)), [])
    else:
        if sheet is None:
            _refuse_hidden_only(path, book, [n for n in worksheets if n in hidden], grids)
        raise no_email_column(path.name, first_seen, sheet=sheet)
    others: tuple[Sheet, ...] = ()
    if sheet is None:
        others = _other_lists(path, book, [n for n in worksheets if n != name], grids, hidden)
    lines, formulas = _marks(path, layout, name)
    for line, column in formulas:
        # calamine's grid ends with the last value: a formula without one may stand beyond it
        grid.extend([] for _ in range(line - len(grid)))
        cells = grid[line - 1]
        cells.extend("" for _ in range(column + 1 - len(cells)))
        cells[column] = ""  # a placeholder, not a value Excel calculated
    by_line: dict[int, dict[int, str]] = {}
    for (line, column), formula in formulas.items():
        by_line.setdefault(line, {})[column] = formula
    settings, notes = _settings_sheet(path, book, names, name)
    return build_table(
        path.name,
        path,
        grid,
        index,
        sheet=name,
        notes=notes,
        settings=settings,
        hidden=lines,
        formulas=by_line,
        other_sheets=others,
    )


def _other_lists(
    path: Path,
    book: Any,
    names: list[str],
    grids: dict[str, list[list[str]]],
    hidden: set[str],
) -> tuple[Sheet, ...]:
    """The sheets among ``names`` that have an e-mail column too, with their data rows."""
    found: list[Sheet] = []
    for name in names:
        try:
            grid = grids[name] if name in grids else _grid(path, book, name)
        except InputError:  # a sheet calamine cannot decode holds no list to mention
            continue
        index = header_index(grid[:HEADER_SEARCH_ROWS])
        if index is None:
            continue
        rows = sum(1 for row in grid[index + 1 :] if any(cell.strip() for cell in row))
        if rows:  # a header alone is no list
            found.append(Sheet(name, rows, name in hidden))
    return tuple(found)


def _refuse_hidden_only(
    path: Path, book: Any, names: list[str], grids: dict[str, list[list[str]]]
) -> None:
    """When no visible sheet has an e-mail column but a hidden one has: say which, and how to
    choose it (it is never read unasked: hidden sheets hold old lists and look-ups)."""
    for name in names:
        try:
            grid = grids[name] if name in grids else _grid(path, book, name)
        except InputError:
            continue
        if header_index(grid[:HEADER_SEARCH_ROWS]) is not None:
            raise InputError(
                f"{path.name}: no visible sheet has an e-mail column, but the hidden sheet "
                f"'{name}' has one; if that is the list to register, choose it with "
                f"--sheet '{name}' (or unhide it in Excel)"
            )


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
#: what betrays, cheaply, that a sheet may hide rows or hold formulas (a sheet without either
#: is not read a second time; the exact ones are found by :func:`_marks`): a formula sits in
#: ``<f>…</f>``, and a cell sharing one has a neighbour that spells it out
_MAY_HIDE = b"hidden="
_MAY_CALCULATE = b"</f>"
#: a sheet whose tags carry a namespace prefix (``<x:row>``) is always read a second time
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.-]*:worksheet\b")


@dataclass
class _Part:
    """A worksheet's part in the zip, and whether its XML may hide rows or hold formulas."""

    name: str
    may_hide: bool = False
    may_calculate: bool = False


@dataclass
class _Layout:
    """What the workbook's own XML says beyond the cells."""

    #: worksheet parts, by sheet name
    parts: dict[str, _Part] = field(default_factory=dict)
    #: the sheet the workbook opens on (Excel's active tab)
    active: str | None = None
    #: the workbook asks to be calculated afresh when opened (a file written by a program)
    recalculate: bool = False


def _inspect(path: Path) -> _Layout:
    """Refuse a workbook that unpacks to far more than a list needs, or whose sheets hold a
    value so far out that reading them would take the machine's memory; and say which sheet
    is active and which sheets may hide rows or hold formulas."""
    layout = _Layout()
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return layout  # not a zip (encrypted, damaged): calamine says what it is
    with book:
        inflated = sum(info.file_size for info in book.infolist())
        if inflated > MAX_INFLATED:
            raise InputError(
                f"{path.name}: unpacks to {inflated / 2**20:,.0f} MB, far more than a list of "
                "people needs; copy the list alone into a new workbook and run again"
            )
        sizes = _string_sizes(book)
        names, layout.active, layout.recalculate = _workbook_facts(book)
        for part, name in names.items():
            rows, columns, text, may_hide, may_calculate = _extent(book, part, sizes)
            layout.parts[name] = _Part(part, may_hide, may_calculate)
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
    return layout


def _workbook_facts(book: zipfile.ZipFile) -> tuple[dict[str, str], str | None, bool]:
    """Each worksheet's part in the zip, with the sheet's name as Excel shows it; the name of
    the active sheet; and whether the workbook asks to be calculated afresh when opened."""
    parts = {n: n for n in book.namelist() if re.fullmatch(r"xl/worksheets/[^/]+\.xml", n)}
    try:
        workbook = ElementTree.fromstring(book.read("xl/workbook.xml"))
        rels = ElementTree.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, ElementTree.ParseError):
        return parts, None, False
    targets = {rel.get("Id"): rel.get("Target", "") for rel in rels}
    sheets = list(workbook.iter(f"{_MAIN}sheet"))
    for sheet in sheets:
        target = targets.get(sheet.get(f"{_RELS}id"), "").lstrip("/")
        part = target if target.startswith("xl/") else f"xl/{target}"
        if part in parts:
            parts[part] = sheet.get("name", part)
    view = next(workbook.iter(f"{_MAIN}workbookView"), None)
    tab = view.get("activeTab", "0") if view is not None else "0"
    position = int(tab) if tab.isdigit() else 0
    active = sheets[position].get("name") if position < len(sheets) else None
    calculation = next(workbook.iter(f"{_MAIN}calcPr"), None)
    fresh = calculation is not None and calculation.get("fullCalcOnLoad") in ("1", "true")
    return parts, active, fresh


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"


def _extent(book: zipfile.ZipFile, part: str, sizes: list[int]) -> tuple[int, int, int, bool, bool]:
    """The last row and column (1-based) that hold a value in a worksheet, the bytes of shared
    strings its cells use, and whether it may hide rows or hold formulas, read as a stream."""
    rows = columns = text = 0
    may_hide = may_calculate = prefixed = False
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
            prefixed = prefixed or (not tail and _PREFIXED.search(data, 0, 4096) is not None)
            may_hide = prefixed or may_hide or _MAY_HIDE in data
            may_calculate = prefixed or may_calculate or _MAY_CALCULATE in data
            tail = data[cut:]
    for match in _CELL.finditer(tail):  # the last few cells
        count(match)
    return rows, columns, text, may_hide, may_calculate


_NS = rb"(?:[A-Za-z_][\w.-]*:)?"
#: a row's start tag, and its attributes
_ROW = re.compile(rb"<" + _NS + rb"row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb"""\br=["']([0-9]{1,7})["']""")
_ROW_HIDDEN = re.compile(rb"""\bhidden=["'](?:1|true)["']""")
#: a cell holding a formula: its attributes; the formula's attributes and text (none when the
#: tag is empty: a cell sharing another's formula); its cached value (None: no value at all)
_FORMULA_CELL = re.compile(
    rb"<" + _NS + rb"c\s([^>]*)>\s*"
    rb"<" + _NS + rb"f\b([^>]*?)(?:/>|>([^<]*)</" + _NS + rb"f>)\s*"
    rb"(?:<" + _NS + rb"v\s*/>|<" + _NS + rb"v>([^<]*)</" + _NS + rb"v>)?"
)
_CELL_REFERENCE = re.compile(rb"""\br=["']([A-Z]{1,3})([0-9]{1,7})["']""")
_CELL_TYPE = re.compile(rb"""\bt=["'](\w+)["']""")
#: how far an uncalculated formula is quoted in messages
FORMULA_SHOWN = 60
_QUOTES = {"&quot;": '"', "&apos;": "'"}


def _marks(path: Path, layout: _Layout, name: str) -> tuple[set[int], dict[tuple[int, int], str]]:
    """The rows a sheet hides (their numbers), and its cells whose formula Excel has not
    calculated, by (row number, column index): the formula, "" when the cell shares another's.

    A formula without a value, or with an empty one that is not a calculated empty text, was
    never calculated: the file was written by a program (openpyxl writes none), not saved by
    Excel. A program that asks for the workbook to be calculated afresh when opened may write
    0 in its place (XlsxWriter does): a 0 is then no calculated value either.
    """
    part = layout.parts.get(name)
    hidden: set[int] = set()
    formulas: dict[tuple[int, int], str] = {}
    if part is None or not (part.may_hide or part.may_calculate):
        return hidden, formulas
    last = 0  # the number of the row before, for rows that do not say theirs

    def scan(data: bytes) -> None:
        nonlocal last
        if part.may_hide:
            for match in _ROW.finditer(data):
                attributes = match.group(1)
                said = _ROW_NUMBER.search(attributes)
                last = int(said.group(1)) if said else last + 1
                if _ROW_HIDDEN.search(attributes):
                    hidden.add(last)
        if part.may_calculate:
            for match in _FORMULA_CELL.finditer(data):
                attributes, _, formula, value = match.groups()
                if _calculated(attributes, value, layout.recalculate):
                    continue
                reference = _CELL_REFERENCE.search(attributes)
                if reference is not None:
                    letters, digits = reference.groups()
                    text = unescape((formula or b"").decode("utf-8", "replace"), _QUOTES)
                    formulas[int(digits), _column_number(letters) - 1] = _quoted(text)

    try:
        with zipfile.ZipFile(path) as book, book.open(part.name) as stream:
            tail = b""
            while chunk := stream.read(_CHUNK):
                data = tail + chunk
                # whole rows only: a row, or a cell, cut in two is read with the next chunk
                end = max(data.rfind(b"</row>"), data.rfind(b":row>"))
                if end < 0:
                    tail = data
                    continue
                cut = data.index(b">", end) + 1
                scan(data[:cut])
                tail = data[cut:]
            scan(tail)
    except (OSError, KeyError, zipfile.BadZipFile):
        return set(), {}  # calamine read it; nothing more to learn
    return hidden, formulas


def _calculated(attributes: bytes, value: bytes | None, recalculate: bool) -> bool:
    """Whether a formula cell holds a value Excel calculated."""
    kind = _CELL_TYPE.search(attributes)
    typed = kind.group(1) if kind else b"n"
    if value is None:
        return False
    if not value:
        return typed == b"str"  # a formula whose result is the empty text
    return not (recalculate and typed == b"n" and value.strip() == b"0")


def _quoted(formula: str) -> str:
    """A formula as messages show it: ``=LOWER(B2)``, long ones cut short."""
    if not formula:
        return ""
    shown = formula if len(formula) <= FORMULA_SHOWN else formula[: FORMULA_SHOWN - 1] + "…"
    return "=" + shown


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
