"""Read a CSV or Excel file into a :class:`~importer.models.Table` of text cells.

Every cell comes back as text, exactly as the person typed it (``0049`` stays ``0049``), and every
row keeps the line number Excel shows for it, so that messages and the report can point at it.
The header is the first row, within the first ten, that names an e-mail column: sheets often carry
a title or settings above the table.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import io
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .columns import fold, looks_like_header
from .errors import InputError
from .models import FORMULA_STARTS, RawRow, Table

CSV_SUFFIXES = frozenset({".csv", ".txt"})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
HEADER_SEARCH_ROWS = 10
DELIMITERS = (",", ";", "\t")
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"


def read_table(path: Path, *, sheet: str | None = None) -> Table:
    """Read ``path`` (CSV, TXT, XLSX or XLSM); raise :class:`InputError` when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | EXCEL_SUFFIXES:
        raise InputError(
            f"{path.name}: cannot read '{suffix or 'no extension'}' files; "
            "save the list as .xlsx or .csv and run again"
        )
    try:
        head = _peek(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the name and the folder") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file; name the spreadsheet itself") from None
    except OSError as exc:
        raise InputError(
            f"{path.name}: cannot be opened ({exc.strerror}); close it and retry"
        ) from exc
    if not head.strip():
        raise InputError(f"{path.name}: the file is empty; save the list into it and run again")
    if suffix in EXCEL_SUFFIXES:
        if sheet is None and not head.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
            raise InputError(
                f"{path.name}: is not an Excel workbook (perhaps a CSV file with an Excel name); "
                "open it in Excel and save it as .xlsx, or rename it to .csv"
            )
        return _read_excel(path, sheet)
    if sheet is not None:
        raise InputError(f"{path.name}: --sheet applies only to Excel files; leave it out")
    if head.startswith(_ZIP_MAGIC):
        raise InputError(f"{path.name}: is an Excel workbook, not a CSV file; rename it to .xlsx")
    return _read_csv(path)


def _peek(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4096)


# --- CSV -----------------------------------------------------------------------------------------


def _read_csv(path: Path) -> Table:
    text, notes = _decode(path)
    delimiter, header_index = _sniff(path, text)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    try:
        grid = list(records)
    except csv.Error as exc:
        reason = str(exc)
        if "field larger than field limit" in reason:
            reason = "a cell is far too long, often a quotation mark that is never closed"
        raise InputError(
            f"{path.name}: line {records.line_num} cannot be read as CSV ({reason}); "
            "open the file in Excel and save it again as CSV UTF-8"
        ) from exc
    _check_separators(path, grid, header_index, delimiter)
    return _table(path, grid, header_index, sheet=None, notes=notes)


def _check_separators(path: Path, grid: list[list[str]], header_index: int, used: str) -> None:
    """Refuse a file whose rows are separated differently from its header (mixed exports)."""
    if len(grid[header_index]) < 3:
        return
    body = grid[header_index + 1 :]
    single = [row for row in body if len(row) == 1]
    if not single:
        return
    others = [d for d in DELIMITERS if d != used]
    lumped = [row for row in single if any(d in row[0] for d in others)]
    rows = [row for row in body if "".join(row).strip()]
    if rows and len(lumped) * 2 > len(rows):
        found = next(d for d in others if d in lumped[0][0])
        raise InputError(
            f"{path.name}: the header is separated by {_NAMES[used]} but most rows by "
            f"{_NAMES[found]}; open the file in Excel and save it again as CSV"
        )


_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


def _decode(path: Path) -> tuple[str, tuple[str, ...]]:
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), ()
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path.name}: is damaged (broken UTF-16 text); save it again"
            ) from exc
    if b"\x00" in data:
        raise InputError(
            f"{path.name}: holds binary data, not text; export the list as CSV UTF-8 or .xlsx"
        )
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path.name}: is neither UTF-8 nor Windows-1252 text; "
            "open it in Excel and save it as 'CSV UTF-8 (Comma delimited)'"
        ) from exc
    note = (
        f"{path.name}: not UTF-8, read as Windows-1252 (Excel's 'CSV (Comma delimited)'); "
        "check accented names in the report, or save as 'CSV UTF-8' next time"
    )
    return text, (note,)


def _sniff(path: Path, text: str) -> tuple[str, int]:
    """The delimiter under which a header row appears, and that row's index."""
    best: tuple[int, str, int] | None = None
    widest: list[str] = []
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
        head: list[list[str]] = []
        with contextlib.suppress(csv.Error):  # a broken row further down is reported later
            head.extend(itertools.islice(reader, HEADER_SEARCH_ROWS))
        index = _header_index(head)
        if index is None:
            first = next((row for row in head if any(cell.strip() for cell in row)), [])
            widest = first if len(first) > len(widest) else widest
            continue
        width = sum(1 for cell in head[index] if cell.strip())
        if best is None or width > best[0]:
            best = (width, delimiter, index)
    if best is None:
        raise _no_email_column(path, widest)
    return best[1], best[2]


# --- Excel ---------------------------------------------------------------------------------------


def _read_excel(path: Path, sheet: str | None) -> Table:
    # python-calamine directly: pandas' read_excel over the same engine spends longer converting
    # cells than calamine spends parsing the file.
    from python_calamine import CalamineWorkbook

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
        try:
            cells = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        except Exception as exc:  # a sheet calamine cannot decode
            raise InputError(
                f"{path.name}: sheet '{name}' cannot be read ({type(exc).__name__}); "
                "open it in Excel and save it again"
            ) from exc
        grid = [
            [value if type(value) is str else _cell_text(value) for value in row] for row in cells
        ]
        index = _header_index(grid[:HEADER_SEARCH_ROWS])
        if index is not None:
            settings, notes = _settings_sheet(path, book, names, name)
            return _table(path, grid, index, sheet=name, notes=notes, settings=settings)
        if not first_seen:
            first_seen = next((row for row in grid if any(row)), [])
    raise _no_email_column(path, first_seen, sheet=sheet)


def _settings_sheet(
    path: Path, book: Any, names: list[str], data_sheet: str
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The pairs of a sheet named Settings (the template's), if the workbook has one."""
    name = next((n for n in names if fold(n) == "settings" and n != data_sheet), None)
    if name is None:
        return {}, ()
    try:
        cells = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    except Exception:  # an unreadable settings sheet is as good as none
        return {}, ()
    rows = [[value if type(value) is str else _cell_text(value) for value in row] for row in cells]
    return _settings(path, rows, None, ())


def _cell_text(value: object) -> str:
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


# --- shared --------------------------------------------------------------------------------------


def _header_index(rows: Sequence[Sequence[str]]) -> int | None:
    for index, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
        if looks_like_header(row):
            return index
    return None


def _table(
    path: Path,
    grid: list[list[str]],
    header_index: int,
    *,
    sheet: str | None,
    notes: tuple[str, ...],
    settings: Mapping[str, str] | None = None,
) -> Table:
    settings, notes = _settings(path, grid[:header_index], settings, notes)
    header = [cell.strip() for cell in grid[header_index]]
    body = grid[header_index + 1 :]
    dropped = [i for i, cell in enumerate(header) if fold(cell).startswith("curl")]
    if dropped:
        # The old curl workbook builds commands that contain the access token: never keep them.
        keep = [i for i in range(len(header)) if i not in dropped]
        header = [header[i] for i in keep]
        body = [[row[i] for i in keep if i < len(row)] for row in body]
    # Rows are as wide as the header, except where cells stand beyond it; those columns count
    # only as far as something is written in them.
    longest = max(map(len, body), default=0)
    width = _used_width(header)
    if longest > width:
        width = max([width, *(_used_width(row) for row in body if len(row) > width)])
    headers = tuple(
        header[i] if i < len(header) and header[i] else f"column {_column_letter(i)}"
        for i in range(width)
    )
    rows: list[RawRow] = []
    blank = 0
    for offset, cells in enumerate(body, start=header_index + 2):
        joined = "".join(cells)
        if not joined.strip():
            blank += 1
            continue
        if sheet is None and "'" in joined:
            cells = [_unmark(cell) for cell in cells]
        if len(cells) != width:
            cells = cells[:width] + [""] * (width - len(cells))
        rows.append(RawRow(offset, tuple(cells)))
    if not rows:
        where = f" of sheet '{sheet}'" if sheet is not None else ""
        raise InputError(
            f"{path.name}: has a header in line {header_index + 1}{where} but no rows below it; "
            "add the people to register and run again"
        )
    return Table(
        source=path,
        headers=headers,
        header_line=header_index + 1,
        rows=tuple(rows),
        sheet=sheet,
        notes=notes,
        blank_rows=blank,
        settings=settings,
    )


SETTINGS = {
    "webinarkey": "webinarKey",
    "organizerkey": "organizerKey",
    "resendconfirmation": "resendConfirmation",
}
_TOKEN_NAMES = frozenset({"accesstoken", "token", "bearertoken", "authorization"})


def _settings(
    path: Path,
    rows: Sequence[Sequence[str]],
    found: Mapping[str, str] | None,
    notes: tuple[str, ...],
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Name/value pairs from ``rows`` (a Settings sheet, or rows above the header).

    A row naming an access token is noted, and its value is dropped unread: the importer never
    takes a token from a spreadsheet, which gets mailed around.
    """
    settings = dict(found or {})
    for row in rows:
        cells = [cell.strip() for cell in row if cell.strip()]
        if len(cells) < 2:
            continue
        name = fold(cells[0])
        if name in _TOKEN_NAMES:
            notes = (
                *notes,
                (
                    f"{path.name}: holds an access token near the top; it is not used. Delete it "
                    "from the file, and revoke it in GoTo if the file has been shared"
                ),
            )
        elif name in SETTINGS:
            settings.setdefault(SETTINGS[name], cells[1])
    return settings, notes


def _unmark(cell: str) -> str:
    """Drop the apostrophe that keeps a CSV cell from being a formula (as reports write them)."""
    return cell[1:] if cell[:1] == "'" and cell[1:2].startswith(FORMULA_STARTS) else cell


def _used_width(row: Sequence[str]) -> int:
    for index in range(len(row) - 1, -1, -1):
        if row[index].strip():
            return index + 1
    return 0


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _no_email_column(
    path: Path, first_row: Iterable[str], *, sheet: str | None = None
) -> InputError:
    found = [cell.strip() for cell in first_row if cell.strip()][:8]
    seen = f" (first row: {', '.join(repr(cell) for cell in found)})" if found else ""
    place = f" of sheet '{sheet}'" if sheet is not None else ""
    return InputError(
        f"{path.name}: no e-mail column found in the first {HEADER_SEARCH_ROWS} rows{place}{seen}; "
        "add a header row with columns named firstName, lastName and email"
    )
