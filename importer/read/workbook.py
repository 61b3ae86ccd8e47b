"""Excel workbooks (.xlsx, .xlsm), read with python-calamine: cells as the text Excel shows.

Which sheet: the one named, else the sheet the workbook opens on (its active sheet) when it has
an e-mail column, else the first visible sheet that has one; a hidden sheet only when named.
What calamine does not say is read from the sheet's XML: which rows Excel hides (by a filter,
or by hand), which formulas Excel has never calculated (a file written by a program), whose
cells hold no value to read, and which cells hold an error value (``#DIV/0!``), which calamine
reads as empty ones.

Before calamine reads anything, every part of the zip is read as calamine would read a sheet,
to refuse one whose cells would take more memory than a list of people needs.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from itertools import compress, zip_longest
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree
from xml.sax.saxutils import unescape

from importer.errors import InputError
from importer.model import Sheet, Table
from importer.read.columns import fold
from importer.read.grid import (
    HEADER_SEARCH_ROWS,
    build_table,
    column_letter,
    header_index,
    no_email_column,
    read_settings,
)


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
#: a dense grid from cell A1 to the last cell with a value, so one stray value in cell
#: XFD1048576 would ask for seventeen billion cells
MAX_INFLATED = 512 * 2**20
MAX_CELLS = 20_000_000
#: the most text the cells may come to once each shared string is counted in every cell that
#: uses it (a 20 MB string used by a thousand cells is 20 GB to read)
MAX_TEXT = 256 * 2**20
#: Excel's last row and column (XFD): a reference beyond them is refused whatever the count of
#: cells, for calamine reads it all the same (and wraps a number past four billion round)
LAST_ROW = 1_048_576
LAST_COLUMN = 16_384
_CHUNK = 1 << 20
#: the longest tag, comment or instruction a worksheet may hold (Excel writes a few hundred
#: bytes): a part with a longer one is not followed, and refused if it is a worksheet
_LONGEST = 4 << 20


@dataclass
class _Part:
    """A worksheet's part in the zip, and whether its XML may hide rows, hold formulas or hold
    cells with an error value."""

    name: str
    may_hide: bool = False
    may_calculate: bool = False
    may_fail: bool = False


@dataclass
class _Layout:
    """What the workbook's own XML says beyond the cells."""

    #: worksheet parts, by sheet name
    parts: dict[str, _Part] = field(default_factory=dict)
    #: the sheet the workbook opens on (Excel's active tab)
    active: str | None = None
    #: the workbook asks to be calculated afresh when opened (a file written by a program)
    recalculate: bool = False


@dataclass
class _Scan:
    """One part of the zip as calamine would read it were it a worksheet."""

    #: the last row and column (1-based) of a cell that may hold a value: calamine's grid
    rows: int = 0
    columns: int = 0
    #: the bytes of shared strings its cells use, each counted in every cell that uses it
    text: int = 0
    #: a cell beyond Excel's last one, as messages show it
    far: str | None = None
    #: markup no worksheet holds (a document type, a tag left open, a tag of megabytes)
    malformed: bool = False
    #: the part has the element a worksheet's cells stand in: without it calamine reads none
    cells: bool = False
    #: what betrays, cheaply, that the sheet may hide rows, hold formulas, or hold error values
    #: (a sheet without any is not read a second time: :func:`_marks` finds the exact ones)
    may_hide: bool = False
    may_calculate: bool = False
    may_fail: bool = False


def _inspect(path: Path) -> _Layout:
    """Refuse a workbook that unpacks to far more than a list needs, or whose sheets hold a
    value so far out that reading them would take the machine's memory; and say which sheet
    is active and which sheets may hide rows or hold formulas.

    Every part of the zip is read as calamine would read a worksheet, not only those the
    workbook names: calamine finds its sheets by paths that may lead anywhere in the zip.
    """
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
        try:
            facts = _workbook_facts(book)
            sizes = _string_sizes(book)
            layout.active, layout.recalculate = facts.active, facts.recalculate
            for info in book.infolist():
                if info.is_dir():
                    continue
                scan = _scan(book, info, sizes)
                if not scan.cells:
                    continue
                name = facts.parts.get(info.filename, info.filename)
                _refuse(path, name, scan)
                part = _Part(info.filename, scan.may_hide, scan.may_calculate, scan.may_fail)
                layout.parts[name] = part
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            # a part that cannot be unpacked (damaged, encrypted, an unknown compression)
            raise InputError(
                f"{path.name}: cannot be opened as an Excel workbook (damaged, or "
                "password-protected); open it in Excel and save a copy without a password"
            ) from exc
    return layout


def _refuse(path: Path, name: str, scan: _Scan) -> None:
    """Refuse a sheet that would take calamine far more memory than a list of people needs."""
    if scan.malformed:
        raise InputError(
            f"{path.name}: sheet '{name}' cannot be read (its XML is malformed); open it in "
            "Excel and save it again"
        )
    if scan.far is not None:
        raise InputError(
            f"{path.name}: sheet '{name}' has a value as far out as cell {scan.far}, beyond the "
            f"last cell of an Excel sheet ({column_letter(LAST_COLUMN - 1)}{LAST_ROW}); delete "
            "what stands beyond the list (in Excel, Ctrl+End goes to the last cell) and save "
            "again"
        )
    if scan.text > MAX_TEXT:
        raise InputError(
            f"{path.name}: sheet '{name}' comes to {scan.text / 2**20:,.0f} MB of text once "
            "its repeated cells are spelt out, far more than a list of people needs; "
            "copy the list alone into a new workbook and run again"
        )
    cells = scan.rows * scan.columns
    if cells > MAX_CELLS:
        raise InputError(
            f"{path.name}: sheet '{name}' has a value as far out as cell "
            f"{column_letter(scan.columns - 1)}{scan.rows}, which makes {cells:,} cells to "
            "read; delete what stands beyond the list (in Excel, Ctrl+End goes to the last "
            "cell) and save again"
        )


def _scan(book: zipfile.ZipFile, info: zipfile.ZipInfo, sizes: list[int]) -> _Scan:
    """A part as calamine would read it as a worksheet: the quick way when every cell is
    written as Excel writes it, else tag by tag."""
    with book.open(info) as stream:
        scan = _read_plain(stream, sizes)
    if scan is None:
        with book.open(info) as stream:
            scan = _Walk(sizes).read(stream)
    return scan


def _note(scan: _Scan, data: bytes) -> None:
    """What a piece of a part betrays, cheaply."""
    scan.cells = scan.cells or b"sheetData" in data
    scan.may_hide = scan.may_hide or b"hidden" in data
    scan.may_calculate = scan.may_calculate or b"</f>" in data or b":f>" in data
    scan.may_fail = scan.may_fail or b'"e"' in data or b"'e'" in data


# --- the quick way: every cell as Excel writes it ----------------------------------------------
#
# Each tag that starts like a cell (``<c`` and a space, ``/`` or ``>``; or a prefixed one) must
# be written the plain way: its reference first, in capitals and at most Excel's 3 letters and
# 7 digits, attributes in double quotes with one space before each, no other ``r``. Then the
# references are all calamine goes by (rows and the counting of cells without one play no
# part), and they are read in bulk. A part with any other tag is read by :class:`_Walk`.

_ANY_CELL = re.compile(rb"<c[\s/>]")
_ANY_PREFIXED_CELL = re.compile(rb":c[\s/>]")
#: the ends of prefixed cells (``</x:c>``), which the search above finds too
_PREFIXED_CELL_END = re.compile(rb"</[A-Za-z_][\w.-]*:c>")
_PLAIN_ATTRIBUTES = rb'r="([A-Z]{1,3})([0-9]{1,7})"(?: (?!r=)[\w:.-]+="[^"<>]*")*[ \t\r\n]*(/?)>'
_PLAIN_CELL = re.compile(rb"<c " + _PLAIN_ATTRIBUTES)
_PLAIN_PREFIXED_CELL = re.compile(rb"<[A-Za-z_][\w.-]*:c " + _PLAIN_ATTRIBUTES)
#: a shared string's cell and its index (one written otherwise counts as the longest string)
_SHARED_TYPE = b' t="s"'
_SHARED_INDEX = re.compile(rb' t="s"[^<>]*><(?:[A-Za-z_][\w.-]*:)?v>([0-9]{1,10})</')


def _read_plain(stream: IO[bytes], sizes: list[int]) -> _Scan | None:
    """A part whose cells are all written the plain way, None when one is not."""
    scan = _Scan()
    letters: set[bytes] = set()
    tail = seam = b""
    while True:
        chunk = stream.read(_CHUNK)
        data = tail + chunk
        cut = len(data)
        if chunk:
            opened = data.rfind(b"<")
            if opened > data.rfind(b">"):
                cut = opened  # a tag cut in two is read whole with the next chunk
        region, tail = data[:cut], data[cut:]
        if len(tail) > _LONGEST:
            return None
        if region:
            _note(scan, seam + region)
            seam = region[-16:]
            if not _plain_cells(scan, region, letters, sizes):
                return None
        if not chunk:
            break
    scan.columns = max(map(_column_number, letters), default=0)
    if scan.rows > LAST_ROW or scan.columns > LAST_COLUMN:
        scan.far = f"{column_letter(scan.columns - 1)}{scan.rows}"
    return scan


def _plain_cells(scan: _Scan, region: bytes, letters: set[bytes], sizes: list[int]) -> bool:
    """Count the cells of a piece of a part (cut after a tag): False when one is not plain."""
    cells = _PLAIN_CELL.findall(region)
    if len(cells) != len(_ANY_CELL.findall(region)):
        return False
    if _ANY_PREFIXED_CELL.search(region):
        prefixed = _PLAIN_PREFIXED_CELL.findall(region)
        ends = len(_PREFIXED_CELL_END.findall(region))
        if len(prefixed) != len(_ANY_PREFIXED_CELL.findall(region)) - ends:
            return False
        cells += prefixed
    if cells:
        columns, rows, closed = zip(*cells, strict=True)
        valued = list(map(operator.not_, closed))  # a self-closed cell holds no value
        scan.rows = max(scan.rows, max(map(int, compress(rows, valued)), default=0))
        letters.update(compress(columns, valued))
    shared = region.count(_SHARED_TYPE)
    if shared:
        largest = max(sizes, default=0)
        indices = list(map(int, _SHARED_INDEX.findall(region)))
        if max(indices, default=0) >= len(sizes):  # an index past the last string
            indices = [i for i in indices if i < len(sizes)]
        scan.text += (shared - len(indices)) * largest + sum(map(sizes.__getitem__, indices))
    return True


# --- tag by tag, as calamine reads ---------------------------------------------------------------
#
# The markup is split as calamine's XML reader splits it (quick-xml: a start tag ends at the
# first ``>`` outside quotes, a comment at ``-->``, an instruction at ``?>``); what it never
# needs (other elements, text, comments) is skipped within one match. Calamine gives a cell
# without a reference the row of the last ``<row r=…>`` (plus one for each ``</row>`` since)
# and the column after the cell before it; inside a cell it reads until ``</c>``, the nested
# ``<v>``, ``<f>`` and ``<is>`` by their own ends. Where a cell's content strays from that
# (a ``<row>`` or ``<c>`` within a cell, ends that do not match), the counting goes on with
# bounds that only ever grow, so that no cell can stand further out than counted.

#: the pieces the patterns below are made of, by the words that stand for them
_PIECES = {
    # attributes with nothing odd about them (pieces made of pieces come first)
    "PLAIN": r"""(?:SPACE+[^ \t\r\n<>/"'=]+SPACE*=SPACE*(?:"[^"<>]*"|'[^'<>]*'))*SPACE*""",
    "SPACE": r"[ \t\r\n]",
    "NAME": r"""[^ \t\r\n<>/"'=!?][^ \t\r\n<>/"'=]*""",
    # a name's prefix: up to its first colon (``x:c`` is a cell, ``a:b:c`` is not)
    "PREFIX": r"""(?:(?:[^ \t\r\n<>/"'=!?:][^ \t\r\n<>/"'=:]*)?:)?""",
    "ATTRIBUTES": r"""(?:[^>"']|"[^"]*"|'[^']*')*+""",
    "COUNTED": r"(?:c|row)",
    # text, comments, character data and processing instructions
    "SKIPPED": r"(?:[^<]++|<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?(?<=\?)>)",
}


def _pattern(template: str) -> re.Pattern[bytes]:
    """A pattern from a template that names its pieces (see ``_PIECES``)."""
    for word, piece in _PIECES.items():
        template = template.replace(word, piece)
    assert not any(word in template for word in _PIECES), template  # a piece in a piece
    return re.compile(template.encode(), re.DOTALL)


def _content(depth: int) -> str:
    """The content of a cell as programs write it: text, and elements ``depth`` deep at most
    that are neither cells nor rows, with plain attributes, each closed by its own name."""
    name = f"n{depth}"
    held = _content(depth - 1) if depth > 1 else "[^<]++"
    inner = "(?!PREFIXCOUNTED(?:SPACE|/?>))NAME"
    return f"(?:[^<]++|<{inner}PLAIN/>|<(?P<{name}>{inner})PLAIN>(?:{held})*+</(?P={name})SPACE*>)"


#: everything up to the next start or end tag of a cell or row: its name and attributes, and,
#: when it is a cell written as programs write them (``<is><t>…</t></is>`` is as deep as it
#: goes), its content up to and with ``</c>``
_NEXT_COUNTED = _pattern(
    "(?:SKIPPED|</(?!PREFIXCOUNTEDSPACE*>)NAMESPACE*>"
    "|<(?!PREFIXCOUNTED(?:SPACE|/?>))NAME(?=SPACE|/?>)ATTRIBUTES>)*+"
    "(?:<(?P<start>PREFIXCOUNTED)(?=SPACE|/?>)(?P<attributes>ATTRIBUTES)>"
    "(?P<content>" + _content(2) + "*+</PREFIXcSPACE*>)?"
    "|</(?P<end>PREFIXCOUNTED)SPACE*>)?"
)
#: everything up to the next start or end tag of any element
_NEXT_TAG = _pattern(
    "SKIPPED*+(?:<(?P<start>NAME)(?=SPACE|/?>)(?P<attributes>ATTRIBUTES)>|</(?P<end>NAME)SPACE*>)?"
)
#: the index of a shared string, right after its cell's start tag
_VALUE_INDEX = _pattern("SPACE*<PREFIXv>([0-9]{1,10})</")
#: elements that hold text alone, and whose ends calamine looks for without counting others
_LEAVES = (b"v", b"f", b"t")
#: how calamine splits attributes: a key up to ``=``, a value in either quotes
_RUST_SPACE = b" \t\n\x0c\r"
_REFERENCE = re.compile(rb"([A-Za-z]*)([0-9]*)")


class _Walk:
    """A part read tag by tag, counting where calamine would put each cell."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.largest = max(sizes, default=0)
        self.scan = _Scan()
        #: calamine's own counters, 0-based: the row of a cell without a reference, and the
        #: column after the last cell (upper bounds once ``loose``)
        self.row = 0
        self.column = 0
        self.loose = False
        #: inside a cell read tag by tag: the elements open in it
        self.open: list[bytes] | None = None
        self.done = False

    def read(self, stream: IO[bytes]) -> _Scan:
        data = seam = b""
        position = 0
        ended = False
        while not self.done:
            position = self._advance(data, position)
            if self.done:
                break
            if ended or len(data) - position > _LONGEST:
                # markup calamine's reader fails on, or will not follow this far
                self.scan.malformed = position < len(data)
                break
            chunk = stream.read(_CHUNK)
            ended = not chunk
            _note(self.scan, seam + chunk)
            seam = (seam + chunk)[-16:]
            data = data[position:] + chunk
            position = 0
        if self.scan.malformed:
            while chunk := stream.read(_CHUNK):  # only to learn whether it is a worksheet
                _note(self.scan, seam + chunk)
                seam = (seam + chunk)[-16:]
        return self.scan

    def _advance(self, data: bytes, position: int) -> int:
        """Read the tags that are whole in ``data``: where the first that is not begins."""
        while not self.done:
            if self.open is not None:
                step = _NEXT_TAG.match(data, position)
                assert step is not None  # it matches nothing at worst
                start, attributes, end = step.group("start", "attributes", "end")
                if start is None and end is None:
                    return step.end()
                if self._inside(start, attributes, end):
                    position = step.end()
                continue  # else the same tag is read again, as the counting goes loose
            step = _NEXT_COUNTED.match(data, position)
            assert step is not None
            start, attributes, end = step.group("start", "attributes", "end")
            if start is None and end is None:
                return step.end()
            if end is not None:
                position = step.end()
                if _local(end) == b"row":
                    self._next_row()
                continue  # calamine passes over a </c> that closes no cell
            position = step.end("attributes") + 1  # after the start tag
            empty = attributes.endswith(b"/")
            if empty:
                attributes = attributes[:-1]
            if _local(start) == b"row":
                self._row(attributes, empty)
                continue
            self._cell(attributes, empty, data, position)
            if empty or self.loose:
                continue
            if step.group("content") is not None:
                position = step.end("content")
            else:
                self.open = []  # read tag by tag
        return position

    def _row(self, attributes: bytes, empty: bool) -> None:
        found = _attributes(attributes, (b"r",), first=True)
        number = _row_number(found[b"r"]) if found and b"r" in found else None
        if number is not None:
            self.row = max(self.row, number - 1) if self.loose else number - 1
        if empty:
            self._next_row()

    def _next_row(self) -> None:
        self.row += 1
        if not self.loose:
            self.column = 0

    def _cell(self, attributes: bytes, empty: bool, data: bytes, position: int) -> None:
        """Count a cell whose start tag ends at ``position``."""
        found = _attributes(attributes, (b"r", b"s", b"t"), first=False) or {}
        place = _cell_reference(found[b"r"]) if b"r" in found else None
        if place is None:  # none, or one calamine fails on: no cell stands further out
            row, column, shown = self.row + 1, self.column + 1, ""
        else:
            row, column, shown = place
        self.column = max(self.column, column) if self.loose else column
        if empty:
            return  # no value: calamine leaves it out
        scan = self.scan
        if row > scan.rows or column > scan.columns:
            scan.rows, scan.columns = max(scan.rows, row), max(scan.columns, column)
            if scan.far is None and (row > LAST_ROW or column > LAST_COLUMN):
                shown = shown or f"{column_letter(column - 1)}{row}"
                scan.far = shown if len(shown) <= 24 else shown[:23] + "…"
            self._check()
        if found.get(b"t") == b"s":
            index = _VALUE_INDEX.match(data, position)
            at = int(index.group(1)) if index else len(self.sizes)
            scan.text += self.sizes[at] if at < len(self.sizes) else self.largest
            self._check()

    def _inside(self, start: bytes | None, attributes: bytes, end: bytes | None) -> bool:
        """A tag within a cell: False when it strays from a cell's content (then the counting
        goes on loose, from that tag)."""
        assert self.open is not None
        if start is not None:
            local = _local(start)
            if (
                local in (b"c", b"row")
                or (self.open and _local(self.open[-1]) in _LEAVES)
                or (local == b"is" and any(_local(name) == b"is" for name in self.open))
            ):
                self.open, self.loose = None, True
                return False
            if not attributes.endswith(b"/"):
                self.open.append(start)
            return True
        assert end is not None
        if self.open and end == self.open[-1]:
            self.open.pop()
            return True
        if not self.open and _local(end) == b"c":
            self.open = None
            return True
        self.open, self.loose = None, True
        return False

    def _check(self) -> None:
        """Stop once the part is sure to be refused (a worksheet, and too large)."""
        scan = self.scan
        over = scan.rows * scan.columns > MAX_CELLS or scan.text > MAX_TEXT
        self.done = scan.cells and (over or scan.far is not None)


def _local(name: bytes) -> bytes:
    """A tag's name without its prefix, as calamine compares them (``x:c`` is ``c``)."""
    return name.split(b":", 1)[-1]


@functools.lru_cache(maxsize=4096)  # cells without a reference repeat theirs
def _attributes(raw: bytes, keys: tuple[bytes, ...], *, first: bool) -> dict[bytes, bytes] | None:
    """The values of ``keys`` as calamine reads a tag's attributes (None when it fails on
    one): the first of each when ``first``, else the last before all were found."""
    found: dict[bytes, bytes] = {}
    count, position, end = 0, 0, len(raw)
    while True:
        while position < end and raw[position] in _RUST_SPACE:
            position += 1
        if position >= end:
            return found
        equals = raw.find(b"=", position)
        if equals < 0:
            return None
        key = raw[position:equals].rstrip(_RUST_SPACE)
        position = equals + 1
        while position < end and raw[position] in _RUST_SPACE:
            position += 1
        if position >= end or raw[position] not in b"\"'":
            return None
        close = raw.find(raw[position : position + 1], position + 1)
        close = end if close < 0 else close
        value, position = raw[position + 1 : close], close + 1
        if key in keys:
            if first:
                if key not in found:
                    found[key] = value
                    if len(found) == len(keys):
                        return found
                continue
            found[key] = value
            count += 1
            if count == len(keys):
                return found


def _cell_reference(value: bytes) -> tuple[int, int, str] | None:
    """A cell's row and column (1-based) as calamine reads its reference (any case, leading
    zeros), and as messages show it; None when calamine cannot read it. A number too long to
    be a row or column of Excel's counts as one past the last."""
    match = _REFERENCE.fullmatch(value)
    if match is None:
        return None
    letters, digits = match.group(1).upper(), match.group(2).lstrip(b"0")
    if not letters or not digits:
        return None
    row = int(digits) if len(digits) <= 7 else LAST_ROW + 1
    column = _column_number(letters) if len(letters) <= 3 else LAST_COLUMN + 1
    return row, column, (letters + digits).decode()


def _row_number(value: bytes) -> int | None:
    """A row's number as calamine reads a ``<row r=…>`` (letters before it are passed over),
    None when it cannot read it."""
    match = _REFERENCE.fullmatch(value)
    digits = match.group(2).lstrip(b"0") if match else b""
    if not digits:
        return None
    return int(digits) if len(digits) <= 7 else LAST_ROW + 1


@dataclass
class _Facts:
    """What the workbook's part says, found as calamine finds it."""

    #: worksheet parts (their names in the zip), and the sheets' names
    parts: dict[str, str] = field(default_factory=dict)
    active: str | None = None
    recalculate: bool = False


def _workbook_facts(book: zipfile.ZipFile) -> _Facts:
    """Each worksheet's part in the zip, with the sheet's name as Excel shows it; the name of
    the active sheet; and whether the workbook asks to be calculated afresh when opened.
    Transitional and Strict files alike: elements are known by their local names, as calamine
    knows them, and paths are found whatever their case."""
    facts = _Facts()
    entries = {name.replace("\\", "/").lower(): name for name in book.namelist()}

    def part(path: str) -> str | None:
        return entries.get(path.lower())

    root = "xl/"
    package = _xml(book, part("_rels/.rels"))
    for relation in _elements(package, "Relationship"):
        if relation.get("Type", "").endswith("/relationships/officeDocument"):
            target = relation.get("Target", "")
            root = target[: target.rfind("/") + 1]
            root = root[1:] if root.startswith("/") else root
    workbook = _xml(book, part(f"{root}workbook.xml"))
    rels = _xml(book, part(f"{root}_rels/workbook.xml.rels"))
    targets = {rel.get("Id"): rel.get("Target", "") for rel in _elements(rels, "Relationship")}
    sheets = _elements(workbook, "sheet")
    for sheet in sheets:
        ids = [value for key, value in sheet.items() if key.rsplit("}", 1)[-1] == "id"]
        target = targets.get(ids[-1], "") if ids else ""
        found = part(target[1:] if target.startswith("/") else f"{root}{target}")
        if found is not None:
            facts.parts[found] = sheet.get("name", found)
    view = next(iter(_elements(workbook, "workbookView")), None)
    tab = view.get("activeTab", "0") if view is not None else "0"
    # ASCII digits alone: superscripts and other scripts' digits are digits to Python only
    position = int(tab) if tab.isascii() and tab.isdigit() and len(tab) < 10 else None
    if position is not None and position < len(sheets):
        facts.active = sheets[position].get("name")
    calculation = next(iter(_elements(workbook, "calcPr")), None)
    facts.recalculate = calculation is not None and calculation.get("fullCalcOnLoad") in (
        "1",
        "true",
    )
    return facts


def _xml(book: zipfile.ZipFile, name: str | None) -> ElementTree.Element | None:
    """A small part of the zip as XML, None when it is missing or not XML."""
    if name is None:
        return None
    try:
        return ElementTree.fromstring(book.read(name))
    except ElementTree.ParseError:
        return None


def _elements(root: ElementTree.Element | None, local: str) -> list[ElementTree.Element]:
    """The elements of ``root`` whose local name is ``local``, in any namespace."""
    if root is None:
        return []
    return [e for e in root.iter() if isinstance(e.tag, str) and e.tag.rsplit("}", 1)[-1] == local]


_NS = rb"(?:[A-Za-z_][\w.-]*:)?"
#: a row's start tag, and its attributes
_ROW = re.compile(rb"<" + _NS + rb"row\b([^>]*)>")
#: attributes as Excel knows them: by their exact name (``x14ac:hidden`` is another one), with
#: spaces about ``=`` and either quotes
_AFTER = rb"(?<![^ \t\r\n\"'])"
_EQUALS = rb"[ \t\r\n]*=[ \t\r\n]*"
_ROW_NUMBER = re.compile(_AFTER + rb"r" + _EQUALS + rb"([\"'])[A-Za-z]*0*([0-9]{1,7})\1")
_ROW_HIDDEN = re.compile(_AFTER + rb"hidden" + _EQUALS + rb"([\"'])(?:1|true)\1")
#: a cell holding a formula: its attributes; the formula's attributes and text (none when the
#: tag is empty: a cell sharing another's formula); its cached value (None: no value at all)
_FORMULA_CELL = re.compile(
    rb"<" + _NS + rb"c\s([^>]*)>\s*"
    rb"<" + _NS + rb"f\b([^>]*?)(?:/>|>([^<]*)</" + _NS + rb"f>)\s*"
    rb"(?:<" + _NS + rb"v\s*/>|<" + _NS + rb"v>([^<]*)</" + _NS + rb"v>)?"
)
#: a cell holding a value alone: its attributes and the value
_VALUE_CELL = re.compile(rb"<" + _NS + rb"c\s([^>]*)>\s*<" + _NS + rb"v>([^<]*)</" + _NS + rb"v>")
_CELL_REFERENCE = re.compile(_AFTER + rb"r" + _EQUALS + rb"([\"'])([A-Za-z]{1,3})0*([0-9]{1,7})\1")
_CELL_TYPE = re.compile(_AFTER + rb"t" + _EQUALS + rb"([\"'])(\w+)\1")
#: how far an uncalculated formula is quoted in messages
FORMULA_SHOWN = 60
_QUOTES = {"&quot;": '"', "&apos;": "'"}


def _marks(path: Path, layout: _Layout, name: str) -> tuple[set[int], dict[tuple[int, int], str]]:
    """The rows a sheet hides (their numbers), and its cells that hold no value to read, by
    (row number, column index): a formula Excel has not calculated (the formula; "" when the
    cell shares another's), or an error value such as ``#DIV/0!`` (which calamine reads as an
    empty cell).

    A formula without a value, or with an empty one that is not a calculated empty text, was
    never calculated: the file was written by a program (openpyxl writes none), not saved by
    Excel. A program that asks for the workbook to be calculated afresh when opened may write
    0 in its place (XlsxWriter does): a 0 is then no calculated value either.
    """
    part = layout.parts.get(name)
    hidden: set[int] = set()
    formulas: dict[tuple[int, int], str] = {}
    if part is None or not (part.may_hide or part.may_calculate or part.may_fail):
        return hidden, formulas
    last = 0  # the number of the row before, for rows that do not say theirs

    def mark(attributes: bytes, text: str) -> None:
        reference = _CELL_REFERENCE.search(attributes)
        if reference is not None:
            _, letters, digits = reference.groups()
            formulas.setdefault((int(digits), _column_number(letters.upper()) - 1), text)

    def scan(data: bytes) -> None:
        nonlocal last
        if part.may_hide:
            for match in _ROW.finditer(data):
                attributes = match.group(1)
                said = _ROW_NUMBER.search(attributes)
                last = int(said.group(2)) if said else last + 1
                if _ROW_HIDDEN.search(attributes):
                    hidden.add(last)
        if part.may_calculate:
            for match in _FORMULA_CELL.finditer(data):
                attributes, _, formula, value = match.groups()
                if not _calculated(attributes, value, layout.recalculate):
                    text = unescape((formula or b"").decode("utf-8", "replace"), _QUOTES)
                    mark(attributes, _quoted(text))
                elif error := _error(attributes, value or b""):
                    mark(attributes, error)
        if part.may_fail:
            for match in _VALUE_CELL.finditer(data):
                if error := _error(*match.groups()):
                    mark(match.group(1), error)

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
    typed = kind.group(2) if kind else b"n"
    if value is None:
        return False
    if not value:
        return typed == b"str"  # a formula whose result is the empty text
    return not (recalculate and typed == b"n" and value.strip() == b"0")


def _error(attributes: bytes, value: bytes) -> str:
    """The error value (``#DIV/0!``, ``#N/A``…) a cell holds, "" when it holds none."""
    kind = _CELL_TYPE.search(attributes)
    if kind is None or kind.group(2) != b"e":
        return ""
    text = unescape(value.decode("utf-8", "replace"), _QUOTES).strip()
    return text[:FORMULA_SHOWN] if text.startswith("#") else ""


def _quoted(formula: str) -> str:
    """A formula as messages show it: ``=LOWER(B2)``, long ones cut short."""
    if not formula:
        return ""
    shown = formula if len(formula) <= FORMULA_SHOWN else formula[: FORMULA_SHOWN - 1] + "…"
    return "=" + shown


_STRING = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s>/]")


def _string_sizes(book: zipfile.ZipFile) -> list[int]:
    """The size in bytes of each shared string, in order (the XML of each ``<si>``): the
    largest at each place when the zip holds more than one part of shared strings (calamine
    reads the one beside the workbook's part, whatever the case of its name)."""
    sizes: list[int] = []
    for name in book.namelist():
        if name.replace("\\", "/").lower().endswith("sharedstrings.xml"):
            found = _part_string_sizes(book, name)
            sizes = [max(pair) for pair in zip_longest(sizes, found, fillvalue=0)]
    return sizes


def _part_string_sizes(book: zipfile.ZipFile, name: str) -> list[int]:
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
