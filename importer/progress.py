"""How far a job has got: a :class:`ProgressReport` for a callback or the page, and a
:class:`Progress` on stderr, a bar that redraws itself on a terminal, a line now and then
elsewhere."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from importer.text import counted

BAR_WIDTH = 28


def clock_text(seconds: float) -> str:
    """``95`` → ``1:35``; ``4000`` → ``1:06:40``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


class Progress:
    """Counts settled rows against a total and shows done/total, rate and time left."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        terminal: bool,
        enabled: bool = True,
        every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.terminal = terminal
        self.enabled = enabled and total > 0
        self.every = every if not terminal else 0.1
        self.clock = clock
        self.started = clock()
        self._shown_at = -float("inf")
        self._shown_done = -1

    def advance(self, count: int = 1) -> None:
        """``count`` more rows are settled."""
        self.done += count
        now = self.clock()
        if now - self._shown_at >= self.every or self.done == self.total:
            self._show(now)

    def line(self) -> str:
        """The current state as one line of text."""
        elapsed = self.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        eta = clock_text(left) if left is not None else "--:--"
        if self.terminal:
            filled = BAR_WIDTH * self.done // self.total
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            return f"[{bar}] {self.done:,}/{self.total:,}  {rate:4.1f}/s  ETA {eta}"
        return (
            f"{self.done:,} of {counted(self.total, 'row')} done ({rate:.1f}/s, about {eta} left)"
        )

    def finish(self) -> None:
        """End the bar's line so that later messages start on a fresh one."""
        if not self.enabled:
            return
        if self._shown_done != self.done:
            self._show(self.clock())
        if self.terminal:
            self.stream.write("\n")
            self.stream.flush()

    def _show(self, now: float) -> None:
        if not self.enabled:
            return
        self._shown_at, self._shown_done = now, self.done
        if self.terminal:
            self.stream.write("\r" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()


@dataclass(frozen=True)
class ProgressReport:
    """How far a job has got, for a ``progress`` callback and the page: ``counts`` by status
    (a :class:`~importer.model.Status` of ``register``, a :class:`~importer.model.Cancellation`
    of ``cancel`` and ``undo``)."""

    done: int
    total: int
    counts: Counter[str]
    elapsed: float

    @property
    def rate(self) -> float:
        """Rows settled per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def left(self) -> float | None:
        """Seconds left at the rate so far, once there is one."""
        return (self.total - self.done) / self.rate if self.rate > 0 else None
