"""What a run tells the front door that started it, and how that front door asks it to stop.

The pipeline talks to the person only through a :class:`Listener`: the terminal console, the
Python API's progress callback and the web page each implement it. A :class:`StopSignal` asks a
run, from any thread, to stop as Ctrl-C does: no new rows, the calls under way finish.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from importer.model import RowProblem, Sheet, Status, Webinar


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


class Listener(Protocol):
    """How a run talks to the person running it."""

    def note(self, message: str) -> None:
        """A warning about the input or the run."""

    def plan(self, plan: PlanView) -> None:
        """What will be sent to one webinar."""

    def confirm(self, question: str) -> bool:
        """Ask before sending; True to go on (also when nobody can be asked)."""

    def started(self, total: int) -> None:
        """Sending begins: ``total`` rows to send."""

    def settled(self, status: Status, line: int) -> None:
        """One row is settled."""

    def finished(self) -> None:
        """Sending is over (finished or stopped)."""


@dataclass
class Silent:
    """A listener that says nothing and never asks (the Python API's default)."""

    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def plan(self, plan: PlanView) -> None:
        pass

    def confirm(self, question: str) -> bool:
        return True

    def started(self, total: int) -> None:
        pass

    def settled(self, status: Status, line: int) -> None:
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
