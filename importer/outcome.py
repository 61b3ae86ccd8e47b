"""What an import came to: every row's outcome, why the run ended, and the exit code that says so.

The pipeline returns one :class:`Outcome`; the command line, the Python API and the web page all
read it, and the report is written from it alone.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import report
from .errors import EXIT_OK, EXIT_ROWS, Interrupted, RunStopped
from .models import Result, RowProblem, Status, Table, Webinar
from .validate import Plan

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One input row's outcome for one webinar: a row of the report."""

    line: int
    webinar_key: str
    status: Status
    registrant_key: str | None = None
    join_url: str | None = None
    error: str | None = None


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
    #: why the check against the registrant list could not be made, when it could not
    unchecked: str | None = None


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

    @property
    def counts(self) -> collections.Counter[Status]:
        """How many rows ended in each status."""
        return collections.Counter(row.status for row in self.rows)

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
        return EXIT_OK if all(row.status.ok for row in self.rows) else EXIT_ROWS

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
        """
        return report.write(report.build(self), Path(path), note)

    def write_attention(self, path: str | Path) -> Path | None:
        """Write the rows that need attention, in the input's own columns, to fix and import
        again (``.xlsx``, which keeps 19-digit keys as they are, or ``.csv``); remove an old
        file and return None when no row needs attention."""
        return report.write_attention(report.build(self), Path(path))

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s.value}" for s, n in self.counts.items())
        return f"<Outcome exit_code={self.exit_code} {counts or 'no rows'}>"

    def _repr_html_(self) -> str:
        """Jupyter shows the counts and the first rows."""
        import html

        rows = "".join(
            f"<tr><td>{row.line}</td><td>{row.status.value}</td>"
            f"<td>{html.escape(row.join_url or row.error or '')}</td></tr>"
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
        elif line in plan.duplicates:
            text = f"same e-mail as row {plan.duplicates[line]}; not sent again"
            rows.append(RowOutcome(line, webinar_key, Status.DUPLICATE, error=text))
            problems.append(RowProblem(line, "email", text))
        elif line in results:
            result = results[line]
            rows.append(
                RowOutcome(
                    line,
                    webinar_key,
                    result.status,
                    result.registrant_key,
                    result.join_url,
                    result.error,
                )
            )
        else:
            rows.append(RowOutcome(line, webinar_key, Status.PENDING, error=pending(line)))
    return rows, problems
