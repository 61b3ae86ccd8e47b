"""Write the JoinUrl report: one row per input row, in the input's order, as XLSX or CSV.

The report is written to a temporary file beside the target and renamed into place, so a crash
leaves either the previous report or the new one, never half of one. Nothing is ever stored as a
formula: keys are text (they have 19 digits, more than Excel keeps of a number), and a cell that
starts like a formula is stored as plain text in XLSX and behind an apostrophe in CSV.
"""

from __future__ import annotations

import collections
import csv
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .columns import REQUIRED
from .errors import ReportError
from .models import Result, Status
from .validate import Plan, normalise

LEAD = ("row", *REQUIRED)
TRAIL = ("status", "registrantKey", "joinUrl", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SUFFIXES = (".xlsx", ".csv")
_EXCEL_CELL_LIMIT = 32767
_WIDTH_SAMPLE = 2000


@dataclass(frozen=True)
class Report:
    """The report's table: headers, rows of text (row numbers as int) and each row's status."""

    headers: tuple[str, ...]
    rows: list[tuple[int | str, ...]]
    statuses: list[Status]

    def counts(self) -> collections.Counter[Status]:
        """How many rows ended in each status."""
        return collections.Counter(self.statuses)


def default_path(source: Path) -> Path:
    """``people.csv`` → ``people-joinurls.xlsx`` in the same folder."""
    return source.with_name(f"{source.stem}-joinurls.xlsx")


def build(plan: Plan, results: Mapping[int, Result]) -> Report:
    """Every input row with its outcome; a row with no result is pending."""
    table = plan.table
    lead = [plan.columns.positions[name] for name in REQUIRED]
    others = [i for i in range(len(table.headers)) if i not in lead]
    reserved = set(LEAD) | set(TRAIL)
    headers = (
        *LEAD,
        *(
            f"{table.headers[i]} (input)" if table.headers[i] in reserved else table.headers[i]
            for i in others
        ),
        *TRAIL,
    )
    rows: list[tuple[int | str, ...]] = []
    statuses: list[Status] = []
    for raw in table.rows:
        result = _outcome(plan, results, raw.line)
        rows.append(
            (
                raw.line,
                *(normalise(raw.cells[i]) for i in lead),
                *(raw.cells[i] for i in others),
                result.status.value,
                result.registrant_key or "",
                result.join_url or "",
                result.error or "",
            )
        )
        statuses.append(result.status)
    return Report(headers, rows, statuses)


def _outcome(plan: Plan, results: Mapping[int, Result], line: int) -> Result:
    problems = plan.problems.get(line)
    if problems:
        return Result(line, Status.INVALID, error="; ".join(str(p) for p in problems))
    earlier = plan.duplicates.get(line)
    if earlier is not None:
        return Result(line, Status.DUPLICATE, error=f"same e-mail as row {earlier}; not sent again")
    return results.get(line) or Result(
        line, Status.PENDING, error="not sent: the run stopped first; run the command again"
    )


def write(report: Report, path: Path) -> Path:
    """Write ``report`` to ``path`` (.xlsx or .csv) atomically; return where it was written.

    When ``path`` cannot be replaced (on Windows, while Excel has it open) the report is
    written beside it under a time-stamped name instead, and that path is returned.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReportError(f"{path.name}: a report must end in .xlsx or .csv; choose another --out")
    if not path.parent.is_dir():
        raise ReportError(
            f"{path.parent}: no such folder for the report; create it or change --out"
        )
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(handle)
    temp = Path(temp_name)
    try:
        if suffix == ".xlsx":
            _write_xlsx(report, temp)
        else:
            _write_csv(report, temp)
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
        return _move_into_place(temp, path)
    except OSError as exc:
        raise ReportError(
            f"{path}: the report could not be written ({exc.strerror or exc}); "
            "free some space or choose another --out"
        ) from exc
    finally:
        temp.unlink(missing_ok=True)


def _move_into_place(temp: Path, path: Path) -> Path:
    try:
        os.replace(temp, path)
        return path
    except PermissionError:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        beside = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
        os.replace(temp, beside)
        return beside


def _write_csv(report: Report, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(report.headers)
        for row in report.rows:
            writer.writerow([_csv_cell(value) for value in row])


def _csv_cell(value: int | str) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write_xlsx(report: Report, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet("Registrants")
    sheet.freeze_panes = "A2"
    for index, width in enumerate(_widths(report), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    bold = Font(bold=True)
    header = []
    for title in report.headers:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    link_column = report.headers.index("joinUrl")

    def cell_for(column: int, value: int | str) -> WriteOnlyCell:
        if isinstance(value, int):
            return WriteOnlyCell(sheet, value=value)
        text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)[:_EXCEL_CELL_LIMIT]
        cell = WriteOnlyCell(sheet, value=text)
        cell.data_type = "s"  # never a formula, whatever the text starts with
        if text.startswith(FORMULA_STARTS):
            cell.quotePrefix = True  # and Excel keeps it text when the cell is edited
        elif column == link_column and text.startswith(("https://", "http://")):
            cell.hyperlink = text
            cell.style = "Hyperlink"
        return cell

    for row in report.rows:
        sheet.append([cell_for(column, value) for column, value in enumerate(row)])
    last = get_column_letter(len(report.headers))
    sheet.auto_filter.ref = f"A1:{last}{len(report.rows) + 1}"
    book.save(path)


def _widths(report: Report) -> Iterator[float]:
    for column, title in enumerate(report.headers):
        longest = max([len(title), *(len(str(row[column])) for row in report.rows[:_WIDTH_SAMPLE])])
        yield min(60.0, max(8.0, longest + 2.0))
