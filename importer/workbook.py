"""Excel workbooks (.xlsx, .xlsm), read with python-calamine: cells as the text Excel shows."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

from .columns import fold
from .errors import InputError
from .grid import HEADER_SEARCH_ROWS, build_table, header_index, no_email_column, read_settings
from .models import Table


def read(path: Path, sheet: str | None) -> Table:
    """The first sheet with an e-mail column (or the one named), and the Settings sheet."""
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
