"""CSV and text files: the encoding, the delimiter and the header row are found, not assumed."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import itertools
import re
from pathlib import Path

from importer.errors import InputError
from importer.model import Table
from importer.read.grid import HEADER_SEARCH_ROWS, build_table, header_index, no_email_column

DELIMITERS = (",", ";", "\t")
#: a valid multi-byte UTF-8 sequence: a file with one is UTF-8, even if some bytes are broken
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)
_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}


def read(path: Path) -> Table:
    """Read a CSV or TXT file (UTF-8, UTF-16, UTF-32 or Windows-1252; comma, semicolon or
    tab)."""
    text, notes = _decode(path)
    delimiter, header_at = _sniff(path, text)
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    grid: list[list[str]] = []
    starts: list[int] = []  # the line of the file each record starts on
    try:
        start = 1
        for record in records:
            grid.append(record)
            starts.append(start)
            if records.line_num - start >= 2 and len(grid) > header_at + 1:
                width = len(grid[header_at])
                _unclosed_quote(path, record, len(grid), start, records.line_num, delimiter, width)
            start = records.line_num + 1
    except csv.Error as exc:
        reason = str(exc)
        if "field larger than field limit" in reason:
            reason = "a cell is far too long, often a quotation mark that is never closed"
        raise InputError(
            f"{path.name}: line {records.line_num} cannot be read as CSV ({reason}); "
            "open the file in Excel and save it again as CSV UTF-8"
        ) from exc
    last = grid[-1] if grid else []
    if any("\n" in cell or "\r" in cell for cell in last) and _ends_inside_quotes(text, delimiter):
        raise InputError(
            f"{path.name}: row {len(grid)} (line {starts[-1]} of the file) opens a quotation "
            "mark that is never closed: its cell runs to the end of the file; close the "
            "quotation mark or remove it, and run again"
        )
    _check_separators(path, grid, header_at, delimiter)
    return build_table(path.name, path, grid, header_at, sheet=None, notes=notes, unmark=True)


#: embedded lines that look like rows of their own (this many delimiters or more) betray a
#: quotation mark left open: real cells with line breaks (an address, a note) do not hold rows
_ROW_LIKE_LINES = 2


def _unclosed_quote(
    path: Path, record: list[str], row: int, start: int, end: int, delimiter: str, width: int
) -> None:
    """Refuse a record whose quoted cell swallowed the rows below it: several of the lines in
    it hold as many delimiters as a row of ``width`` cells."""
    needed = max(1, width - 1)
    for cell in record:
        lines = cell.splitlines()
        row_like = sum(1 for line in lines[1:] if line.count(delimiter) >= needed)
        if row_like >= _ROW_LIKE_LINES:
            raise InputError(
                f"{path.name}: row {row} (line {start} of the file) opens a quotation mark "
                f"that is not closed where the cell ends: it runs over the next {end - start:,} "
                f"lines and takes in {row_like:,} rows; close it, or remove it, and run again"
            )


def _ends_inside_quotes(text: str, delimiter: str) -> bool:
    """Whether the file ends inside a quoted cell (a quotation mark never closed)."""
    strict = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for _ in strict:
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


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


#: byte-order marks, UTF-32's first: its little-endian mark begins like UTF-16's
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
#: how much of a file with NUL bytes is looked at to tell UTF-16 and UTF-32 from binary data
_SAMPLE = 1 << 16
#: what a file with NUL bytes that is no Unicode text may be, by how it begins
_SIGNATURES = (
    (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Excel 97-2003 workbook (.xls) or another Office file",
        "open it in Excel and save it as .xlsx or CSV UTF-8",
    ),
    (b"%PDF", "a PDF document", "export the list from where it came as CSV UTF-8 or .xlsx"),
    (b"\x1f\x8b", "a gzip-compressed file", "unpack it and name the file inside"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "unpack it and name the file inside"),
    (b"Rar!", "a RAR archive", "unpack it and name the file inside"),
    (b"SQLite format 3\x00", "an SQLite database", "export the list from it as CSV UTF-8"),
    (b"\x89PNG", "a PNG picture", "name the list itself, as CSV UTF-8 or .xlsx"),
    (b"\xff\xd8\xff", "a JPEG picture", "name the list itself, as CSV UTF-8 or .xlsx"),
    (b"GIF8", "a GIF picture", "name the list itself, as CSV UTF-8 or .xlsx"),
)


def _decode(path: Path) -> tuple[str, tuple[str, ...]]:
    data = path.read_bytes()
    for mark, encoding in _BOMS:
        if data.startswith(mark):
            return _decode_unicode(path, data[len(mark) :], encoding), ()
    if b"\x00" in data:
        wide = _wide_encoding(data)
        if wide is None:
            raise InputError(_binary(path.name, data))
        return _decode_unicode(path, data, wide), ()
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError as exc:
        if _UTF8_SEQUENCE.search(data):
            # Mostly UTF-8 with a few broken bytes: reading it all as Windows-1252 would turn
            # every accented letter into two ("JÃ¼rgen"). Stop and say where.
            line = data.count(b"\n", 0, exc.start) + 1
            raise InputError(
                f"{path.name}: line {line} has bytes that are not UTF-8 (at byte "
                f"{exc.start:,}) in a file that is otherwise UTF-8; fix that line, or open the "
                "file in Excel and save it as 'CSV UTF-8'"
            ) from None
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


def _decode_unicode(path: Path, data: bytes, encoding: str) -> str:
    """UTF-16 or UTF-32 text; a file broken in the middle is refused, naming where."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        name = encoding[:6].upper()
        raise InputError(
            f"{path.name}: is damaged: broken {name} text at byte {exc.start:,}; open it in "
            "Excel and save it again as 'CSV UTF-8'"
        ) from None


def _wide_encoding(data: bytes) -> str | None:
    """UTF-32 or UTF-16 without a byte-order mark, told by where the NUL bytes stand.

    Each character takes four bytes (UTF-32) or two (UTF-16); in the text of a list (letters,
    digits, @, commas, line breaks) the high bytes of most of them are zero. UTF-32 has its
    top byte zero in every character, and the one below it in every character of the first
    65,536; UTF-16 has one byte of each pair zero for every character up to U+00FF and the
    other almost never.
    """
    sample = data[:_SAMPLE]
    sample = sample[: len(sample) - len(sample) % 4]
    if not sample:
        return None
    quarter = len(sample) // 4
    zero = [sample[i::4].count(0) / quarter for i in range(4)]
    if zero[3] == 1 and zero[2] > 0.9 and zero[0] < 0.5:
        return "utf-32-le"
    if zero[0] == 1 and zero[1] > 0.9 and zero[3] < 0.5:
        return "utf-32-be"
    even, odd = (zero[0] + zero[2]) / 2, (zero[1] + zero[3]) / 2
    if odd > 0.2 and even < 0.02:
        return "utf-16-le"
    if even > 0.2 and odd < 0.02:
        return "utf-16-be"
    return None


def _binary(name: str, data: bytes) -> str:
    """What a file with NUL bytes that is no Unicode text seems to be, in one line."""
    for signature, what, advice in _SIGNATURES:
        if data.startswith(signature):
            return f"{name}: holds binary data, not text: it looks like {what}; {advice}"
    nuls = data.count(0)
    first = data.index(0)
    line = data.count(b"\n", 0, first) + 1
    if nuls * 100 < len(data) and _is_utf8(data.replace(b"\x00", b"")):
        return (
            f"{name}: is text with {nuls:,} NUL {'byte' if nuls == 1 else 'bytes'} in it (the "
            f"first in line {line:,}), which no spreadsheet program writes; export the list "
            "again as CSV UTF-8, or remove them"
        )
    return (
        f"{name}: holds binary data, not text (a NUL byte in line {line:,}, at byte {first:,}); "
        "export the list as CSV UTF-8 or .xlsx"
    )


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
