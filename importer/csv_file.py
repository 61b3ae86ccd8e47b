"""CSV and text files: the encoding, the delimiter and the header row are found, not assumed."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
from pathlib import Path

from .errors import InputError
from .grid import HEADER_SEARCH_ROWS, build_table, header_index, no_email_column
from .models import Table

DELIMITERS = (",", ";", "\t")
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


def read(path: Path) -> Table:
    """Read a CSV or TXT file (UTF-8, UTF-16 or Windows-1252; comma, semicolon or tab)."""
    text, notes = _decode(path)
    delimiter, header_at = _sniff(path, text)
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
    _check_separators(path, grid, header_at, delimiter)
    return build_table(path.name, path, grid, header_at, sheet=None, notes=notes, unmark=True)


def _check_separators(path: Path, grid: list[list[str]], header_at: int, used: str) -> None:
    """Refuse a file whose rows are separated differently from its header (mixed exports)."""
    if len(grid[header_at]) < 3:
        return
    body = grid[header_at + 1 :]
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
        index = header_index(head)
        if index is None:
            first = next((row for row in head if any(cell.strip() for cell in row)), [])
            widest = first if len(first) > len(widest) else widest
            continue
        width = sum(1 for cell in head[index] if cell.strip())
        if best is None or width > best[0]:
            best = (width, delimiter, index)
    if best is None:
        raise no_email_column(path.name, widest)
    return best[1], best[2]
