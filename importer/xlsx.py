"""Write an XLSX workbook of text and whole numbers: a report's Summary and its table of rows.

A small SpreadsheetML writer (ECMA-376, Office Open XML) for the one kind of workbook this tool
writes. Every run ends with a report, often of thousands of rows, so the XML is written straight
out, row by row, each combination of styles made once, rather than through an object per cell.
Every text cell is a shared string, never a formula; text that starts like one carries Excel's
quote prefix, so that it stays text when the cell is edited. Characters XML cannot hold become
U+FFFD, and text is cut at Excel's 32,767 characters. Web addresses in a table's link column are
hyperlinks, up to Excel's limits of 2,079 characters and 65,530 links a sheet; beyond them they
stay plain text.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .grid import MAX_COLUMNS, column_letter
from .models import FORMULA_STARTS

#: Excel's limits: rows a sheet, characters a cell, a hyperlink's length, hyperlinks a sheet
MAX_ROWS = 1_048_576
CELL_LIMIT = 32_767
URL_LIMIT = 2_079
LINK_LIMIT = 65_530

# what XML 1.0 cannot hold: C0 controls but tab, line feed and carriage return; surrogates;
# U+FFFE and U+FFFF
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPECIAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff&<>\r]")
# Excel reads _xHHHH_ in a string as the character HHHH, so a literal one has its "_" escaped
_LOOKS_ESCAPED = re.compile("_(?=x[0-9A-Fa-f]{4}_)")
_URL = re.compile(r"https?://\S+\Z")
_COLOUR = re.compile("[0-9A-Fa-f]{6}")
_ROWS_A_CHUNK = 1000

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MARGINS = '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>'


@dataclass(frozen=True)
class Summary:
    """A sheet of a title (bold, larger) above lines of a label (bold) and a value, as wide as
    the printed page."""

    title: str
    lines: Sequence[tuple[str, int | str]]
    name: str = "Summary"
    widths: tuple[float, float] = (22.0, 80.0)


@dataclass(frozen=True)
class Table:
    """A sheet of a bold header row above rows of values, each row filled with its colour (RGB
    hex, such as ``"C6EFCE"``; ``None`` for none). The header row stays in view and carries a
    filter; printed, the sheet is landscape and as wide as the page. Web addresses in the
    ``link`` column (0-based) are hyperlinks."""

    name: str
    headers: Sequence[str]
    rows: Sequence[Sequence[int | str]]
    fills: Sequence[str | None]
    widths: Sequence[float] = ()
    link: int | None = None

    @property
    def width(self) -> int:
        """The most columns a row has, the header row's included."""
        return max(len(self.headers), max(map(len, self.rows), default=0))


Sheet = Summary | Table


def write(path: Path, sheets: Sequence[Sheet]) -> None:
    """Write ``sheets`` to a new workbook at ``path``, the first one shown when it is opened.

    Raises ``ValueError`` when a sheet cannot be one of Excel's: a table wider than 16,384
    columns, longer than 1,048,576 rows or without columns, a name Excel refuses, a fill that
    is no colour.
    """
    _check(sheets)
    strings, styles = _Strings(), _Styles()
    # the fastest deflate: a somewhat larger file, in a fraction of the default level's time
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        book.writestr("[Content_Types].xml", _content_types(len(sheets)))
        book.writestr("_rels/.rels", _ROOT_RELS)
        book.writestr("docProps/app.xml", _APP)
        book.writestr("docProps/core.xml", _core())
        book.writestr("xl/workbook.xml", _workbook(sheets))
        book.writestr("xl/_rels/workbook.xml.rels", _workbook_rels(len(sheets)))
        for number, sheet in enumerate(sheets, start=1):
            links: list[tuple[str, str]] = []
            with book.open(f"xl/worksheets/sheet{number}.xml", "w") as handle:
                if isinstance(sheet, Table):
                    links = _write_table(handle, sheet, strings, styles, selected=number == 1)
                else:
                    _write_summary(handle, sheet, strings, styles, selected=number == 1)
            if links:
                book.writestr(f"xl/worksheets/_rels/sheet{number}.xml.rels", _link_rels(links))
        book.writestr("xl/styles.xml", styles.xml())
        book.writestr("xl/sharedStrings.xml", strings.xml())


def _check(sheets: Sequence[Sheet]) -> None:
    """Raise ``ValueError`` for what Excel cannot open, before anything is written."""
    if not sheets:
        raise ValueError("a workbook needs a sheet")
    names = [sheet.name for sheet in sheets]
    for name in names:
        if (
            not 0 < len(name) <= 31
            or re.search(r"[\[\]:*?/\\]", name)
            or name.startswith("'")
            or name.endswith("'")
        ):
            raise ValueError(f"{name!r} cannot name an Excel sheet")
    if len({name.casefold() for name in names}) < len(names):
        raise ValueError(f"two sheets may not share a name: {', '.join(names)}")
    for sheet in sheets:
        if not isinstance(sheet, Table):
            continue
        if not sheet.headers:
            raise ValueError(f"sheet {sheet.name!r} has no columns")
        if sheet.width > MAX_COLUMNS or len(sheet.rows) >= MAX_ROWS:
            raise ValueError(
                f"sheet {sheet.name!r} has {len(sheet.rows) + 1:,} rows of {sheet.width:,} "
                f"columns, more than the {MAX_ROWS:,} rows of {MAX_COLUMNS:,} columns of an "
                "Excel sheet"
            )


class _Strings:
    """The workbook's shared strings: each text once, in the order first used."""

    def __init__(self) -> None:
        #: each text → its index, and whether it starts like a formula
        self.known: dict[str, tuple[int, bool]] = {}
        #: how many cells show one of them
        self.uses = 0

    def xml(self) -> str:
        texts = "".join(map(_si, self.known))
        return (
            f'{_HEAD}<sst xmlns="{_MAIN}" count="{self.uses}" uniqueCount="{len(self.known)}">'
            f"{texts}</sst>"
        )


def _si(text: str) -> str:
    """A shared string's element: characters XML cannot hold replaced, cut at Excel's limit,
    its spaces kept."""
    if len(text) > CELL_LIMIT // 2 or _SPECIAL.search(text) or "_x" in text:
        text = _cut(_ILLEGAL.sub("\ufffd", text))
        space = text != text.strip()
        text = _escape(text, cell=True)
    else:  # most text, and faster
        space = text != text.strip()
    return f'<si><t xml:space="preserve">{text}</t></si>' if space else f"<si><t>{text}</t></si>"


#: fonts: normal, bold, title (bold, 14 points), and the built-in Hyperlink style's
_FONTS = (
    '<font><sz val="11"/><name val="Calibri"/><family val="2"/></font>',
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font>',
    '<font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font>',
    '<font><u/><sz val="11"/><color rgb="FF0563C1"/><name val="Calibri"/><family val="2"/></font>',
)
_NORMAL, _BOLD, _TITLE, _LINK = range(4)
_APPLY_FONT, _APPLY_FILL, _QUOTE_PREFIX = ' applyFont="1"', ' applyFill="1"', ' quotePrefix="1"'
_SELECTED = ' tabSelected="1"'


class _Styles:
    """The cell formats in use: a font, a fill and the quote prefix, each combination once."""

    def __init__(self) -> None:
        self.fills: dict[str, int] = {}
        self.formats: dict[tuple[int, int, bool], int] = {(_NORMAL, 0, False): 0}

    def format(self, font: int, colour: str | None = None, *, quoted: bool = False) -> int:
        fill = 0
        if colour is not None:
            if colour not in self.fills:
                if not _COLOUR.fullmatch(colour):
                    raise ValueError(f"{colour!r} is no RGB colour, such as 'C6EFCE'")
                self.fills[colour] = len(self.fills) + 2  # after none and gray125
            fill = self.fills[colour]
        return self.formats.setdefault((font, fill, quoted), len(self.formats))

    def kinds(self, font: int, colour: str | None = None) -> tuple[int, int, int]:
        """The formats of a cell in ``font`` and ``colour``: plain, quote-prefixed, and a
        hyperlink's."""
        return (
            self.format(font, colour),
            self.format(font, colour, quoted=True),
            self.format(_LINK, colour),
        )

    def xml(self) -> str:
        fills = "".join(
            '<fill><patternFill patternType="solid">'
            f'<fgColor rgb="FF{colour.upper()}"/><bgColor indexed="64"/></patternFill></fill>'
            for colour in self.fills
        )
        formats = [
            f'<xf numFmtId="0" fontId="{font}" fillId="{fill}" borderId="0" '
            f'xfId="{int(font == _LINK)}"{_APPLY_FONT if font else ""}'
            f"{_APPLY_FILL if fill else ''}{_QUOTE_PREFIX if quoted else ''}/>"
            for font, fill, quoted in self.formats
        ]
        return (
            f'{_HEAD}<styleSheet xmlns="{_MAIN}">'
            f'<fonts count="{len(_FONTS)}">{"".join(_FONTS)}</fonts>'
            f'<fills count="{len(self.fills) + 2}"><fill><patternFill patternType="none"/></fill>'
            f'<fill><patternFill patternType="gray125"/></fill>{fills}</fills>'
            '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
            '</borders><cellStyleXfs count="2">'
            '<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
            f'<xf numFmtId="0" fontId="{_LINK}" fillId="0" borderId="0" applyNumberFormat="0" '
            'applyFill="0" applyBorder="0" applyAlignment="0" applyProtection="0"/>'
            f'</cellStyleXfs><cellXfs count="{len(formats)}">{"".join(formats)}</cellXfs>'
            '<cellStyles count="2"><cellStyle name="Hyperlink" xfId="1" builtinId="8"/>'
            '<cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
            '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
            'defaultPivotStyle="PivotStyleLight16"/></styleSheet>'
        )


def _write_table(
    handle: IO[bytes], table: Table, strings: _Strings, styles: _Styles, *, selected: bool
) -> list[tuple[str, str]]:
    """The worksheet of ``table``; the hyperlinks in it, as (cell, address)."""
    width = table.width
    letters = [column_letter(column) for column in range(width)]
    last = len(table.rows) + 1
    view = (
        '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
        '<selection pane="bottomLeft" activeCell="A1" sqref="A1"/>'
    )
    handle.write(
        _sheet_head(f"A1:{letters[-1]}{last}", view, table.widths, selected=selected)
        + _row(1, letters, table.headers, [styles.kinds(_BOLD)] * width, strings)
    )
    by_fill: dict[str | None, list[tuple[int, int, int]]] = {}  # formats for every column
    links: list[tuple[str, str]] = []
    chunk: list[bytes] = []
    for number, (row, colour) in enumerate(zip(table.rows, table.fills, strict=True), start=2):
        formats = by_fill.get(colour)
        if formats is None:
            formats = by_fill[colour] = [styles.kinds(_NORMAL, colour)] * width
        link = None
        if table.link is not None and table.link < len(row) and len(links) < LINK_LIMIT:
            address = _address(row[table.link])
            if address is not None:
                link = table.link
                links.append((f"{letters[link]}{number}", address))
        chunk.append(_row(number, letters, row, formats, strings, link))
        if len(chunk) == _ROWS_A_CHUNK:
            handle.write(b"".join(chunk))
            chunk.clear()
    chunk.append(
        f'</sheetData><autoFilter ref="A1:{letters[len(table.headers) - 1]}{last}"/>'.encode()
    )
    if links:
        cells = "".join(
            f'<hyperlink ref="{cell}" r:id="rId{index}"/>'
            for index, (cell, _) in enumerate(links, start=1)
        )
        chunk.append(f"<hyperlinks>{cells}</hyperlinks>".encode())
    page = '<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
    chunk.append(f"{_MARGINS}{page}</worksheet>".encode())
    handle.write(b"".join(chunk))
    return links


def _write_summary(
    handle: IO[bytes], summary: Summary, strings: _Strings, styles: _Styles, *, selected: bool
) -> None:
    """The worksheet of ``summary``: the title in row 1, its lines from row 3."""
    letters = ["A", "B"]
    last = len(summary.lines) + 2
    rows = [
        _sheet_head(f"A1:B{last}" if summary.lines else "A1", "", summary.widths, selected),
        _row(1, letters, [summary.title], [styles.kinds(_TITLE)], strings),
    ]
    line = [styles.kinds(_BOLD), styles.kinds(_NORMAL)]
    rows.extend(
        _row(number, letters, pair, line, strings)
        for number, pair in enumerate(summary.lines, start=3)
    )
    rows.append(
        f'</sheetData>{_MARGINS}<pageSetup fitToWidth="1" fitToHeight="0"/></worksheet>'.encode()
    )
    handle.write(b"".join(rows))


def _sheet_head(extent: str, view: str, widths: Sequence[float], selected: bool) -> bytes:
    """A worksheet up to its cells: fitted to the page's width, columns as wide as given."""
    columns = "".join(
        f'<col min="{number}" max="{number}" width="{min(width, 255.0):g}" customWidth="1"/>'
        for number, width in enumerate(widths, start=1)
    )
    return (
        f'{_HEAD}<worksheet xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}">'
        f'<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr><dimension ref="{extent}"/>'
        f'<sheetViews><sheetView{_SELECTED if selected else ""} workbookViewId="0">'
        f"{view}</sheetView></sheetViews>"
        '<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/>'
        f"{f'<cols>{columns}</cols>' if columns else ''}<sheetData>"
    ).encode()


def _row(
    number: int,
    letters: Sequence[str],
    values: Sequence[int | str],
    formats: Sequence[tuple[int, int, int]],
    strings: _Strings,
    link: int | None = None,
) -> bytes:
    """One ``<row>``: each value with its column's formats (plain, quote-prefixed, a link's),
    text as a shared string, a whole number as a number; the cell in column ``link`` is a
    hyperlink's."""
    at = str(number)
    cells = [f'<row r="{at}">']
    known = strings.known
    texts = 0
    for column, value in enumerate(values):
        plain, quoted, linked = formats[column]
        if isinstance(value, str):
            if value:
                found = known.get(value)
                if found is None:
                    found = known[value] = (len(known), value.startswith(FORMULA_STARTS))
                index, formula = found
                style = linked if column == link else quoted if formula else plain
                cells.append(f'<c r="{letters[column]}{at}" s="{style}" t="s"><v>{index}</v></c>')
                texts += 1
            elif plain:  # nothing to say, but filled like the rest of its row
                cells.append(f'<c r="{letters[column]}{at}" s="{plain}"/>')
        else:
            cells.append(f'<c r="{letters[column]}{at}" s="{plain}"><v>{value:d}</v></c>')
    cells.append("</row>")
    strings.uses += texts
    return "".join(cells).encode()


def _address(value: int | str) -> str | None:
    """``value`` as a hyperlink's address, when it is a web address Excel can link to."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        return None
    text = _cut(_ILLEGAL.sub("\ufffd", value))
    return text if len(text) <= URL_LIMIT and _URL.match(text) else None


def _cut(text: str) -> str:
    """``text`` cut at Excel's limit for a cell, which counts in UTF-16 units."""
    if len(text) <= CELL_LIMIT // 2:
        return text
    return text.encode("utf-16-le")[: 2 * CELL_LIMIT].decode("utf-16-le", errors="ignore")


def _escape(text: str, *, cell: bool = False) -> str:
    """``text`` as XML character data (or, with ``cell``, as Excel reads a cell's text)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in text:  # a raw one would be read back as a line feed
        text = text.replace("\r", "&#13;")
    if cell and "_x" in text:
        text = _LOOKS_ESCAPED.sub("_x005F_", text)
    return text


def _attribute(text: str) -> str:
    """``text`` as an XML attribute's value."""
    text = _escape(text).replace('"', "&quot;")
    return text.replace("\t", "&#9;").replace("\n", "&#10;")


def _quoted(name: str) -> str:
    """A sheet's name as a formula names it."""
    return "'" + name.replace("'", "''") + "'"


def _link_rels(links: Sequence[tuple[str, str]]) -> str:
    return (
        f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">'
        + "".join(
            f'<Relationship Id="rId{index}" Type="{_DOC_RELS}/hyperlink" '
            f'Target="{_attribute(address)}" TargetMode="External"/>'
            for index, (_, address) in enumerate(links, start=1)
        )
        + "</Relationships>"
    )


def _workbook(sheets: Sequence[Sheet]) -> str:
    """The workbook: its sheets, and the range each table's filter covers, named as Excel
    names it."""
    listed, filters = [], []
    for number, sheet in enumerate(sheets, start=1):
        listed.append(
            f'<sheet name="{_attribute(sheet.name)}" sheetId="{number}" r:id="rId{number}"/>'
        )
        if isinstance(sheet, Table):
            last = column_letter(len(sheet.headers) - 1)
            filters.append(
                f'<definedName name="_xlnm._FilterDatabase" localSheetId="{number - 1}" '
                f'hidden="1">{_escape(_quoted(sheet.name))}!$A$1:${last}${len(sheet.rows) + 1}'
                "</definedName>"
            )
    defined = f"<definedNames>{''.join(filters)}</definedNames>" if filters else ""
    return (
        f'{_HEAD}<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}">'
        '<bookViews><workbookView activeTab="0"/></bookViews>'
        f'<sheets>{"".join(listed)}</sheets>{defined}<calcPr calcId="124519" fullCalcOnLoad="1"/>'
        "</workbook>"
    )


def _workbook_rels(sheets: int) -> str:
    parts = [("worksheet", f"worksheets/sheet{number}.xml") for number in range(1, sheets + 1)]
    parts += [("styles", "styles.xml"), ("sharedStrings", "sharedStrings.xml")]
    return (
        f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">'
        + "".join(
            f'<Relationship Id="rId{index}" Type="{_DOC_RELS}/{kind}" Target="{target}"/>'
            for index, (kind, target) in enumerate(parts, start=1)
        )
        + "</Relationships>"
    )


def _content_types(sheets: int) -> str:
    parts = [
        ("/xl/workbook.xml", f"{_TYPE}.sheet.main+xml"),
        *((f"/xl/worksheets/sheet{n}.xml", f"{_TYPE}.worksheet+xml") for n in range(1, sheets + 1)),
        ("/xl/styles.xml", f"{_TYPE}.styles+xml"),
        ("/xl/sharedStrings.xml", f"{_TYPE}.sharedStrings+xml"),
        ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
        (
            "/docProps/app.xml",
            "application/vnd.openxmlformats-officedocument.extended-properties+xml",
        ),
    ]
    return (
        f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in parts)
        + "</Types>"
    )


_ROOT_RELS = (
    f'{_HEAD}<Relationships xmlns="{_PACKAGE_RELS}">'
    f'<Relationship Id="rId1" Type="{_DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    f'<Relationship Id="rId2" Type="{_PACKAGE_RELS}/metadata/core-properties" '
    'Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_DOC_RELS}/extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)
_APP = (
    f"{_HEAD}<Properties "
    'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>g2w-import</Application></Properties>"
)


def _core() -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (
        f"{_HEAD}<cp:coreProperties "
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>g2w-import</dc:creator>'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{now}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{now}</dcterms:modified>'
        "</cp:coreProperties>"
    )
