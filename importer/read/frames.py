"""Input given in Python: a pandas DataFrame, or records (an iterable of mappings).

Columns are matched exactly like a file's headers, and every value becomes the text a person
would have typed: ``0049 30 1234`` stays as it is, the integer 12 is ``12`` (also when a missing
value made pandas store the column as floats), ``None``, ``NaN``, ``pd.NA`` and ``NaT`` are empty
cells, never the text ``nan``, and a 19-digit key held as a Python integer keeps every digit.
Rows are numbered as in a spreadsheet with the header in row 1: the first record is row 2.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from importer.errors import InputError
from importer.model import Table
from importer.read.grid import build_table, header_index, no_email_column
from importer.read.workbook import cell_text

FRAME_NAME = "the DataFrame"
RECORDS_NAME = "the records"


def read(source: Any) -> Table:
    """A table from a pandas DataFrame or from an iterable of mappings."""
    if _is_data_frame(source):
        return _from_frame(source)
    if isinstance(source, Mapping) or not isinstance(source, Iterable):
        raise InputError(
            f"cannot read a {type(source).__name__}: give a file path, a pandas DataFrame, or "
            "a list of dicts (one per person)"
        )
    return _from_records(source)


def _is_data_frame(source: object) -> bool:
    return type(source).__module__.startswith("pandas") and hasattr(source, "itertuples")


def _from_frame(frame: Any) -> Table:
    headers = [text(column) for column in frame.columns]
    grid = [headers]
    grid += [[text(value) for value in row] for row in frame.itertuples(index=False, name=None)]
    return replace(_table(FRAME_NAME, grid), index=tuple(frame.index))


def _from_records(records: Iterable[Any]) -> Table:
    rows: list[Mapping[Any, Any]] = []
    order: dict[Any, None] = {}
    for number, record in enumerate(records, start=2):
        if not isinstance(record, Mapping):
            raise InputError(
                f"{RECORDS_NAME}: row {number} is a {type(record).__name__}, not a mapping of "
                "column to value; give one dict per person"
            )
        rows.append(record)
        order.update(dict.fromkeys(record))
    columns = list(order)
    grid = [[text(column) for column in columns]]
    grid += [[text(record.get(column)) for column in columns] for record in rows]
    return _table(RECORDS_NAME, grid)


def _table(name: str, grid: list[list[str]]) -> Table:
    if header_index(grid[:1]) is None:
        raise no_email_column(name, grid[0])
    if len(grid) < 2:
        raise InputError(f"{name}: has no rows; add the people to register and run again")
    return build_table(name, None, grid, 0, sheet=None)


def text(value: object) -> str:
    """A Python or pandas value as the text a person would have typed into a cell."""
    if type(value) is str:
        return value
    if value is None or _missing(value):
        return ""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Rational):
        number = float(value)
        if number.is_integer() and abs(number) < 1e16:
            return str(int(number))
        return repr(number)
    if isinstance(value, dt.date | dt.time | dt.timedelta):
        return cell_text(value)
    return str(value)


def _missing(value: object) -> bool:
    """NaN, ``pd.NA`` and ``NaT``: the ways pandas writes an empty cell."""
    if isinstance(value, float):
        return math.isnan(value)
    name = type(value).__name__
    if name in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # NaN-like numpy scalars
    except (TypeError, ValueError):
        return False
