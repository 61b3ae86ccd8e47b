"""Write a report's workbook with XlsxWriter: a Summary sheet and a table of rows.

XlsxWriter writes files checked against those Excel itself writes, and in its
``constant_memory`` mode streams each row to disk as the next one starts, so a report of any
length costs little memory and rows may be added as they are known (``Book``). It was chosen
over openpyxl's write-only mode by measurement: 4,000 rows of 12 columns, a hyperlink column
and a fill per status, in a fresh process on a 2-core machine, took 0.34-0.45 s to write
(0.42-0.55 s for the whole process, the import 0.05-0.08 s) with XlsxWriter, against
1.0-1.2 s (1.24-1.44 s, the import 0.17-0.34 s) with openpyxl.

Every text cell is text, never a formula: it is written with ``write_string``, and text that
starts like a formula carries Excel's quote prefix, so that it stays text when the cell is
edited. Characters XML cannot hold become U+FFFD, and text is cut at Excel's 32,767
characters. Web addresses in a table's link column are hyperlinks, up to Excel's limits of
2,079 characters and 65,530 links a sheet; beyond them they stay plain text.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # XlsxWriter ships no type information
    from xlsxwriter.format import Format  # type: ignore[import-untyped,unused-ignore]
    from xlsxwriter.worksheet import Worksheet  # type: ignore[import-untyped,unused-ignore]

from importer import files
from importer.model import FORMULA_STARTS
from importer.read.grid import MAX_COLUMNS

#: Excel's limits: rows a sheet, characters a cell, a hyperlink's length, hyperlinks a sheet
MAX_ROWS = 1_048_576
CELL_LIMIT = 32_767
URL_LIMIT = 2_079
LINK_LIMIT = 65_530

# what XML 1.0 cannot hold: C0 controls but tab, line feed and carriage return; surrogates;
# U+FFFE and U+FFFF
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_URL = re.compile(r"https?://\S+\Z")
_COLOUR = re.compile("[0-9A-Fa-f]{6}")
_LINK_COLOUR = "#0563C1"


@dataclass(frozen=True)
class Summary:
    """A sheet of a title (bold, larger) above lines of a label (bold) and a value, as wide as
    the printed page."""

    title: str
    lines: Sequence[tuple[str, int | str]]
    name: str = "Summary"
    widths: tuple[float, float] = (22.0, 80.0)


@dataclass(frozen=True)
class Rows:
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


Sheet = Summary | Rows


def write(path: Path, sheets: Sequence[Sheet]) -> None:
    """Write ``sheets`` to a new workbook at ``path``, the first one shown when it is opened.

    Raises ``ValueError`` when a sheet cannot be one of Excel's: a table wider than 16,384
    columns, longer than 1,048,576 rows or without columns, a name Excel refuses, a fill that
    is no colour. Nothing is written then.
    """
    _check_names([sheet.name for sheet in sheets])
    for sheet in sheets:
        if isinstance(sheet, Rows):
            _check_table(sheet.name, sheet.headers, sheet.width, len(sheet.rows))
            for colour in set(sheet.fills):
                _check_colour(colour)
    with Book(path, [sheet.name for sheet in sheets]) as book:
        for sheet in sheets:
            if isinstance(sheet, Summary):
                book.summary(sheet)
                continue
            table = book.table(sheet.name, sheet.headers, link=sheet.link)
            for row, colour in zip(sheet.rows, sheet.fills, strict=True):
                table.add(row, colour)
            table.finish(sheet.widths)


class Book:
    """A workbook being written, its sheets named (in order) when it is opened; each table's
    rows may be added as they become known. Nothing is at ``path`` before ``close``; used as a
    context manager, it is closed at the end of the block, or discarded if the block raises."""

    def __init__(self, path: Path, names: Sequence[str]) -> None:
        # imported when a workbook is written (often in a thread, while the run checks its
        # rows), not at every start: about 15 ms
        import xlsxwriter  # type: ignore[import-untyped,unused-ignore]

        _check_names(names)
        self._book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_numbers": False,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                # the rows kept until the workbook is written hold people's data: in the
                # tool's private folder, not the system's shared one
                "tmpdir": str(files.temp_folder() or tempfile.gettempdir()),
            },
        )
        self._book.set_properties({"author": "g2w-import"})
        self._sheets = {name: self._book.add_worksheet(name) for name in names}
        for temp in self._temporary():  # removed if the process must stop at once
            files.writing(temp)
        self._formats: dict[tuple[str, str | None, bool], Format] = {}

    def format(
        self, font: str = "plain", colour: str | None = None, *, quoted: bool = False
    ) -> Format:
        """The format of a cell in ``font`` (plain, bold, title, link) and ``colour``, with the
        quote prefix when ``quoted``; each made once."""
        key = (font, colour, quoted)
        found = self._formats.get(key)
        if found is not None:
            return found
        properties: dict[str, object] = {}
        if colour is not None:
            _check_colour(colour)
            properties |= {"pattern": 1, "bg_color": f"#{colour.upper()}"}
        if quoted:
            properties["quote_prefix"] = True
        if font == "bold":
            properties["bold"] = True
        elif font == "title":
            properties |= {"bold": True, "font_size": 14}
        made = self._book.add_format(properties)
        if font == "link":  # the built-in Hyperlink style, in the colour Excel gives it
            made.set_hyperlink()
            made.set_theme(0)
            made.set_font_color(_LINK_COLOUR)
        self._formats[key] = made
        return made

    def table(self, name: str, headers: Sequence[str], *, link: int | None = None) -> TableSheet:
        """The sheet ``name`` as a table under ``headers``; ``link`` is the column of web
        addresses."""
        _check_table(name, headers, len(headers), 0)
        return TableSheet(self, self._sheets[name], name, headers, link)

    def summary(self, summary: Summary) -> None:
        """Fill the sheet named as ``summary`` is: its title in row 1, its lines from row 3."""
        sheet = self._sheets[summary.name]
        title = (self.format("title"), self.format("title", quoted=True))
        label = (self.format("bold"), self.format("bold", quoted=True))
        value = (self.format(), self.format(quoted=True))
        _cell(sheet, 0, 0, summary.title, *title)
        for number, line in enumerate(summary.lines, start=2):
            _cell(sheet, number, 0, line[0], *label)
            _cell(sheet, number, 1, line[1], *value)
        for column, width in enumerate(summary.widths):
            sheet.set_column(column, column, min(width, 255.0))
        sheet.fit_to_pages(1, 0)

    def close(self, path: Path | None = None) -> None:
        """Write the workbook to its path, or to ``path``; raises ``OSError`` when it cannot be
        written."""
        if path is not None:
            self._book.filename = str(path)  # XlsxWriter opens the file only now
        from xlsxwriter.exceptions import FileCreateError  # type: ignore[import-untyped,unused-ignore]

        try:
            self._book.close()
        except FileCreateError as exc:
            cause = exc.args[0] if exc.args else None
            raise (cause if isinstance(cause, OSError) else OSError(str(exc))) from exc
        finally:
            self.discard()

    def discard(self) -> None:
        """Drop the rows streamed so far (kept in temporary files until the workbook is
        written)."""
        for sheet in self._sheets.values():
            handle: IO[str] | None = getattr(sheet, "row_data_fh", None)
            if handle is not None:
                handle.close()
        for temp in self._temporary():
            temp.unlink(missing_ok=True)
            files.written(temp)

    def _temporary(self) -> list[Path]:
        """The files XlsxWriter keeps each sheet's rows in until the workbook is written."""
        names = (getattr(sheet, "row_data_filename", None) for sheet in self._sheets.values())
        return [Path(name) for name in names if name]

    def __enter__(self) -> Book:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


class TableSheet:
    """A table's sheet: its header row written, its rows added in order."""

    def __init__(
        self, book: Book, sheet: Worksheet, name: str, headers: Sequence[str], link: int | None
    ) -> None:
        self._book, self._sheet, self._name, self._link = book, sheet, name, link
        self._headers = headers
        self.rows = 0
        self._links = 0
        bold = (book.format("bold"), book.format("bold", quoted=True))
        for column, title in enumerate(headers):
            _cell(sheet, 0, column, title, *bold, filled=True)

    def add(self, row: Sequence[int | str], colour: str | None = None) -> None:
        """Add ``row`` under the last one, filled with ``colour``."""
        if self.rows + 1 >= MAX_ROWS or len(row) > MAX_COLUMNS:
            _check_table(self._name, self._headers, len(row), self.rows + 1)
        self.rows += 1
        number = self.rows
        plain, quoted = (
            self._book.format(colour=colour),
            self._book.format(colour=colour, quoted=True),
        )
        sheet = self._sheet
        for column, value in enumerate(row):
            if column == self._link and self._links < LINK_LIMIT:
                address = _address(value)
                if address is not None:
                    self._links += 1
                    link = self._book.format("link", colour)
                    sheet.write_url(number, column, address, link, address)
                    continue
            _cell(sheet, number, column, value, plain, quoted, filled=colour is not None)

    def finish(self, widths: Sequence[float] = ()) -> None:
        """Freeze the header row, filter the rows, set the columns' widths and the printed page."""
        sheet = self._sheet
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, self.rows, len(self._headers) - 1)
        for column, chars in enumerate(widths):
            sheet.set_column(column, column, min(chars, 255.0))
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)


def _cell(
    sheet: Worksheet,
    row: int,
    column: int,
    value: int | str,
    plain: Format,
    quoted: Format,
    *,
    filled: bool = False,
) -> None:
    """Write ``value``: a whole number as a number, text as text (quote-prefixed when it starts
    like a formula), empty text as an empty cell (kept only when it is ``filled``)."""
    if not isinstance(value, str):
        sheet.write_number(row, column, value, plain)
    elif value:
        text = _text(value)
        sheet.write_string(row, column, text, quoted if text.startswith(FORMULA_STARTS) else plain)
    elif filled:
        sheet.write_blank(row, column, None, plain)


def _text(value: str) -> str:
    """``value`` as a cell can hold it: what XML cannot hold replaced, cut at Excel's limit."""
    return _cut(_ILLEGAL.sub("\ufffd", value))


def _address(value: int | str) -> str | None:
    """``value`` as a hyperlink's address, when it is a web address Excel can link to."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        return None
    text = _text(value)
    return text if len(text) <= URL_LIMIT and _URL.match(text) else None


def _cut(text: str) -> str:
    """``text`` cut at Excel's limit for a cell, which counts in UTF-16 units."""
    if len(text) <= CELL_LIMIT // 2:
        return text
    return text.encode("utf-16-le")[: 2 * CELL_LIMIT].decode("utf-16-le", errors="ignore")


def _check_names(names: Sequence[str]) -> None:
    """Raise ``ValueError`` for sheet names Excel refuses."""
    if not names:
        raise ValueError("a workbook needs a sheet")
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


def _check_table(name: str, headers: Sequence[str], width: int, rows: int) -> None:
    """Raise ``ValueError`` for a table no Excel sheet can hold."""
    if not headers:
        raise ValueError(f"sheet {name!r} has no columns")
    if width > MAX_COLUMNS or rows >= MAX_ROWS:
        raise ValueError(
            f"sheet {name!r} has {rows + 1:,} rows of {width:,} columns, more than the "
            f"{MAX_ROWS:,} rows of {MAX_COLUMNS:,} columns of an Excel sheet"
        )


def _check_colour(colour: str | None) -> None:
    if colour is not None and not _COLOUR.fullmatch(colour):
        raise ValueError(f"{colour!r} is no RGB colour, such as 'C6EFCE'")
