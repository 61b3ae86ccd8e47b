"""What an import came to: every row's outcome, why the run ended, and the exit code that says so.

The pipeline returns one :class:`Outcome`; the command line, the Python API and the web page all
read it, and the report is written from it alone.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from importer import report
from importer.check.validate import Plan
from importer.errors import EXIT_OK, EXIT_ROWS, Interrupted, RunStopped
from importer.model import Result, RowProblem, Status, Table, Webinar
from importer.report import Home
from importer.text import repeated

if TYPE_CHECKING:
    import pandas


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
        import pandas

        built = report.build(self)
        frame = pandas.DataFrame(built.rows, columns=list(built.headers), dtype=object)
        if self.table.index is not None:
            frame.index = pandas.Index([self.table.index[int(row[0]) - 2] for row in built.rows])
        return frame

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
        built = report.build(self)
        found, why = report.home_of(self.table)
        if why is not None and note is not None:
            note(why)
        home = None
        if found is not None and not any(
            _same(found, other) for other in (target, self.table.source)
        ):
            home = report.bring_back(built, self, found, note)
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
        built = report.build(self)
        return report.write_attention(built, Path(path), named, carried=home is not None, note=note)

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
