"""Read the input into a :class:`~importer.model.Table` of text cells.

The input is a CSV or Excel file (``csv_file.py``, ``workbook.py``), or, from Python, a pandas
DataFrame or records (``frames.py``). Every cell comes back as text, exactly as the person typed
it (``0049`` stays ``0049``), and every row keeps the line number Excel shows for it, so that
messages and the report can point at it. The header is the first row, within the first ten, that
names an e-mail column: sheets often carry a title or settings above the table.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from importer.errors import InputError
from importer.model import Table
from importer.read import csv_file, frames, workbook

CSV_SUFFIXES = frozenset({".csv", ".txt"})
EXCEL_SUFFIXES = frozenset({".xlsx", ".xlsm"})
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"

#: what a source may be: a file, a DataFrame, or records (mappings of column → value)
Source = Path | str | Any


def unreadable_kind(suffix: str) -> str:
    """Why a file of this name cannot be read, in words."""
    if not suffix:
        return "has no extension, so what it holds is unknown"
    return f"cannot read '{suffix}' files"


def read(source: Source, *, sheet: str | None = None, include_hidden_rows: bool = False) -> Table:
    """Read a file path, a pandas DataFrame or an iterable of mappings into a table.

    Rows hidden in Excel are marked, and left out of what is sent unless
    ``include_hidden_rows``.
    """
    if isinstance(source, str | Path):
        table = read_table(Path(source), sheet=sheet)
        return replace(table, send_hidden_rows=True) if include_hidden_rows else table
    if sheet is not None:
        raise InputError("sheet= applies only to Excel files; leave it out")
    return frames.read(source)


def visible_rows(table: Table) -> Table:
    """The table without the rows hidden in Excel, and a note that says which were left out.

    For the commands that act on the people of a file without a report row for each (cancel,
    undo): a row someone hid, by a filter or by hand, is not acted on unseen.
    """
    hidden = [row.line for row in table.rows if row.hidden]
    if not hidden:
        return table
    shown = ", ".join(str(line) for line in hidden[:10]) + (", …" if len(hidden) > 10 else "")
    rows = "row" if len(hidden) == 1 else "rows"
    if len(hidden) == len(table.rows):
        raise InputError(
            f"{table.describe()}: every row is hidden in Excel (by a filter or by hand); "
            "unhide the rows to act on, save, and run again"
        )
    note = (
        f"{table.describe()}: {len(hidden):,} {rows} hidden in Excel (by a filter or by hand) "
        f"{'is' if len(hidden) == 1 else 'are'} left out ({rows} {shown}); unhide "
        f"{'it' if len(hidden) == 1 else 'them'} and run again to include "
        f"{'it' if len(hidden) == 1 else 'them'}"
    )
    return replace(
        table,
        rows=tuple(row for row in table.rows if not row.hidden),
        notes=(*table.notes, note),
    )


def read_table(path: Path, *, sheet: str | None = None) -> Table:
    """Read ``path`` (CSV, TXT, XLSX or XLSM); raise :class:`InputError` when it cannot be used."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a file; name the spreadsheet itself")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | EXCEL_SUFFIXES:
        raise InputError(
            f"{path.name}: {unreadable_kind(suffix)}; save the list as .xlsx or .csv and run again"
        )
    if path.exists() and not path.is_file():  # opening a pipe would wait for a writer
        raise InputError(
            f"{path}: is a device, pipe or socket, not a file; save the list as a file and "
            "name that"
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the name and the folder") from None
    except PermissionError:
        raise InputError(
            f"{path}: you may not read this file (permission denied); copy it to a folder of "
            "yours, or ask its owner"
        ) from None
    except OSError as exc:
        raise InputError(
            f"{path.name}: cannot be opened ({exc.strerror}); close it and retry"
        ) from exc
    if not head.strip():
        raise InputError(f"{path.name}: the file is empty; save the list into it and run again")
    if suffix in EXCEL_SUFFIXES:
        if sheet is None and not head.startswith((ZIP_MAGIC, OLE_MAGIC)):
            raise InputError(
                f"{path.name}: is not an Excel workbook (perhaps a CSV file with an Excel name); "
                "open it in Excel and save it as .xlsx, or rename it to .csv"
            )
        return workbook.read(path, sheet)
    if sheet is not None:
        raise InputError(f"{path.name}: --sheet applies only to Excel files; leave it out")
    if head.startswith(ZIP_MAGIC):
        raise InputError(f"{path.name}: is an Excel workbook, not a CSV file; rename it to .xlsx")
    return csv_file.read(path)
