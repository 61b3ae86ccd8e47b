"""Read the input into a :class:`~importer.models.Table` of text cells.

The input is a CSV or Excel file (``csv_file.py``, ``workbook.py``), or, from Python, a pandas
DataFrame or records (``frames.py``). Every cell comes back as text, exactly as the person typed
it (``0049`` stays ``0049``), and every row keeps the line number Excel shows for it, so that
messages and the report can point at it. The header is the first row, within the first ten, that
names an e-mail column: sheets often carry a title or settings above the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import csv_file, frames, workbook
from .errors import InputError
from .models import Table

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


def read(source: Source, *, sheet: str | None = None) -> Table:
    """Read a file path, a pandas DataFrame or an iterable of mappings into a table."""
    if isinstance(source, str | Path):
        return read_table(Path(source), sheet=sheet)
    if sheet is not None:
        raise InputError("sheet= applies only to Excel files; leave it out")
    return frames.read(source)


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
