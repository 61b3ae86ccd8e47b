"""Write the JoinUrl report: one row per input row, in the input's order, as XLSX or CSV.

The report is written to a temporary file beside the target and renamed into place, so a crash
leaves either the previous report or the new one, never half of one. Nothing is ever stored as a
formula: keys are text (they have 19 digits, more than Excel keeps of a number), and a cell that
starts like a formula is stored as plain text in XLSX and behind an apostrophe in CSV.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import errno
import os
import re
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from importer.errors import NoRoomForReport, ReportError, UsageError
from importer.files import NO_SPACE, write_atomically
from importer.model import FORMULA_STARTS, Status, Table
from importer.read.columns import REQUIRED, ColumnMap, fold
from importer.read.grid import MAX_COLUMNS, unquote
from importer.report import xlsx as report_xlsx
from importer.text import are, counted, normalise, repeated

if TYPE_CHECKING:
    from importer.report.outcome import Outcome

LEAD = ("row", *REQUIRED)
TRAIL = ("status", "registrantKey", "joinUrl", "error", "note")
SUFFIXES = (".xlsx", ".csv")
#: row colours: green for done, pale green for nothing to do, red for needs attention, yellow for
#: pending
GREEN, PALE_GREEN, RED, YELLOW = "C6EFCE", "E2EFDA", "FFC7CE", "FFEB9C"
#: neutral: rows left out on purpose (hidden in Excel)
GREY = "EDEDED"
_COLOURS = {
    Status.REGISTERED: GREEN,
    Status.ALREADY_REGISTERED: PALE_GREEN,
    Status.WAITING_APPROVAL: YELLOW,
    Status.INVALID: RED,
    Status.DUPLICATE: RED,
    Status.FAILED: RED,
    Status.DENIED: RED,
    Status.PENDING: YELLOW,
    Status.SKIPPED_HIDDEN: GREY,
}
_WIDTH_SAMPLE = 2000
#: rows to fix and register again; a duplicate is not one (its person is its first row's)
ATTENTION = frozenset({Status.INVALID, Status.FAILED})
#: the report's sheet of rows
REGISTRANTS_SHEET = "Registrants"


@dataclass(frozen=True)
class Report:
    """The report's table: headers, rows of text (row numbers as int) and each row's status.

    ``summary`` fills the XLSX report's first sheet; ``attention`` holds the rows that need a
    person's eye (invalid, failed) in the input's own columns, ready to be fixed and registered
    again.
    """

    headers: tuple[str, ...]
    rows: list[tuple[int | str, ...]]
    statuses: list[Status]
    summary: tuple[tuple[str, str | int], ...] = ()
    attention_headers: tuple[str, ...] = ()
    attention: list[tuple[str, ...]] = field(default_factory=list)
    #: the Summary sheet's title
    title: str = "Registration report"
    #: each row's colour (RGB hex), for a report of another command; by default the colour of
    #: the row's status
    colours: tuple[str | None, ...] = ()
    #: each attention row's line: in this run's input, and in the report its input came from
    #: (a needs-attention file's ``row`` column; None when the input says none)
    attention_lines: tuple[tuple[int, int | None], ...] = ()
    #: join URLs known to be cancelled: an older report that holds them has not lost them
    retired: frozenset[str] = frozenset()

    def counts(self) -> collections.Counter[Status]:
        """How many rows ended in each status."""
        return collections.Counter(self.statuses)


def default_path(source: Path) -> Path:
    """``people.csv`` → ``people-joinurls.xlsx`` in the same folder."""
    return source.with_name(f"{source.stem}-joinurls.xlsx")


def attention_path(source: Path, report: Path) -> Path:
    """``people-needs-attention.xlsx``, beside the report."""
    return report.with_name(f"{source.stem}-needs-attention.xlsx")


def build(outcome: Outcome, source_name: str | None = None) -> Report:
    """Every input row with its outcome, per webinar when there are several, and the Summary.

    ``source_name`` names the input file on the Summary (by default its path): the web page
    gives the name the file had on the person's computer, not the path of its upload.

    With several webinars the rows carry a ``webinarKey`` column after ``row``. Rows needing
    attention always name their webinar, so that the file they go into can be registered again
    as it is.
    """
    table = outcome.table
    positions = ColumnMap.from_headers(table.headers).positions
    lead = [positions.get(name) for name in REQUIRED]
    # the input's other columns, but not those left empty in every row (a template's unused
    # optional fields): they would only push the join URLs off the screen
    filled = {i for row in table.rows for i, cell in enumerate(row.cells) if cell.strip()}
    # a report (or a needs-attention file) fed back in brings the last run's own columns:
    # this run writes them afresh
    own = report_columns(table.headers)
    others = [
        i for i in range(len(table.headers)) if i not in lead and i in filled and i not in own
    ]
    reserved = set(LEAD) | set(TRAIL) | {"webinarKey"}
    several = len(outcome.webinars) > 1
    room = MAX_COLUMNS - len(LEAD) - len(TRAIL) - several
    dropped = max(0, len(others) - room)
    others = others[:room]  # an Excel sheet holds 16,384 columns
    headers = (
        "row",
        *(("webinarKey",) if several else ()),
        *REQUIRED,
        *(
            f"{table.headers[i]} (input)" if table.headers[i] in reserved else table.headers[i]
            for i in others
        ),
        *TRAIL,
    )
    # the attention file names each row's webinar, unless the input does or no webinar is known
    own_key = any(fold(h) == "webinarkey" for h in table.headers) or not any(
        result.webinar_key for result in outcome.rows
    )
    kept = [i for i in range(len(table.headers)) if i not in own]
    attention_headers = (
        *(table.headers[i] for i in kept),
        *(() if own_key else ("webinarKey",)),
        "error",
    )
    cells_of = {row.line: row.cells for row in table.rows}
    rows: list[tuple[int | str, ...]] = []
    statuses: list[Status] = []
    attention: list[tuple[str, ...]] = []
    lines: list[tuple[int, int | None]] = []
    origin = origin_column(table.headers)
    for result in outcome.rows:
        cells = cells_of[result.line]
        rows.append(
            (
                result.line,
                *((result.webinar_key,) if several else ()),
                *(normalise(cells[i]) if i is not None else "" for i in lead),
                *(cells[i] for i in others),
                result.status.value,
                result.registrant_key or "",
                result.join_url or "",
                result.error or "",
                result.note or "",
            )
        )
        statuses.append(result.status)
        if result.status in ATTENTION:
            key = () if own_key else (result.webinar_key,)
            attention.append((*(cells[i] for i in kept), *key, result.error or ""))
            lines.append((result.line, _line(cells[origin]) if origin is not None else None))
    made = Report(headers, rows, statuses, attention_headers=attention_headers, attention=attention)
    summary = _summary(outcome, made, source_name)
    if dropped:
        summary += (("Not in this report", f"{dropped:,} input columns past Excel's limit"),)
    return Report(
        headers,
        rows,
        statuses,
        summary,
        attention_headers,
        attention,
        attention_lines=tuple(lines),
        retired=frozenset().union(*(part.retired for part in outcome.webinars)),
    )


def report_columns(headers: Sequence[str]) -> set[int]:
    """The columns this tool's files add (``row``, ``status``, ``registrantKey``, ``joinUrl``,
    ``error``, ``note``) when ``headers`` are those of a report or a needs-attention file fed
    back in: at least two of them besides ``note`` (a word lists often use), or ``error`` last
    (as the needs-attention file has it)."""
    found = {i for i, header in enumerate(headers) if header in (*TRAIL, "row")}
    if len({headers[i] for i in found} - {"note"}) >= 2:
        return found
    return {len(headers) - 1} if headers and headers[-1] == "error" else set()


def origin_column(headers: Sequence[str]) -> int | None:
    """The ``row`` column of a needs-attention file fed back in: each row's line in the
    report it came from."""
    if "row" not in headers:
        return None
    index = headers.index("row")
    return index if index in report_columns(headers) else None


def _line(cell: str) -> int | None:
    text = cell.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 8 else None


def _summary(
    outcome: Outcome, report: Report, source_name: str | None = None
) -> tuple[tuple[str, str | int], ...]:
    table = outcome.table
    named = source_name or str(table.source or table.describe())
    lines: list[tuple[str, str | int]] = [("Input file", named)]
    for part in outcome.webinars:
        webinar = part.webinar
        if webinar is None:
            lines.append(("Webinar", f"{part.key} (not reached)"))
            continue
        lines.append(("Webinar", webinar.describe()))
    stamp = outcome.started.strftime("%Y-%m-%d %H:%M %Z")
    lines.append(("Run at", stamp.strip()))
    counts = report.counts()
    lines.append(("Rows", len(report.rows)))
    for status in Status:
        lines.append((status.value.replace("_", " ").capitalize(), counts[status]))
    if counts[Status.PENDING]:
        how = "Interrupted" if outcome.interrupted else "Stopped early"
        reason = f" ({outcome.stopped})" if outcome.stopped and not outcome.interrupted else ""
        lines.append(
            (
                how,
                f"{counted(counts[Status.PENDING], 'row')} {are(counts[Status.PENDING])} "
                f"pending{reason}. To continue, "
                f"{outcome.resume_hint}",
            )
        )
    for part in outcome.webinars:
        if part.unchecked:
            lines.append(("Not checked", f"against GoTo's registrant list: {part.unchecked}"))
    checked = [part for part in outcome.webinars if part.checked]
    if checked:
        fixed = sum(part.corrected + part.unlisted for part in checked)
        lines.append(
            (
                "Checked",
                "every registered row's key and join URL against GoTo's registrant list: "
                + (
                    f"{counted(fixed, 'row')} corrected or not found (see the note column)"
                    if fixed
                    else "all match"
                ),
            )
        )
    if report.attention:
        where = (
            f"see {table.source.stem}-needs-attention.xlsx beside this report"
            if table.source is not None
            else "see the error column"
        )
        lines.append(("Needs attention", f"{counted(len(report.attention), 'row')}: {where}"))
    return tuple(lines)


def write_attention(
    report: Report,
    path: Path,
    home: Path | None = None,
    *,
    carried: bool = False,
    note: Callable[[str], None] | None = None,
) -> Path | None:
    """Write the rows that need attention (or remove an old file when none do).

    Each row's ``row`` cell is its line in ``home``, the report that holds every join URL of
    the list: this run's report, or with ``carried`` the report a needs-attention file fed in
    came from (its ``row`` cells carry over). As XLSX, a sheet of text cells (Excel keeps
    19-digit keys, the webinarKey column, as they are when the file is opened, corrected and
    saved, so it can be registered again as it is), and a Settings sheet naming ``home``. As
    CSV when ``path`` ends so (Excel rounds such keys if it saves the CSV), or when the rows
    are more than an Excel sheet holds; the path written is returned. An old file that was
    saved since it was written (corrections someone has not registered yet) is kept aside under
    a time-stamped name, and ``note`` hears where.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReportError(f"{path.name}: the rows needing attention go to an .xlsx or .csv file")
    if _saved_since_written(path):
        kept = _unused_beside(path)
        with contextlib.suppress(OSError):
            path.rename(kept)
            _tell(
                note,
                f"{path.name} was changed since it was written (corrections not registered "
                f"yet?): it was kept as {kept.name}",
            )
    if not report.attention:
        path.unlink(missing_ok=True)
        return None
    headers = report.attention_headers
    rows: list[tuple[int | str, ...]] = list(report.attention)
    if "row" not in headers and len(report.attention_lines) == len(rows):
        headers = ("row", *headers)
        rows = [
            (_row_cell(line, origin, carried), *cells)
            for (line, origin), cells in zip(report.attention_lines, rows, strict=True)
        ]
    attention = Report(headers, rows, [])
    try:
        if suffix == ".xlsx":
            try:
                write_atomically(path, lambda temp: _write_attention(attention, temp, home))
                return path
            except ValueError:  # more rows or columns than a sheet holds
                path.unlink(missing_ok=True)  # an old one would pass for this run's
                path = path.with_suffix(".csv")
        write_atomically(path, lambda temp: _write_csv(attention, temp))
    except OSError as exc:
        raise ReportError(f"{path}: could not be written ({exc.strerror or exc})") from exc
    return path


#: the times a workbook's properties give for its writing and its last save
_CREATED = re.compile(rb"<dcterms:created[^>]*>([^<]+)<")
_MODIFIED = re.compile(rb"<dcterms:modified[^>]*>([^<]+)<")


def _saved_since_written(path: Path) -> bool:
    """Whether a needs-attention workbook was saved since this tool wrote it: this tool writes
    the same time as its created and its modified property; Excel, LibreOffice and openpyxl
    set the modified one when they save."""
    if path.suffix.lower() != ".xlsx" or not _is_file(path):
        return False
    try:
        with zipfile.ZipFile(path) as book:
            properties = book.read("docProps/core.xml")[:65536]
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    created, modified = _CREATED.search(properties), _MODIFIED.search(properties)
    return created is not None and modified is not None and created[1] != modified[1]


def _row_cell(line: int, origin: int | None, carried: bool) -> str:
    """An attention row's line in the report that holds the list's join URLs: its own, or the
    one its input row named (none for a row added to a needs-attention file)."""
    if not carried:
        return str(line)
    return str(origin) if origin is not None else ""


#: the sheets of a needs-attention workbook, and the Settings entry naming its report
ATTENTION_SHEET, SETTINGS_SHEET, HOME_LABEL = "Needs attention", "Settings", "Report"


def _write_attention(attention: Report, path: Path, home: Path | None) -> None:
    """The rows to fix, then a Settings sheet naming the report they came from (beside it by
    name, elsewhere by its full path)."""
    fills: list[str | None] = [None] * len(attention.rows)
    table = report_xlsx.Table(
        ATTENTION_SHEET, attention.headers, attention.rows, fills, tuple(_widths(attention))
    )
    if home is None:
        report_xlsx.write(path, [table])
        return
    named = home.name if _same(home.parent, path.parent) else str(home.absolute())
    lines: list[tuple[str, str | int]] = [
        (HOME_LABEL, named),
        (
            "What to do",
            "Correct the rows on the first sheet, save, and register this file again: each "
            f"row's new outcome goes back into {home.name}, into the row its row column "
            "names (leave that column, and this sheet, as they are).",
        ),
    ]
    report_xlsx.write(
        path, [table, report_xlsx.Summary("Rows that need attention", lines, name=SETTINGS_SHEET)]
    )


# --- a needs-attention file's rows, back in the report they came from ---------------------------


@dataclass(frozen=True)
class Home:
    """The report that holds every join URL of a list, once a run of its needs-attention file
    has brought the rows it registered again up to date there."""

    path: Path
    #: how many of its rows were replaced by this run's outcome
    updated: int

    def describe(self, where: str | None = None) -> str:
        """``guests-joinurls.xlsx (updated with 3 rows)``."""
        return f"{where or self.path.name} (updated with {counted(self.updated, 'row')})"


#: the suffix of a needs-attention file's name, and of a report's
_ATTENTION_STEM, _REPORT_STEM = "-needs-attention", "-joinurls"
#: the statuses of rows a needs-attention file is made of, as its report shows them
_FIXABLE = frozenset(status.value for status in (*ATTENTION, Status.DUPLICATE))


def home_of(table: Table) -> tuple[Path | None, str | None]:
    """The report a needs-attention file came from, as its Settings sheet names it (or, when
    it has none, as its name says: ``guests-needs-attention.csv``, and
    ``guests-needs-attention-needs-attention.csv`` too, → ``guests-joinurls.xlsx`` or ``.csv``
    beside it); and why its rows cannot go back there, in one line. Both None for an input
    that is no needs-attention file."""
    source = table.source
    if source is None:
        return None, None
    named = _settings_entry(source) if source.suffix.lower() in (".xlsx", ".xlsm") else None
    if named is not None and Path(named).suffix.lower() in SUFFIXES:  # only ever a report
        given = Path(named)
        candidates = [given if given.is_absolute() else source.parent / given]
    elif source.stem.endswith(_ATTENTION_STEM) and len(source.stem) > len(_ATTENTION_STEM):
        stem = source.stem
        while stem.endswith(_ATTENTION_STEM) and len(stem) > len(_ATTENTION_STEM):
            stem = stem[: -len(_ATTENTION_STEM)]  # what is left to fix of what was left to fix
        stem += _REPORT_STEM
        suffixes = sorted(SUFFIXES, key=lambda suffix: suffix != source.suffix.lower())
        candidates = [source.with_name(stem + suffix) for suffix in suffixes]
    else:
        return None, None
    found = next((path for path in candidates if _is_file(path)), None)
    if origin_column(table.headers) is None:
        if found is None:
            return None, None  # a list of the user's own that happens to be named so
        return None, (
            f"{source.name} has no row column saying which row of {found.name} each of its "
            f"rows is, so {found.name} was left as it is; this run's report has their outcome"
        )
    if found is None:
        return None, (
            f"{candidates[0].name}, the report {source.name} came from, is not in "
            f"{candidates[0].parent.absolute()} any more; this run's report has the rows' outcome"
        )
    return found, None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for a name no file can have (too long, a NUL)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _settings_entry(path: Path) -> str | None:
    """The report a needs-attention workbook names on its Settings sheet, if it does."""
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
        name = next((n for n in book.sheet_names if fold(str(n)) == "settings"), None)
        cells = book.get_sheet_by_name(name).to_python() if name is not None else []
    except Exception:  # calamine raises many kinds: an unreadable sheet names nothing
        return None
    for row in cells:
        said = [str(cell).strip() for cell in row if str(cell).strip()]
        if len(said) >= 2 and said[0] == HOME_LABEL:
            return said[1]
    return None


def bring_back(
    built: Report, outcome: Outcome, home: Path, note: Callable[[str], None] | None = None
) -> Home | None:
    """Replace the rows of ``home`` (the report a needs-attention file came from) that this
    run registered again by their new outcome, in place: the rows keep their order and line
    numbers, the Summary its counts up to date (rows this run left pending stay as the report
    had them). Written atomically, or not at all: when the
    report cannot be read, or a row of the file is not found in it as the same person (the
    report was edited since), ``note`` hears why in one line and the report stays as it was.
    """
    table = outcome.table
    source = table.source.name if table.source is not None else "the input"
    try:
        found = _read_report(home)
    except (OSError, ValueError) as exc:
        _tell(
            note,
            f"{home.name} could not be read ({exc}), so the outcome of {source} was not "
            "brought into it; this run's report has it",
        )
        return None
    headers, rows, summary, title = found
    index = {header: i for i, header in reversed(list(enumerate(headers)))}
    if not {"row", "email", "status"} <= index.keys():
        _tell(
            note,
            f"{home.name} is no report of g2w-import's (it has no row, email and status "
            f"columns), so the outcome of {source} was not brought into it; this run's report "
            "has it",
        )
        return None
    keyed = "webinarKey" in index
    # a report of one webinar names it on its Summary: rows of another stay out of it
    own = _webinar_of(summary) if not keyed and summary is not None else None
    where: dict[tuple[int | str, str], int] = {}
    for number, row in enumerate(rows):
        place = (row[index["row"]], str(row[index["webinarKey"]]) if keyed else "")
        where[place] = -1 if place in where else number  # -1: the report has it twice
    column = origin_column(table.headers)
    assert column is not None
    origin_of = {raw.line: _line(raw.cells[column]) for raw in table.rows}
    new_index = {header: i for i, header in enumerate(built.headers)}
    updates: dict[int, tuple[int | str, ...]] = {}
    unmatched: list[int] = []
    kept: list[int] = []
    foreign: list[int] = []
    added = 0
    for result, new in zip(outcome.rows, built.rows, strict=True):
        if result.status in (Status.PENDING, Status.SKIPPED_HIDDEN):
            continue  # not sent again (yet): the report keeps what it said of the row
        line = origin_of[result.line]
        if line is None:
            added += 1
            continue
        if own is not None and result.webinar_key != own:
            foreign.append(line)
            continue
        if result.same_as is not None:  # the row it repeats, as the report numbers it
            first = origin_of.get(result.same_as)
            said = repeated(first) if first is not None else repeated(result.same_as, source)
            new = tuple(
                said if header == "error" else cell
                for header, cell in zip(built.headers, new, strict=True)
            )
        number = where.get((line, result.webinar_key if keyed else ""), -1)
        if number < 0 or number in updates or not _same_person(rows[number], index, new, new_index):
            unmatched.append(line)
            continue
        if str(rows[number][index["status"]]) in _SETTLED and not result.status.ok:
            kept.append(line)  # registered there: its join URL is never traded for none
            continue
        updates[number] = new
    if unmatched:
        shown = ", ".join(str(line) for line in unmatched[:5])
        more = f" and {len(unmatched) - 5:,} more" if len(unmatched) > 5 else ""
        _tell(
            note,
            f"{home.name} does not hold the rows {source} came from (row {shown}{more}: another "
            f"person, or none; edited since?), so it was left as it is; this run's report has "
            "their outcome",
        )
        return None
    if kept:
        _tell(
            note,
            f"{_rows_named(kept)} of {home.name} {'keeps its' if len(kept) == 1 else 'keep their'}"
            f" join URL: {source} did not register {'that person' if len(kept) == 1 else 'them'}"
            " again; this run's report has why",
        )
    if foreign:
        _tell(
            note,
            f"{source} registered {_rows_named(foreign)} for another webinar than "
            f"{home.name}'s ({own}): {'its outcome is' if len(foreign) == 1 else 'theirs are'} "
            "only in this run's report",
        )
    if not updates:
        return None
    if "note" not in index and any(new[new_index["note"]] for new in updates.values()):
        headers = [*headers, "note"]
        index["note"] = len(headers) - 1
        rows = [[*row, ""] for row in rows]
    # the input's columns this run's report leaves out (empty in every row) are emptied too
    added_columns = report_columns(table.headers)
    inputs = {
        h: i for i, h in enumerate(table.headers) if i not in added_columns and h not in new_index
    }
    cells_of = {raw.line: raw.cells for raw in table.rows}

    def now(i: int, header: str, old: list[int | str], new: tuple[int | str, ...]) -> int | str:
        """A cell of a row brought back: its place as it was, the rest as this run has it."""
        if header in ("row", "webinarKey"):
            return old[i]
        if header in new_index:
            return new[new_index[header]]
        if header in inputs:
            return cells_of[int(new[0])][inputs[header]]
        return old[i]  # a column someone added to the report

    for number, new in updates.items():
        rows[number] = [now(i, h, rows[number], new) for i, h in enumerate(headers)]
    statuses = [str(row[index["status"]]) for row in rows]
    colours = tuple(_COLOURS.get(Status(s)) if s in _STATUS_VALUES else None for s in statuses)
    stamp = outcome.started.strftime("%Y-%m-%d %H:%M %Z").strip()
    brought = f"{stamp}: {counted(len(updates), 'row')} from {source}"
    updated = Report(
        tuple(headers),
        [tuple(row) for row in rows],
        [],
        _summary_after(summary, statuses, brought) if summary is not None else (),
        title=title,
        colours=colours,
    )
    writer = _write_xlsx if home.suffix.lower() == ".xlsx" else _write_csv
    try:
        write_atomically(home, lambda temp: writer(updated, temp))
    except (OSError, ValueError) as exc:
        why = "is it open?" if isinstance(exc, PermissionError) else str(exc)
        _tell(
            note,
            f"{home.name} could not be updated ({why}); this run's report has the "
            f"outcome of {source}",
        )
        return None
    if added:
        _tell(
            note,
            f"{counted(added, 'row')} of {source} had no row number and are only in "
            "this run's report",
        )
    return Home(home, len(updates))


_STATUS_VALUES = frozenset(status.value for status in Status)
#: a report's statuses of rows whose person is registered: each has its join URL
_SETTLED = frozenset(status.value for status in Status if status.ok)
#: the webinar a report's Summary names: ``Subject (8325357307900339981, starts …)``
_WEBINAR_LINE = re.compile(r"\((\d{1,19})(?:, starts [^()]*)?\)\s*$")


def _webinar_of(summary: Sequence[tuple[str, str | int]]) -> str | None:
    """The key of the one webinar a report's Summary names, if it names one."""
    said = next((str(value) for label, value in summary if label == "Webinar"), "")
    match = _WEBINAR_LINE.search(said)
    return match[1] if match else None


def _rows_named(lines: Sequence[int]) -> str:
    """``row 4``, ``rows 4, 7 and 9``, ``rows 4, 7, 9, 12, 15 and 3 more``."""
    if len(lines) == 1:
        return f"row {lines[0]}"
    shown = [str(line) for line in lines[:5]]
    rest = len(lines) - len(shown)
    return f"rows {', '.join(shown)}" + (f" and {rest} more" if rest else "")


def _same_person(
    old: Sequence[int | str], index: dict[str, int], new: Sequence[int | str], at: dict[str, int]
) -> bool:
    """Whether a report's row is the one a needs-attention row came from: the same e-mail, or
    the same name; for a row that needed attention, the same first or last name will do (the
    other, or the e-mail, may have been the fix)."""

    def cell(row: Sequence[int | str], where: dict[str, int], name: str) -> str:
        return str(row[where[name]] or "").strip().lower() if name in where else ""

    if cell(old, index, "email") and cell(old, index, "email") == cell(new, at, "email"):
        return True
    names = ("firstName", "lastName")
    if old[index["status"]] in _FIXABLE:  # one of them may have been the mistake
        return any(cell(old, index, n) and cell(old, index, n) == cell(new, at, n) for n in names)
    return all(cell(old, index, n) == cell(new, at, n) for n in names) and any(
        cell(old, index, n) for n in names
    )


def _summary_after(
    summary: list[tuple[str, str | int]], statuses: Sequence[str], brought: str
) -> tuple[tuple[str, str | int], ...]:
    """A report's Summary with its counts as the rows now are, and a line on what changed."""
    labels = {status.value.replace("_", " ").capitalize(): status for status in Status}
    counts = collections.Counter(statuses)
    lines: list[tuple[str, str | int]] = []
    for label, value in summary:
        if label in labels:
            if not any(said in labels for said, _ in lines):
                lines += [(said, counts[status.value]) for said, status in labels.items()]
            continue
        if label == "Rows":
            value = len(statuses)
        elif label == "Needs attention":
            left = sum(counts[status.value] for status in ATTENTION)
            if not left:
                continue
            value = f"{counted(left, 'row')}: see the error column"
        lines.append((label, value))
    return (*lines, ("Updated", brought))


def _read_report(
    path: Path,
) -> tuple[list[str], list[list[int | str]], list[tuple[str, str | int]] | None, str]:
    """A report as written: its headers, rows (row numbers as int), Summary lines (None for a
    CSV report) and the Summary's title."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            grid = [[unquote(cell) for cell in row] for row in csv.reader(handle)]
        summary, title = None, ""
    else:
        from python_calamine import CalamineWorkbook

        from importer.read.workbook import cell_text

        try:
            book = CalamineWorkbook.from_path(str(path))
            sheets = [str(name) for name in book.sheet_names]
            if REGISTRANTS_SHEET not in sheets:
                raise ValueError("it has no Registrants sheet")
            grid = [
                [cell_text(value) for value in row]
                for row in book.get_sheet_by_name(REGISTRANTS_SHEET).to_python(
                    skip_empty_area=False
                )
            ]
            said = (
                book.get_sheet_by_name("Summary").to_python(skip_empty_area=False)
                if "Summary" in sheets
                else []
            )
        except ValueError:
            raise
        except Exception as exc:  # calamine raises many kinds: all mean "cannot be read"
            raise ValueError("it is damaged, or no workbook") from exc
        title = cell_text(said[0][0]) if said and said[0] else ""
        summary = [
            (cell_text(row[0]), _number(cell_text(row[1])))
            for row in said[2:]
            if len(row) >= 2 and cell_text(row[0]).strip()
        ]
    while grid and not any(cell.strip() for cell in grid[-1]):
        grid.pop()
    if not grid:
        raise ValueError("it is empty")
    headers = [cell.strip() for cell in grid[0]]
    at = headers.index("row") if "row" in headers else None
    rows: list[list[int | str]] = []
    for cells in grid[1:]:
        row: list[int | str] = [*cells[: len(headers)], *[""] * (len(headers) - len(cells))]
        if at is not None:
            row[at] = _line(str(row[at])) or row[at]
        rows.append(row)
    return headers, rows, summary, title


def _number(text: str) -> str | int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 16 else text


def destinations(source: Path, out: Path | None) -> tuple[Path, Path]:
    """The report's path and the needs-attention file's, refused before anything is sent
    when they cannot be written or would overwrite the input (or each other)."""
    if source.is_dir() or not source.name:
        raise UsageError(f"{source}: is a folder, not a file; name the spreadsheet itself")
    report = out or default_path(source)
    if report.suffix.lower() not in SUFFIXES:
        raise UsageError(f"--out {report.name}: the report must end in .xlsx or .csv")
    attention = attention_path(source, report)
    if _same(report, source):
        raise UsageError(
            f"--out {report}: is the input file itself, which the report would replace; "
            "choose another name"
        )
    if _same(report, attention):
        raise UsageError(
            f"--out {report}: is where the rows needing attention go; choose another name"
        )
    probe(report.parent)
    return report, attention


def probe(folder: Path) -> None:
    """Check, by creating and removing a file, that a report can be written in ``folder``."""
    folder = folder.absolute()  # "." says nothing in a message
    try:
        handle, name = tempfile.mkstemp(dir=folder, prefix=".g2w-probe-")
    except FileNotFoundError:
        raise UsageError(
            f"{folder}: no such folder for the report; create it or change --out"
        ) from None
    except PermissionError:
        raise UsageError(
            f"{folder}: you may not write there (permission denied); choose another --out"
        ) from None
    except OSError as exc:
        advice = {
            errno.EROFS: "it is on a read-only disk",
            errno.ENOSPC: "the disk is full",
            errno.ENOTDIR: "it is not a folder",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise UsageError(
            f"{folder}: the report cannot be written there ({advice}); choose another --out"
        ) from None
    os.close(handle)
    Path(name).unlink(missing_ok=True)


def _same(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except (OSError, RuntimeError):  # a symbolic link that loops: not the same as anything
        return one.absolute() == other.absolute()


Writer = Callable[[Report, Path], None]


def write(
    report: Report,
    path: Path,
    note: Callable[[str], None] | None = None,
    draft: Draft | None = None,
) -> Path:
    """Write ``report`` to ``path`` (.xlsx or .csv) atomically; return where it was written.

    A report at ``path`` that holds join URLs this one lacks (a run for another webinar, with
    another journal, or stopped before it could settle its rows; not the join URLs of
    ``report.retired``, cancelled since) is kept under a time-stamped name beside it, and this
    one written at ``path``; one that cannot be replaced (on Windows, while Excel has it open)
    stays, and this one is written beside it. When what the input
    holds cannot be written as XLSX at all, the report is written as CSV beside it, so that a
    run's outcome is never lost for want of a report. ``note`` hears where things went. A
    ``draft`` of the rows is used if it fits, and dropped in any case.
    """
    try:
        return _write(report, path, note, draft)
    finally:
        if draft is not None:
            draft.discard()


def _write(
    report: Report, path: Path, note: Callable[[str], None] | None, draft: Draft | None
) -> Path:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReportError(f"{path.name}: a report must end in .xlsx or .csv; choose another --out")
    if not path.parent.is_dir():
        raise ReportError(
            f"{path.parent}: no such folder for the report; create it or change --out"
        )
    writer: Writer = _write_csv
    if suffix == ".xlsx":

        def writer(report: Report, path: Path) -> None:
            _write_xlsx(report, path, draft)

    beside = _unused_beside(path)
    try:

        def elsewhere(target: Path, why: str, write_with: Writer = writer) -> Path:
            write_atomically(target, lambda temp: write_with(report, temp))
            _tell(note, f"{path.name} {why}; the report was written to {target.name} instead")
            return target

        # a join URL of someone cancelled since (by cancel or undo) is lost to nobody
        kept = _join_urls(path) - _join_urls(report)
        lost = {email for email, url in kept if url not in report.retired}
        try:
            if lost:
                os.replace(path, beside)
                _tell(
                    note,
                    f"{path.name} held join URLs that this run's report does not have (of "
                    f"{counted(len(lost), 'person', 'people')}); it was kept as {beside.name}",
                )
            write_atomically(path, lambda temp: writer(report, temp))
        except PermissionError:
            return elsewhere(beside, "could not be replaced (is it open?)")
        except ValueError:  # from the XLSX writer: more rows or columns than a sheet holds
            if writer is _write_csv:
                raise
            why = "could not be written as XLSX (it has more rows or columns than a sheet holds)"
            return elsewhere(path.with_suffix(".csv"), why, _write_csv)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise NoRoomForReport(
                f"{path}: the report could not be written ({exc.strerror or exc}); free some "
                "space there (or choose another --out) and run the same command again: it "
                "sends nobody twice, and writes the report"
            ) from exc
        raise ReportError(
            f"{path}: the report could not be written ({exc.strerror or exc}); "
            "free some space or choose another --out"
        ) from exc
    return path


def _tell(note: Callable[[str], None] | None, message: str) -> None:
    if note is not None:
        note(message)


def _unused_beside(path: Path) -> Path:
    """A time-stamped name beside ``path`` that no file has yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    beside = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    number = 1
    while beside.exists():
        number += 1
        beside = path.with_name(f"{path.stem}-{stamp}-{number}{path.suffix}")
    return beside


def _join_urls(source: Report | Path) -> set[tuple[str, str]]:
    """The e-mail addresses and join URLs in a report, or in the report file at a path (none
    when there is no such file, or it is no report this tool can read)."""
    if isinstance(source, Report):
        headers, rows = source.headers, source.rows
    else:
        from importer.errors import ImporterError
        from importer.read import reader

        if not source.is_file():
            return set()
        try:
            sheet = REGISTRANTS_SHEET if source.suffix.lower() == ".xlsx" else None
            table = reader.read_table(source, sheet=sheet)
        except (ImporterError, OSError):
            return set()
        headers, rows = table.headers, [row.cells for row in table.rows]
    if "email" not in headers or "joinUrl" not in headers:
        return set()
    email, url = headers.index("email"), headers.index("joinUrl")
    return {
        (str(row[email]).strip().lower(), str(row[url]).strip())
        for row in rows
        if len(row) > max(email, url) and str(row[url]).strip()
    }


def _write_csv(report: Report, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([_csv_cell(title) for title in report.headers])
        for row in report.rows:
            writer.writerow([_csv_cell(value) for value in row])


def _csv_cell(value: int | str) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _write_xlsx(report: Report, path: Path, draft: Draft | None = None) -> None:
    if draft is not None and draft.fits(report):
        draft.finish(report, path)
        return
    _write_sheet(report, path, REGISTRANTS_SHEET)


def _write_sheet(report: Report, path: Path, name: str) -> None:
    """One sheet of the report's rows (text cells, never formulas), after a Summary sheet when
    the report has one; coloured by status, with clickable join URLs."""
    table = report_xlsx.Table(
        name, report.headers, report.rows, _fills(report), tuple(_widths(report)), _link(report)
    )
    summary = [report_xlsx.Summary(report.title, report.summary)] if report.summary else []
    report_xlsx.write(path, [*summary, table])


def _fills(report: Report) -> Sequence[str | None]:
    """Each row's colour: the report's own, or its status's."""
    colours = report.colours or [_COLOURS[status] for status in report.statuses]
    return colours or [None] * len(report.rows)


def _link(report: Report) -> int | None:
    return report.headers.index("joinUrl") if "joinUrl" in report.headers else None


class Draft:
    """An XLSX report's rows written ahead, while the run's last step (the check of every
    registered row against GoTo's registrant list) is under way, from the outcome as it stood
    before it.

    :func:`write` finishes it into the report (the Summary, then the widths and the filter of
    the rows' sheet) when the report built then has the very same rows, as it has unless the
    check corrected one; otherwise the draft is dropped and the report written whole. Writing
    4,000 rows takes about 0.3 s, which the check's wait for GoTo's answers then hides.
    """

    def __init__(self, report: Report) -> None:
        self.report = report
        self._book: report_xlsx.Book | None = None
        self._table: report_xlsx.TableSheet | None = None

    def write_rows(self) -> None:
        """Write the rows (in a thread of their own: nothing else touches the draft meanwhile);
        raises ``ValueError`` for rows no sheet can hold, ``OSError`` when the temporary files
        cannot be written."""
        report = self.report
        names = [*(["Summary"] if report.summary else []), REGISTRANTS_SHEET]
        # the path is the report's temporary file, named only once the report is written
        book = report_xlsx.Book(Path(f"{REGISTRANTS_SHEET}.xlsx"), names)
        try:
            table = book.table(REGISTRANTS_SHEET, report.headers, link=_link(report))
            for row, colour in zip(report.rows, _fills(report), strict=True):
                table.add(row, colour)
        except BaseException:
            book.discard()
            raise
        self._book, self._table = book, table

    def fits(self, report: Report) -> bool:
        """Whether ``report`` has the rows written here, in the same colours."""
        drafted = self.report
        return (
            self._book is not None
            and report.headers == drafted.headers
            and bool(report.summary) == bool(drafted.summary)
            and report.rows == drafted.rows
            and _fills(report) == _fills(drafted)
        )

    def finish(self, report: Report, path: Path) -> None:
        """Write the workbook to ``path`` with ``report``'s Summary; the draft is used up."""
        book, table = self._book, self._table
        self._book = self._table = None
        if book is None or table is None:
            raise RuntimeError("a draft is finished once")
        try:
            if report.summary:
                book.summary(report_xlsx.Summary(report.title, report.summary))
            table.finish(tuple(_widths(report)))
        except BaseException:
            book.discard()
            raise
        book.close(path)

    def discard(self) -> None:
        """Drop the rows written, if they were not used."""
        book, self._book, self._table = self._book, None, None
        if book is not None:
            book.discard()


def _widths(report: Report) -> Iterator[float]:
    for column, title in enumerate(report.headers):
        longest = max([len(title), *(len(str(row[column])) for row in report.rows[:_WIDTH_SAMPLE])])
        yield min(90.0, max(8.0, longest + 2.0))
