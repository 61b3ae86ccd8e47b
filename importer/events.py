"""What a job tells the front door that started it, and how that front door asks it to stop.

Every job (``register``, ``cancel``, ``undo``, ``export``) talks to the person only through a
:class:`Listener`: the terminal console, the Python API's progress callback and the web page
each implement it. A job shows its plan (a :class:`PlanView` for ``register``, a
:class:`Brief` for the others), asks, and tells each row settled. A :class:`StopSignal` asks a
job, from any thread, to stop as Ctrl-C does: no new rows, the calls under way finish.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from importer.model import RowProblem, Sheet, Webinar
from importer.text import are, counted


@dataclass(frozen=True)
class PlanView:
    """What will be sent to one webinar, shown before anything is sent."""

    webinar_key: str
    #: the webinar's details; None in a dry run without credentials
    webinar: Webinar | None
    #: how the input is named in messages, its header line and its number of data rows
    source: str
    header_line: int
    rows: int
    problems: Mapping[int, tuple[RowProblem, ...]]
    #: repeated e-mail addresses: line → the line that has it first
    duplicates: Mapping[int, int]
    #: input columns that are not sent (kept in the report)
    unused: tuple[str, ...] = ()
    #: of those, the ones that look like a misspelt field or question: (header, which)
    near: tuple[tuple[str, str], ...] = ()
    #: of those, the ones that look like a field but are not sent, and why: (header, reason)
    unsent: tuple[tuple[str, str], ...] = ()
    #: which input column answers which field or question: (header, what it is sent as,
    #: whether that is plain from the header alone)
    mapping: tuple[tuple[str, str, bool], ...] = ()
    #: settled by an earlier run, found in the registrant list, still to send; None: not known
    resumed: int = 0
    found: int = 0
    to_send: int | None = None
    journal: Path | None = None
    #: whether the last ``register`` run on this journal stopped with work open, which this
    #: run resumes (rather than finishing, which leaves its rows only settled already)
    resuming: bool = False
    #: warnings about the webinar (it is over, it needs approval)
    warnings: tuple[str, ...] = ()
    #: what the connection is, when it is not GoTo itself ("the built-in sandbox")
    connection: str | None = None
    #: whose token this is, when known (the sign-in's account, or the API said it)
    account: str | None = None
    #: about how many calls the check after sending costs (one read of the registrant list);
    #: None when there is nothing to check or --no-verify
    check_calls: int | None = None
    #: the workbook's sheet read, and its other sheets that have an e-mail column too
    sheet: str | None = None
    other_sheets: tuple[Sheet, ...] = ()
    #: data rows hidden in Excel, and whether they are sent (by default they are not)
    hidden_rows: int = 0
    hidden_sent: bool = False

    def column_note(self, header: str) -> str | None:
        """What the command line and the page say of an input column that is not sent, after
        its name: why not (``not a field of this webinar``), or what it may be a misspelling of
        (``did you mean 'Company'?``); None when it simply matches nothing."""
        why = next((why for unsent, why in self.unsent if unsent == header), None)
        if why is not None:
            return why
        near = next((which for near, which in self.near if near == header), None)
        return f"did you mean '{near}'?" if near is not None else None

    def sheet_note(self, choose: str) -> str | None:
        """The sheet read, when other sheets of the workbook have e-mails too, and how to
        ``choose`` another: ``'Guests' (also with e-mails: 'Archive 2019' (hidden, 1,204
        rows); choose one with --sheet)``."""
        if not self.other_sheets:
            return None
        also = ", ".join(
            f"'{sheet.name}' ({'hidden, ' if sheet.hidden else ''}{counted(sheet.rows, 'row')})"
            for sheet in self.other_sheets
        )
        return f"'{self.sheet}' (also with e-mails: {also}; {choose})"

    def hidden_note(self, include: str) -> str | None:
        """What becomes of the rows hidden in Excel, and how to ``include`` them."""
        if not self.hidden_rows:
            return None
        hidden = f"{counted(self.hidden_rows, 'row')} hidden in Excel {are(self.hidden_rows)}"
        if self.hidden_sent:
            return f"{hidden} sent too (--include-hidden-rows)"
        return f"{hidden} not sent; {include}"


@dataclass(frozen=True)
class Brief:
    """What a ``cancel``, an ``undo`` or an ``export`` will do, shown before it does it: the
    webinar, then a line per label (``("To cancel", "12 registrations")``)."""

    #: ``cancel``, ``undo`` or ``export``
    command: str
    webinar: Webinar
    lines: tuple[tuple[str, str], ...]
    #: what the connection is, when it is not GoTo itself ("the built-in sandbox")
    connection: str | None = None

    def text(self) -> list[tuple[str, str]]:
        """Every line, the webinar's first: (label, text); a label left empty goes on with the
        line above."""
        label = f" [{self.connection}]" if self.connection else ""
        return [("Webinar", f"{self.webinar.describe()}{label}"), *self.lines]


class Listener(Protocol):
    """How a run talks to the person running it."""

    def note(self, message: str) -> None:
        """A warning about the input or the run."""

    def plan(self, plan: PlanView | Brief) -> None:
        """What will be done: sent to one webinar (``register``), cancelled or exported."""

    def confirm(self, question: str) -> bool:
        """Ask before sending; True to go on (also when nobody can be asked)."""

    def started(self, total: int) -> None:
        """The calls begin: ``total`` rows (or registrants, for an export's answers) to go."""

    def settled(self, status: str, line: int) -> None:
        """One row is settled: its status (a :class:`~importer.model.Status` of ``register``,
        a :class:`~importer.model.Cancellation` of ``cancel`` and ``undo``, ``read`` for an
        export's answers) and its line (0 when it has none)."""

    def finished(self) -> None:
        """The calls are over (finished or stopped)."""


@dataclass
class Silent:
    """A listener that says nothing and never asks (the Python API's default)."""

    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def plan(self, plan: PlanView | Brief) -> None:
        pass

    def confirm(self, question: str) -> bool:
        return True

    def started(self, total: int) -> None:
        pass

    def settled(self, status: str, line: int) -> None:
        pass

    def finished(self) -> None:
        pass


class StopSignal:
    """Asks a run to stop gracefully; safe to set from any thread or a signal handler."""

    def __init__(self) -> None:
        self._set = False
        self._lock = threading.RLock()  # set() may run in a signal handler mid-attach()
        self._targets: list[tuple[asyncio.AbstractEventLoop, Callable[[], None]]] = []
        self._tasks: list[tuple[asyncio.AbstractEventLoop, asyncio.Task[object]]] = []

    def set(self) -> None:
        """Stop: no new rows or calls; the calls under way finish and are recorded."""
        with self._lock:
            self._set = True
            targets = list(self._targets)
        for loop, callback in targets:
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback)

    def abort(self) -> bool:
        """Stop at once: cancel the runs attached now. False if none is (it has ended)."""
        with self._lock:
            tasks = list(self._tasks)
        for loop, task in tasks:
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
        return bool(tasks)

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self._set

    def attach(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` in the running loop when the stop is set (now, if it already is);
        :meth:`abort` cancels the task that attached it.

        Returns a function that detaches both again.
        """
        loop = asyncio.get_running_loop()
        entry = (loop, callback)
        task = asyncio.current_task()
        running = [(loop, task)] if task is not None else []
        with self._lock:
            self._targets.append(entry)
            self._tasks += running
            already = self._set
        if already:
            callback()

        def detach() -> None:
            with self._lock:
                if entry in self._targets:
                    self._targets.remove(entry)
                for item in running:
                    if item in self._tasks:
                        self._tasks.remove(item)

        return detach
