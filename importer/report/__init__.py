"""Reports: each job's outcome as a table (:class:`Report`), written as XLSX or CSV.

The outcomes and their tables are in the modules of this package (:mod:`.outcome` for
``register``, :mod:`.cancellations`, :mod:`.registrants`); this module writes any of them. A
report is written to a temporary file beside the target and renamed into place, so a crash
leaves either the previous report or the new one, never half of one. Nothing is ever stored as
a formula: keys are text (they have 19 digits, more than Excel keeps of a number), and a cell
that starts like a formula is stored as plain text in XLSX and behind an apostrophe in CSV.
"""

from __future__ import annotations

import collections
import csv
import errno
import os
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from importer import files
from importer.errors import ImporterError, NoRoomForReport, ReportError, UsageError
from importer.files import NO_SPACE, write_atomically
from importer.model import FORMULA_STARTS, Status
from importer.read import reader
from importer.report import xlsx as report_xlsx
from importer.report.names import SUFFIXES
from importer.text import counted

if TYPE_CHECKING:
    import pandas

#: row colours: green for done, pale green for nothing to do, red for needs attention, yellow for
#: pending
GREEN, PALE_GREEN, RED, YELLOW = "C6EFCE", "E2EFDA", "FFC7CE", "FFEB9C"
#: neutral: rows left out on purpose (hidden in Excel)
GREY = "EDEDED"
STATUS_COLOURS = {
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


def frame(built: Report, index: Sequence[Hashable] | None = None) -> pandas.DataFrame:
    """A report's rows as a DataFrame with the report's columns; ``index``, a DataFrame
    input's index labels, gives each row the label of its ``row`` (the first data row is
    line 2)."""
    import pandas  # loaded when a DataFrame is asked for, not at every start: about 0.3 s

    result = pandas.DataFrame(built.rows, columns=list(built.headers), dtype=object)
    if index is not None:
        result.index = pandas.Index([index[int(row[0]) - 2] for row in built.rows])
    return result


def check_out(path: Path | None, source: Path | None = None) -> None:
    """Refuse a report path given with ``--out`` that cannot be written, or that is the input
    file ``source`` itself, before anything is done."""
    if path is None:
        return
    if path.suffix.lower() not in SUFFIXES:
        raise UsageError(f"--out {path.name}: the report must end in .xlsx or .csv")
    if source is not None and same_file(path, source):
        raise UsageError(
            f"--out {path}: is the input file itself, which the report would replace; "
            "choose another name"
        )
    if path.is_dir():
        raise UsageError(f"--out {path}: is a folder; name the report file itself")
    probe(path.parent)


def probe(folder: Path) -> None:
    """Check, by creating and removing a file, that a report can be written in ``folder``."""
    folder = folder.absolute()  # "." says nothing in a message
    try:
        made = files.temporary(folder, "probe-")
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
    made.unlink(missing_ok=True)
    files.written(made)


def same_file(one: Path, other: Path) -> bool:
    """Whether two paths name the same file (a symbolic link that loops names none)."""
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
    writer: Writer = write_csv
    if suffix == ".xlsx":

        def writer(report: Report, path: Path) -> None:
            write_xlsx(report, path, draft)

    beside = unused_beside(path)
    try:

        def elsewhere(target: Path, why: str, write_with: Writer = writer) -> Path:
            write_atomically(target, lambda temp: write_with(report, temp))
            tell(note, f"{path.name} {why}; the report was written to {target.name} instead")
            return target

        # a join URL of someone cancelled since (by cancel or undo) is lost to nobody
        kept = _join_urls(path) - _join_urls(report)
        lost = {email for email, url in kept if url not in report.retired}
        try:
            if lost:
                os.replace(path, beside)
                tell(
                    note,
                    f"{path.name} held join URLs that this run's report does not have (of "
                    f"{counted(len(lost), 'person', 'people')}); it was kept as {beside.name}",
                )
            write_atomically(path, lambda temp: writer(report, temp))
        except PermissionError:
            return elsewhere(beside, "could not be replaced (is it open?)")
        except ValueError:  # from the XLSX writer: more rows or columns than a sheet holds
            if writer is write_csv:
                raise
            why = "could not be written as XLSX (it has more rows or columns than a sheet holds)"
            return elsewhere(path.with_suffix(".csv"), why, write_csv)
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


def tell(note: Callable[[str], None] | None, message: str) -> None:
    if note is not None:
        note(message)


def unused_beside(path: Path) -> Path:
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


def write_csv(report: Report, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([_csv_cell(title) for title in report.headers])
        for row in report.rows:
            writer.writerow([_csv_cell(value) for value in row])


def _csv_cell(value: int | str) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_xlsx(report: Report, path: Path, draft: Draft | None = None) -> None:
    if draft is not None and draft.fits(report):
        draft.finish(report, path)
        return
    _write_sheet(report, path, REGISTRANTS_SHEET)


def _write_sheet(report: Report, path: Path, name: str) -> None:
    """One sheet of the report's rows (text cells, never formulas), after a Summary sheet when
    the report has one; coloured by status, with clickable join URLs."""
    table = report_xlsx.Rows(
        name, report.headers, report.rows, _fills(report), tuple(widths(report)), _link(report)
    )
    summary = [report_xlsx.Summary(report.title, report.summary)] if report.summary else []
    report_xlsx.write(path, [*summary, table])


def _fills(report: Report) -> Sequence[str | None]:
    """Each row's colour: the report's own, or its status's."""
    colours = report.colours or [STATUS_COLOURS[status] for status in report.statuses]
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
            table.finish(tuple(widths(report)))
        except BaseException:
            book.discard()
            raise
        book.close(path)

    def discard(self) -> None:
        """Drop the rows written, if they were not used."""
        book, self._book, self._table = self._book, None, None
        if book is not None:
            book.discard()


def widths(report: Report) -> Iterator[float]:
    for column, title in enumerate(report.headers):
        longest = max([len(title), *(len(str(row[column])) for row in report.rows[:_WIDTH_SAMPLE])])
        yield min(90.0, max(8.0, longest + 2.0))
