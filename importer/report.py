"""Write the JoinUrl report: one row per input row, in the input's order, as XLSX or CSV.

The report is written to a temporary file beside the target and renamed into place, so a crash
leaves either the previous report or the new one, never half of one. Nothing is ever stored as a
formula: keys are text (they have 19 digits, more than Excel keeps of a number), and a cell that
starts like a formula is stored as plain text in XLSX and behind an apostrophe in CSV.
"""

from __future__ import annotations

import collections
import csv
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import xlsx
from .columns import REQUIRED, ColumnMap, fold
from .errors import NoRoomForReport, ReportError, UsageError
from .files import NO_SPACE, write_atomically
from .grid import MAX_COLUMNS
from .models import FORMULA_STARTS, Status
from .text import are, counted, normalise

if TYPE_CHECKING:
    from .outcome import Outcome

LEAD = ("row", *REQUIRED)
TRAIL = ("status", "registrantKey", "joinUrl", "error")
SUFFIXES = (".xlsx", ".csv")
#: row colours: green for done, pale green for nothing to do, red for needs attention, yellow for
#: pending
GREEN, PALE_GREEN, RED, YELLOW = "C6EFCE", "E2EFDA", "FFC7CE", "FFEB9C"
_COLOURS = {
    Status.REGISTERED: GREEN,
    Status.ALREADY_REGISTERED: PALE_GREEN,
    Status.WAITING_APPROVAL: YELLOW,
    Status.INVALID: RED,
    Status.DUPLICATE: RED,
    Status.FAILED: RED,
    Status.DENIED: RED,
    Status.PENDING: YELLOW,
}
_WIDTH_SAMPLE = 2000
ATTENTION = frozenset({Status.INVALID, Status.DUPLICATE, Status.FAILED})


@dataclass(frozen=True)
class Report:
    """The report's table: headers, rows of text (row numbers as int) and each row's status.

    ``summary`` fills the XLSX report's first sheet; ``attention`` holds the rows that need a
    person's eye (invalid, duplicate, failed) in the input's own columns, ready to be fixed and
    registered again.
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
    colours: tuple[str, ...] = ()

    def counts(self) -> collections.Counter[Status]:
        """How many rows ended in each status."""
        return collections.Counter(self.statuses)


def default_path(source: Path) -> Path:
    """``people.csv`` → ``people-joinurls.xlsx`` in the same folder."""
    return source.with_name(f"{source.stem}-joinurls.xlsx")


def attention_path(source: Path, report: Path) -> Path:
    """``people-needs-attention.xlsx``, beside the report."""
    return report.with_name(f"{source.stem}-needs-attention.xlsx")


def build(outcome: Outcome) -> Report:
    """Every input row with its outcome, per webinar when there are several, and the Summary.

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
            )
        )
        statuses.append(result.status)
        if result.status in ATTENTION:
            key = () if own_key else (result.webinar_key,)
            attention.append((*(cells[i] for i in kept), *key, result.error or ""))
    made = Report(headers, rows, statuses, attention_headers=attention_headers, attention=attention)
    summary = _summary(outcome, made)
    if dropped:
        summary += (("Not in this report", f"{dropped:,} input columns past Excel's limit"),)
    return Report(headers, rows, statuses, summary, attention_headers, attention)


def report_columns(headers: Sequence[str]) -> set[int]:
    """The columns this tool's files add (``row``, ``status``, ``registrantKey``, ``joinUrl``,
    ``error``) when ``headers`` are those of a report or a needs-attention file fed back in:
    at least two of them, or ``error`` last (as the needs-attention file has it)."""
    found = {i for i, header in enumerate(headers) if header in (*TRAIL, "row")}
    if len(found) >= 2:
        return found
    return {len(headers) - 1} if headers and headers[-1] == "error" else set()


def _summary(outcome: Outcome, report: Report) -> tuple[tuple[str, str | int], ...]:
    table = outcome.table
    lines: list[tuple[str, str | int]] = [("Input file", str(table.source or table.describe()))]
    for part in outcome.webinars:
        webinar = part.webinar
        if webinar is None:
            lines.append(("Webinar", f"{part.key} (not reached)"))
            continue
        lines.append(("Webinar", webinar.describe(zone=True)))
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
                    f"{counted(fixed, 'row')} corrected or not found (see the error column)"
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


def write_attention(report: Report, path: Path) -> Path | None:
    """Write the rows that need attention (or remove an old file when none do).

    As XLSX, a sheet of text cells: Excel keeps 19-digit keys (the webinarKey column) as they
    are when the file is opened, corrected and saved, so it can be registered again as it is.
    As CSV when ``path`` ends so (Excel rounds such keys if it saves the CSV), or when the rows
    are more than an Excel sheet holds; the path written is returned.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReportError(f"{path.name}: the rows needing attention go to an .xlsx or .csv file")
    if not report.attention:
        path.unlink(missing_ok=True)
        return None
    attention = Report(report.attention_headers, list(report.attention), [])
    sheet = "Needs attention"
    try:
        if suffix == ".xlsx":
            try:
                write_atomically(path, lambda temp: _write_sheet(attention, temp, sheet))
                return path
            except ValueError:  # more rows or columns than a sheet holds
                path.unlink(missing_ok=True)  # an old one would pass for this run's
                path = path.with_suffix(".csv")
        write_atomically(path, lambda temp: _write_csv(attention, temp))
    except OSError as exc:
        raise ReportError(f"{path}: could not be written ({exc.strerror or exc})") from exc
    return path


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


def write(report: Report, path: Path, note: Callable[[str], None] | None = None) -> Path:
    """Write ``report`` to ``path`` (.xlsx or .csv) atomically; return where it was written.

    A report at ``path`` that holds join URLs this one lacks (a run for another webinar, with
    another journal, or stopped before it could settle its rows) is kept under a time-stamped
    name beside it, and this one written at ``path``; one that cannot be replaced (on Windows,
    while Excel has it open) stays, and this one is written beside it. When what the input
    holds cannot be written as XLSX at all, the report is written as CSV beside it, so that a
    run's outcome is never lost for want of a report. ``note`` hears where things went.
    """
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ReportError(f"{path.name}: a report must end in .xlsx or .csv; choose another --out")
    if not path.parent.is_dir():
        raise ReportError(
            f"{path.parent}: no such folder for the report; create it or change --out"
        )
    writer = _write_xlsx if suffix == ".xlsx" else _write_csv
    beside = _unused_beside(path)
    try:

        def elsewhere(target: Path, why: str, write_with: Writer = writer) -> Path:
            write_atomically(target, lambda temp: write_with(report, temp))
            _tell(note, f"{path.name} {why}; the report was written to {target.name} instead")
            return target

        lost = {email for email, _ in _join_urls(path) - _join_urls(report)}
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
        from . import reader
        from .errors import ImporterError

        if not source.is_file():
            return set()
        try:
            sheet = "Registrants" if source.suffix.lower() == ".xlsx" else None
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


def _write_xlsx(report: Report, path: Path) -> None:
    _write_sheet(report, path, "Registrants")


def _write_sheet(report: Report, path: Path, name: str) -> None:
    """One sheet of the report's rows (text cells, never formulas), after a Summary sheet when
    the report has one; coloured by status, with clickable join URLs."""
    colours = report.colours or [_COLOURS[status] for status in report.statuses]
    fills: Sequence[str | None] = colours or [None] * len(report.rows)
    link = report.headers.index("joinUrl") if "joinUrl" in report.headers else None
    table = xlsx.Table(name, report.headers, report.rows, fills, tuple(_widths(report)), link)
    summary = [xlsx.Summary(report.title, report.summary)] if report.summary else []
    xlsx.write(path, [*summary, table])


def _widths(report: Report) -> Iterator[float]:
    for column, title in enumerate(report.headers):
        longest = max([len(title), *(len(str(row[column])) for row in report.rows[:_WIDTH_SAMPLE])])
        yield min(90.0, max(8.0, longest + 2.0))
