"""What an import came to: every row's outcome, why the run ended, and the exit code that says so.

The ``register`` job returns one :class:`Outcome`; the command line, the Python API and the web
page all read it, and the report is written from it alone.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import datetime as dt
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from importer import report
from importer.checks.validate import Plan
from importer.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_STOPPED,
    Interrupted,
    ReportError,
    RunStopped,
    UsageError,
)
from importer.files import write_atomically
from importer.model import Result, RowProblem, Status, Table, Webinar
from importer.read.columns import REQUIRED, ColumnMap, fold
from importer.read.grid import MAX_COLUMNS, unquote
from importer.read.workbook import cell_text
from importer.report import (
    REGISTRANTS_SHEET,
    STATUS_COLOURS,
    Report,
    probe,
    same_file,
    tell,
    unused_beside,
    widths,
    write_csv,
    write_xlsx,
)
from importer.report import xlsx as report_xlsx
from importer.report.names import SUFFIXES, named_after
from importer.text import are, counted, normalise, repeated

if TYPE_CHECKING:
    import pandas

#: the register report's columns: the input's names and e-mail first, then the input's own
#: columns, then what became of each row
LEAD = ("row", *REQUIRED)
TRAIL = ("status", "registrantKey", "joinUrl", "error", "note")
#: the statuses of rows that go into the needs-attention file
ATTENTION = frozenset({Status.INVALID, Status.FAILED})


#: the note of a row whose person GoTo had registered before the import came to them
ALREADY_NOTE = "registered for this webinar already, not by g2w-import; not sent again"
HIDDEN_NOTE = (
    "hidden in Excel (by a filter or by hand), so not sent; unhide the row, or send hidden "
    "rows with --include-hidden-rows"
)


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One input row's outcome for one webinar: a row of the report."""

    line: int
    webinar_key: str
    status: Status
    registrant_key: str | None = None
    join_url: str | None = None
    #: why the row did not end registered (it is empty for a row that did)
    error: str | None = None
    #: what else there is to know about a row that did not fail: it awaits the organizer's
    #: approval, was registered already, was corrected from GoTo's registrant list
    note: str | None = None
    #: whether the registration is one this tool made (``registered`` rows, and
    #: ``waiting_approval`` rows it registered)
    ours: bool = False
    #: a repeated e-mail: the row whose e-mail it repeats
    same_as: int | None = None


@dataclass(frozen=True)
class WebinarOutcome:
    """One webinar's part of the run, as far as the run got."""

    key: str
    #: the webinar's details, or None when the run stopped before it could read them
    webinar: Webinar | None = None
    #: rows an earlier run had settled, rows found in the registrant list, rows sent now
    resumed: int = 0
    found: int = 0
    to_send: int = 0
    journal: Path | None = None
    #: whether the registered rows were checked against GoTo's registrant list once sending
    #: ended, and how many of them it corrected
    checked: bool = False
    corrected: int = 0
    #: of the rows checked, how many the list did not show (kept as GoTo's answers had them)
    unlisted: int = 0
    #: join URLs the journal records as cancelled (by ``cancel`` or ``undo``) when the run
    #: began: an older report that holds them has lost nothing if this run's report lacks them
    retired: frozenset[str] = frozenset()
    #: why the check against the registrant list could not be made, when it could not
    unchecked: str | None = None


@dataclass
class Written:
    """Where an outcome's report went, once written."""

    report: Path | None = None
    #: the report the input's rows were brought back into (the input was its needs-attention
    #: file)
    home: Home | None = None


@dataclass(frozen=True)
class Outcome:
    """An import's result: one :class:`RowOutcome` per input row and webinar, in input order."""

    table: Table
    webinars: tuple[WebinarOutcome, ...]
    rows: tuple[RowOutcome, ...]
    #: why the run stopped early (a quota, the token, Ctrl-C), or None when it ran to the end
    stopped: RunStopped | None = None
    #: how to carry on when rows are pending, in the words of the front door that ran it
    resume_hint: str = "run the same import again"
    calls: int = 0
    throttled: int = 0
    retries: int = 0
    dry_run: bool = False
    #: every problem of every row not sent: invalid cells, repeated e-mail addresses
    problems: tuple[RowProblem, ...] = ()
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())
    #: where :meth:`write` put the reports
    written: Written = field(default_factory=Written, compare=False, repr=False)
    #: the XLSX report's rows, written ahead while the run checked them (used by :meth:`write`
    #: if they are still the report's)
    draft: report.Draft | None = field(default=None, compare=False, repr=False)

    @property
    def counts(self) -> collections.Counter[Status]:
        """How many rows ended in each status."""
        return collections.Counter(row.status for row in self.rows)

    @property
    def default_report(self) -> Path:
        """Where the report goes when nobody says: beside the input file
        (``people-joinurls.xlsx``), else in the current folder, named after the webinar."""
        if self.table.source is not None:
            return default_path(self.table.source)
        webinar = next((part.webinar for part in self.webinars if part.webinar), None)
        ending = "joinurls.xlsx"
        return named_after(webinar, ending) if webinar else Path(f"registrations-{ending}")

    def ending(self) -> str | None:
        """Why the run stopped early, if it did, and how to carry on."""
        stopped = self.stopped
        if stopped is None:
            return None
        pending = self.counts[Status.PENDING]
        rows = f"{counted(pending, 'row')} {are(pending)} pending"
        again = (
            f"{rows}: run the same command again to continue."
            if pending
            else "Every row was settled; the same command run again checks them against "
            "GoTo's registrant list."
        )
        if self.exit_code == EXIT_INTERRUPTED:
            return f"Interrupted. {again}"
        if self.exit_code == EXIT_STOPPED:
            return f"Stopped early: {stopped}. {again}"
        # a sign-in or webinar problem: the same command fails the same way until fixed
        return f"{stopped}. {rows}: once this is put right, run the command again."

    def summary(self) -> str:
        """``5 registered, 3 of them await approval, 1 invalid``: how many rows ended how,
        those awaiting the organizer's approval counted with the registered (or, when someone
        else registered them, the already registered)."""
        counts = self.counts
        waiting = [row for row in self.rows if row.status is Status.WAITING_APPROVAL]
        ours = sum(1 for row in waiting if row.ours)
        parts = []
        for status in Status:
            if status is Status.WAITING_APPROVAL:
                continue
            count, of_them = counts[status], 0
            if status is Status.REGISTERED:
                count, of_them = count + ours, ours
            elif status is Status.ALREADY_REGISTERED:
                count, of_them = count + len(waiting) - ours, len(waiting) - ours
            if not count:
                continue
            said = f"{count:,} {status.value.replace('_', ' ')}"
            if of_them == count == 1:
                said += ", awaiting approval"
            elif of_them:
                said += f", {of_them:,} of them {'awaits' if of_them == 1 else 'await'} approval"
            parts.append(said)
        return ", ".join(parts) or "no rows"

    @property
    def interrupted(self) -> bool:
        """Whether the run was asked to stop (Ctrl-C, SIGTERM, a stop from Python or the page)."""
        return isinstance(self.stopped, Interrupted)

    @property
    def exit_code(self) -> int:
        """The number the command exits with: 0 all settled, 1 rows to look at, 3/4/130 stops."""
        if self.stopped is not None:
            return self.stopped.exit_code
        if self.dry_run:
            return EXIT_ROWS if self.problems else EXIT_OK
        return EXIT_OK if all(row.status.settled for row in self.rows) else EXIT_ROWS

    @property
    def checked_against_webinar(self) -> bool:
        """Whether every webinar's own form was read (False in a dry run without a sign-in)."""
        return all(part.webinar is not None for part in self.webinars)

    def to_pandas(self) -> pandas.DataFrame:
        """The report as a DataFrame, with the report's columns (and a DataFrame input's index)."""
        return report.frame(build(self), self.table.index)

    def write(self, path: str | Path, note: Callable[[str], None] | None = None) -> Path:
        """Write the report (``.xlsx`` or ``.csv``), as the command does; return where it went.

        When ``path`` is locked (open in Excel on Windows), or holds join URLs this outcome
        lacks (another webinar's report), the report goes beside it under a time-stamped name,
        and that path is returned; ``note``, if given, is told why.

        When the input is a needs-attention file, its rows' outcome also goes back into the
        report it came from (:func:`report.bring_back`), which :attr:`home` then names; the
        report at ``path`` says so on its Summary. When it cannot (the report is gone, or was
        edited so that the rows do not match), ``note`` hears why and that report stays as it
        was.
        """
        target = Path(path)
        built = build(self)
        found, why = home_of(self.table)
        if why is not None and note is not None:
            note(why)
        home = None
        if found is not None and not any(
            _same(found, other) for other in (target, self.table.source)
        ):
            home = bring_back(built, self, found, note)
        if home is not None:
            built = replace(built, summary=(*built.summary, ("All join URLs", home.describe())))
        self.written.report = report.write(built, target, note, self.draft)
        self.written.home = home
        return self.written.report

    @property
    def home(self) -> Home | None:
        """The report this run's rows were brought back into, once :meth:`write` did (the
        input was a needs-attention file of it): the one that holds every join URL."""
        return self.written.home

    def write_attention(
        self, path: str | Path, note: Callable[[str], None] | None = None
    ) -> Path | None:
        """Write the rows that need attention, in the input's own columns, to fix and import
        again (``.xlsx``, which keeps 19-digit keys as they are, or ``.csv``); remove an old
        file and return None when no row needs attention. An old file saved since it was
        written is kept aside, and ``note`` hears where.

        Each row's ``row`` cell is its line in the report that holds every join URL of the
        list (the one :meth:`write` wrote, or :attr:`home`), and an XLSX file names that
        report on its Settings sheet, so that registering the file brings the rows back there.
        """
        home = self.written.home
        named = home.path if home is not None else self.written.report
        built = build(self)
        return write_attention(built, Path(path), named, carried=home is not None, note=note)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s.value}" for s, n in self.counts.items())
        return f"<Outcome exit_code={self.exit_code} {counts or 'no rows'}>"

    def _repr_html_(self) -> str:
        """Jupyter shows the counts and the first rows."""
        import html

        rows = "".join(
            f"<tr><td>{row.line}</td><td>{row.status.value}</td>"
            f"<td>{html.escape(row.join_url or row.error or row.note or '')}</td></tr>"
            for row in self.rows[:20]
        )
        return (
            f"<p>{html.escape(repr(self))}</p><table><tr><th>row</th><th>status</th>"
            f"<th>joinUrl / error</th></tr>{rows}</table>"
        )


def row_outcomes(
    webinar_key: str,
    plan: Plan,
    results: Mapping[int, Result],
    pending: Callable[[int], str | None] = lambda line: None,
) -> tuple[list[RowOutcome], list[RowProblem]]:
    """Each row of ``plan``'s table: invalid, a duplicate, settled by ``results``, or pending
    (``pending`` says why, by line); and every problem of the rows not sent."""
    rows: list[RowOutcome] = []
    problems: list[RowProblem] = []
    for raw in plan.table.rows:
        line = raw.line
        if line in plan.problems:
            text = "; ".join(str(p) for p in plan.problems[line])
            rows.append(RowOutcome(line, webinar_key, Status.INVALID, error=text))
            problems.extend(plan.problems[line])
        elif line in plan.hidden:
            rows.append(RowOutcome(line, webinar_key, Status.SKIPPED_HIDDEN, note=HIDDEN_NOTE))
        elif line in plan.duplicates:
            first = plan.duplicates[line]
            text = repeated(first)
            rows.append(RowOutcome(line, webinar_key, Status.DUPLICATE, error=text, same_as=first))
            problems.append(RowProblem(line, "email", text))
        elif line in results:
            rows.append(_settled(webinar_key, results[line]))
        else:
            rows.append(RowOutcome(line, webinar_key, Status.PENDING, error=pending(line)))
    return rows, problems


def _settled(webinar_key: str, result: Result) -> RowOutcome:
    """A row that was sent, or settled without sending: what GoTo said of a row that did not
    end registered is its error; of one that did, a note."""
    ok = result.status.ok
    note = result.error if ok else None
    if ok and note is None and result.status is Status.ALREADY_REGISTERED:
        note = ALREADY_NOTE
    return RowOutcome(
        result.line,
        webinar_key,
        result.status,
        result.registrant_key,
        result.join_url,
        None if ok else result.error,
        note=note,
        ours=ok and result.by_us,
    )


def _same(one: Path, other: Path | None) -> bool:
    if other is None:
        return False
    try:
        return one.resolve() == other.resolve()
    except (OSError, RuntimeError):
        return one.absolute() == other.absolute()


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
        kept = unused_beside(path)
        with contextlib.suppress(OSError):
            path.rename(kept)
            tell(
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
        write_atomically(path, lambda temp: write_csv(attention, temp))
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
    table = report_xlsx.Rows(
        ATTENTION_SHEET, attention.headers, attention.rows, fills, tuple(widths(attention))
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
        tell(
            note,
            f"{home.name} could not be read ({exc}), so the outcome of {source} was not "
            "brought into it; this run's report has it",
        )
        return None
    headers, rows, summary, title = found
    index = {header: i for i, header in reversed(list(enumerate(headers)))}
    if not {"row", "email", "status"} <= index.keys():
        tell(
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
        tell(
            note,
            f"{home.name} does not hold the rows {source} came from (row {shown}{more}: another "
            f"person, or none; edited since?), so it was left as it is; this run's report has "
            "their outcome",
        )
        return None
    if kept:
        tell(
            note,
            f"{_rows_named(kept)} of {home.name} {'keeps its' if len(kept) == 1 else 'keep their'}"
            f" join URL: {source} did not register {'that person' if len(kept) == 1 else 'them'}"
            " again; this run's report has why",
        )
    if foreign:
        tell(
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
    colours = tuple(
        STATUS_COLOURS.get(Status(s)) if s in _STATUS_VALUES else None for s in statuses
    )
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
    writer = write_xlsx if home.suffix.lower() == ".xlsx" else write_csv
    try:
        write_atomically(home, lambda temp: writer(updated, temp))
    except (OSError, ValueError) as exc:
        why = "is it open?" if isinstance(exc, PermissionError) else str(exc)
        tell(
            note,
            f"{home.name} could not be updated ({why}); this run's report has the "
            f"outcome of {source}",
        )
        return None
    if added:
        tell(
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
        from python_calamine import CalamineWorkbook  # loaded when a report is read back

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
    if same_file(report, source):
        raise UsageError(
            f"--out {report}: is the input file itself, which the report would replace; "
            "choose another name"
        )
    if same_file(report, attention):
        raise UsageError(
            f"--out {report}: is where the rows needing attention go; choose another name"
        )
    probe(report.parent)
    return report, attention
