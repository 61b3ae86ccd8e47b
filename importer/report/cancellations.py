"""What a ``cancel`` or an ``undo`` came to: a row per person, the exit code, and the report."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from importer import report
from importer.errors import EXIT_OK, EXIT_ROWS, Interrupted, RunStopped
from importer.model import Cancellation, Webinar, email_key
from importer.report.names import beside, named_after, stamp
from importer.text import are, counted

if TYPE_CHECKING:
    import pandas

HEADERS = ("row", "firstName", "lastName", "email", "status", "registrantKey", "error", "note")
_COLOURS = {
    Cancellation.CANCELLED: report.GREEN,
    Cancellation.NOT_REGISTERED: report.PALE_GREEN,
    Cancellation.LEFT_ALONE: report.PALE_GREEN,
    Cancellation.FAILED: report.RED,
    Cancellation.DENIED: report.RED,
    Cancellation.PENDING: report.YELLOW,
}
#: cancel's: a row that names nobody registered is a mistake in the file (a mistyped address?)
_CANCEL_COLOURS = {**_COLOURS, Cancellation.NOT_REGISTERED: report.RED}
#: the addresses that name nobody registered, as many as the summary line names
SHOWN_ADDRESSES = 3


@dataclass(frozen=True)
class Row:
    """One row of a cancel or undo report."""

    line: int
    first_name: str
    last_name: str
    email: str
    status: Cancellation
    registrant_key: str | None = None
    error: str | None = None
    #: cancelled before this run (by an earlier run, or in GoTo Webinar), not by it
    before: bool = False


@dataclass(frozen=True)
class Cancellations:
    """What a ``cancel`` or ``undo`` came to: a row per person, in the order of their lines."""

    webinar: Webinar
    rows: tuple[Row, ...]
    #: what named the people: the input, or the journal
    source: str
    stopped: RunStopped | None = None
    dry_run: bool = False
    resume_hint: str = "run the same command again"
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())
    #: ``cancel`` (the people of a file) or ``undo`` (the registrations g2w-import made)
    command: str = "cancel"
    #: whether each row's ``line`` is its line in the input; not so for an ``undo`` without a
    #: file, whose people the journal holds from any number of files (the report then has no
    #: ``row`` column)
    lines: bool = True
    #: the input file, when the people came from one (the report goes beside it by default)
    path: Path | None = None
    #: a DataFrame input's index labels, one per data row (``to_pandas`` keeps them)
    index: tuple[Hashable, ...] | None = None

    @property
    def counts(self) -> collections.Counter[Cancellation]:
        """How many rows ended in each status."""
        return collections.Counter(row.status for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every row is settled as asked, 1 when rows failed or are pending (or, for
        ``cancel``, name nobody registered; a dry run says what the run would end in), and the
        stop's own code when the run stopped early. ``undo`` asks for what g2w-import
        registered: a row it finds not registered, or registered by someone else, is
        settled."""
        if self.stopped is not None:
            return self.stopped.exit_code
        # a dry run's rows to cancel are pending by design: it says what the run would end in
        done = self.done | ({Cancellation.PENDING} if self.dry_run else set())
        return EXIT_OK if all(r.status in done for r in self.rows) else EXIT_ROWS

    @property
    def done(self) -> frozenset[Cancellation]:
        """The statuses of rows settled as asked: what the report says of them is a note, not
        an error."""
        if self.command == "cancel":
            return frozenset({Cancellation.CANCELLED})
        return frozenset(
            {Cancellation.CANCELLED, Cancellation.NOT_REGISTERED, Cancellation.LEFT_ALONE}
        )

    @property
    def default_report(self) -> Path:
        """Where the report goes when nobody says: beside the input file
        (``people-cancelled.xlsx``), else in the current folder, named after the webinar."""
        ending = "cancelled.xlsx" if self.command == "cancel" else "undone.xlsx"
        return beside(self.path, ending) if self.path else named_after(self.webinar, ending)

    def summary(self) -> str:
        """``10 cancelled, 1 not registered``; for ``cancel``, with the addresses that name
        nobody registered: ``2 not registered (ann@example.com, row 7 without an e-mail)``.
        ``cancelled`` counts what this run cancelled, and says apart how many were cancelled
        before it: ``253 cancelled (4 were cancelled already)``, ``nothing to cancel (257 were
        cancelled already)``."""
        counts = self.counts
        before = sum(1 for row in self.rows if row.before)
        now = counts[Cancellation.CANCELLED] - before
        already = f"{before:,} {'was' if before == 1 else 'were'} cancelled already"
        parts = []
        for status in Cancellation:
            if status is Cancellation.CANCELLED:
                if now or before:
                    unsettled = counts[Cancellation.FAILED] or counts[Cancellation.PENDING]
                    said = f"{now:,} cancelled" if now or unsettled else "nothing to cancel"
                    parts.append(f"{said} ({already})" if before else said)
            elif counts[status]:
                said = f"{counts[status]:,} {status.value.replace('_', ' ')}"
                if status is Cancellation.NOT_REGISTERED and self.command == "cancel":
                    said += f" ({self._nobody()})"
                parts.append(said)
        return ", ".join(parts) or "nobody to cancel"

    def _nobody(self) -> str:
        """The first few addresses (each once) that name nobody registered, and how many more."""
        named: dict[str, str] = {}
        for row in self.rows:
            if row.status is Cancellation.NOT_REGISTERED:
                key = email_key(row.email) if row.email else f"row {row.line}"
                named.setdefault(key, row.email or f"row {row.line} without an e-mail")
        shown = list(named.values())[:SHOWN_ADDRESSES]
        more = len(named) - len(shown)
        return ", ".join(shown) + (f" and {more:,} more" if more else "")

    def colours(self) -> tuple[str, ...]:
        """Each row's colour in the report: cancel's rows that name nobody registered in the
        colour of rows that need attention."""
        colours = _CANCEL_COLOURS if self.command == "cancel" else _COLOURS
        return tuple(colours[row.status] for row in self.rows)

    def ending(self) -> str | None:
        """Why the run stopped early, if it did, and how to carry on."""
        if self.stopped is None:
            return None
        again = (
            f"{counted(self.counts[Cancellation.PENDING], 'row')} "
            f"{are(self.counts[Cancellation.PENDING])} pending: run the same command "
            "again to continue."
        )
        if isinstance(self.stopped, Interrupted):
            return f"Interrupted. {again}"
        return f"Stopped early: {self.stopped}. {again}"

    def report(self) -> report.Report:
        """The report's rows, Summary and colours."""
        done = self.done
        rows: list[tuple[int | str, ...]] = [
            (
                *((row.line,) if self.lines else ()),
                row.first_name,
                row.last_name,
                row.email,
                row.status.value,
                row.registrant_key or "",
                *(("", row.error or "") if row.status in done else (row.error or "", "")),
            )
            for row in self.rows
        ]
        counts = self.counts
        summary: list[tuple[str, str | int]] = [
            ("People from", self.source),
            ("Webinar", self.webinar.describe()),
            ("Run at", stamp(self.started)),
            ("Rows", len(rows)),
            *((s.value.replace("_", " ").capitalize(), counts[s]) for s in Cancellation),
        ]
        before = sum(1 for row in self.rows if row.before)
        if before:  # of the cancelled, those this run found cancelled already
            at = summary.index(("Cancelled", counts[Cancellation.CANCELLED])) + 1
            summary.insert(at, ("Cancelled before this run", before))
        pending = counts[Cancellation.PENDING]
        if self.dry_run:
            summary.append(
                (
                    "Dry run",
                    f"nothing was cancelled; the {counted(pending, 'row')} pending "
                    f"{'is' if pending == 1 else 'are'} what the run would cancel",
                )
            )
        elif pending:
            interrupted = isinstance(self.stopped, Interrupted)
            reason = f" ({self.stopped})" if self.stopped and not interrupted else ""
            summary.append(
                (
                    "Interrupted" if interrupted else "Stopped early",
                    f"{counted(pending, 'row')} {are(pending)} pending{reason}. To continue, "
                    f"{self.resume_hint}",
                )
            )
        return report.Report(
            HEADERS if self.lines else HEADERS[1:],
            rows,
            [],
            tuple(summary),
            title="Cancellation report",
            colours=self.colours(),
        )

    def write(self, path: str | Path, note: Callable[[str], None] | None = None) -> Path:
        """Write the report (``.xlsx`` or ``.csv``), as the command does; return where it went
        (beside ``path``, and ``note`` told why, when that file is locked)."""
        return report.write(self.report(), Path(path), note)

    def to_pandas(self) -> pandas.DataFrame:
        """The report as a DataFrame (with a DataFrame input's index)."""
        return report.frame(self.report(), self.index if self.lines else None)

    def __repr__(self) -> str:
        return f"<Cancellations {self.command} exit_code={self.exit_code} {self.summary()}>"
