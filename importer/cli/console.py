"""The terminal side of a run: the plan, the question, progress, the summary, and safe logging.

Everything goes to stderr (stdout carries only the report's path), in colour only on a
terminal, and nothing but errors with ``quiet``. The log handler hides every secret the run
knows, renewed tokens included.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from types import FrameType
from typing import Any, TextIO

from importer import files
from importer.errors import EXIT_API, EXIT_INTERRUPTED
from importer.events import Brief, PlanView, StopSignal
from importer.jobs.common import Done
from importer.model import Form, Status, Webinar, local_time
from importer.progress import Progress
from importer.read.columns import fold
from importer.report.outcome import Outcome
from importer.text import clean, counted

SHOWN_PROBLEMS = 20
_COLOURS = {"red": 31, "green": 32, "yellow": 33}


class Console:
    """The run's console on a stream (stderr): a :class:`~importer.events.Listener`."""

    def __init__(
        self, *, quiet: bool = False, stream: TextIO | None = None, ask: bool = True
    ) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.ask = ask
        self.colour = _is_terminal(self.stream) and not os.environ.get("NO_COLOR")
        self._progress: Progress | None = None
        #: whether the question before sending is on the screen (Ctrl-C then stops at once)
        self.asking = False

    def say(self, message: str = "", colour: str | None = None) -> None:
        """A line of information (not in quiet mode)."""
        if not self.quiet:
            self.line(message, colour)

    def line(self, message: str, colour: str | None = None) -> None:
        """A line, quiet or not (errors); control characters from files or servers never
        reach the terminal."""
        message = clean(message)
        if colour and self.colour:
            message = f"\x1b[{_COLOURS[colour]}m{message}\x1b[0m"
        self.stream.write(message + "\n")
        self.stream.flush()

    def error(self, message: str) -> None:
        """``Error: …`` in red."""
        self.line(f"Error: {message}", "red")

    # --- the Listener -------------------------------------------------------------------------

    def note(self, message: str) -> None:
        self.line(f"Warning: {message}", "yellow")

    def can_ask(self) -> bool:
        """Whether a question can be put to the person: on a terminal, not told not to."""
        return self.ask and _is_terminal(sys.stdin) and _is_terminal(self.stream)

    def confirm(self, question: str) -> bool:
        if not self.can_ask():
            return True
        # registering e-mails people: only a clear yes goes on
        self.stream.write(f"{question} [y/N]: ")
        self.stream.flush()
        self.asking = True
        try:
            answer = sys.stdin.readline().strip().lower()
        finally:
            self.asking = False
        return answer in ("y", "yes")

    def started(self, total: int) -> None:
        self._progress = Progress(
            total, self.stream, terminal=_is_terminal(self.stream), enabled=not self.quiet
        )

    def settled(self, status: str, line: int) -> None:
        if self._progress is not None:
            self._progress.advance()

    def finished(self) -> None:
        if self._progress is not None:
            self._progress.finish()
            self._progress = None

    def plan(self, plan: PlanView | Brief) -> None:
        if self.quiet:
            return
        if isinstance(plan, Brief):
            for name, text in plan.text():
                self.say(f"{name + ':' if name else '':<12}{text}")
            return
        if plan.account is not None:
            self.say(f"As:       {plan.account}")
        if plan.webinar is not None:
            label = f" [{plan.connection}]" if plan.connection else ""
            self.say(f"Webinar:  {plan.webinar.describe()}{label}")
            left, limit = plan.webinar.places_left, plan.webinar.registration_limit
            if left is not None and limit is not None:
                self.say(f"Places:   {left:,} of {limit:,} left")
        for warning in plan.warnings:
            self.line(f"Warning: {warning}", "yellow")
        self.say(f"File:     {plan.source} (header in line {plan.header_line}, {rows(plan.rows)})")
        if (sheet := plan.sheet_note("choose one with --sheet")) is not None:
            self.say(f"Sheet:    {sheet}")
        if (hidden := plan.hidden_note("--include-hidden-rows sends them")) is not None:
            self.say(f"Hidden:   {hidden}")
        if plan.problems:
            self.say(f"Invalid:  {rows(len(plan.problems))} will not be sent:", "yellow")
            for line, problems in list(plan.problems.items())[:SHOWN_PROBLEMS]:
                for problem in problems:
                    self.say(f"  row {line}, {problem}")
            if len(plan.problems) > SHOWN_PROBLEMS:
                more = len(plan.problems) - SHOWN_PROBLEMS
                self.say(_and_more(more))
        if plan.duplicates:
            repeated = len(plan.duplicates)
            verbs = ("repeats", "is") if repeated == 1 else ("repeat", "are")
            self.say(
                f"Repeated: {rows(repeated)} {verbs[0]} an earlier e-mail and {verbs[1]} not sent:"
            )
            shown = list(plan.duplicates.items())[:SHOWN_PROBLEMS]
            self.say("  " + ", ".join(f"row {line} (as row {first})" for line, first in shown))
            if repeated > len(shown):
                more = repeated - len(shown)
                self.say(_and_more(more))
        renamed = [(h, to) for h, to, plain in plan.mapping if not plain]
        if renamed:
            self.say("Columns:  " + ", ".join(f"'{h}' → {to}" for h, to in renamed))
        for header, _ in plan.unsent:
            note = plan.column_note(header)
            self.say(f"Not sent: column '{header}': {note} (kept in the report)")
        said = {header for header, _ in plan.unsent}
        unused = [h for h in plan.unused if h and fold(h) != "webinarkey" and h not in said]
        if unused:
            named = ", ".join(
                f"'{h}'" + (f" ({note})" if (note := plan.column_note(h)) else "") for h in unused
            )
            if plan.webinar is None:
                which = "it answers" if len(unused) == 1 else "they answer"
                self.say(
                    f"Columns:  {named}: no standard field; whether {which} the webinar's "
                    "questions is not checked without a sign-in (kept in the report)"
                )
            else:
                columns = "column" if len(unused) == 1 else "columns"
                match = "matches" if len(unused) == 1 else "match"
                self.say(
                    f"Not sent: {columns} {named} {match} no field or question of the webinar "
                    "(kept in the report)"
                )
        if plan.journal is not None:
            self.say(f"Journal:  {plan.journal}")
        if plan.to_send is None:
            return
        total = plan.to_send + plan.resumed + plan.found
        if plan.resumed and plan.resuming:
            self.say(f"Resuming: {plan.resumed:,} of {rows(total)} were settled by an earlier run.")
        elif plan.resumed:  # by a run that finished: nothing was left open
            self.say(
                f"Earlier:  {plan.resumed:,} of {rows(total)} were settled by an earlier run of "
                "g2w-import; not sent again."
            )
        if plan.found:
            self.say(
                f"Found:    {plan.found:,} already registered in GoTo Webinar; not sent again."
            )
        people = "registrant" if plan.to_send == 1 else "registrants"
        self.say(f"To send:  {plan.to_send:,} {people}")
        if plan.check_calls is not None:
            calls = counted(plan.check_calls, "call")
            self.say(
                f"Check:    afterwards, every key and join URL against GoTo's registrant list "
                f"(one read, about {calls}; --no-verify skips it)"
            )

    # --- the end ------------------------------------------------------------------------------

    def dry_run(self, outcome: Outcome) -> None:
        """What a real run would send, and which checks could not be made."""
        would = outcome.counts[Status.PENDING]
        sent = f"{rows(would)} would be sent"
        if outcome.stopped is not None:
            self.error(f"{outcome.stopped}; the dry run could not finish its checks")
            return
        if outcome.checked_against_webinar:
            names = ", ".join(f"'{w.webinar.subject}'" for w in outcome.webinars if w.webinar)
            self.say(
                f"Dry run: nothing was sent. {sent} to {names}; every row was checked against "
                "the webinar's own fields and questions."
            )
            return
        self.say(
            f"Dry run of the file alone: nothing was sent; {rows(would)} "
            f"{'passes' if would == 1 else 'pass'}. Not checked "
            "without a sign-in: the webinar itself, its required fields and questions, allowed "
            "answers and maximum lengths (sign in with g2w-import login, or add --sandbox)."
        )

    def summary(self, outcome: Outcome) -> None:
        """``Done: 38 registered, 2 invalid.``, where every join URL is when that is another
        report, and how often the API asked to slow down."""
        counts = outcome.counts
        colour = "green" if all(status.settled for status in counts) else "yellow"
        self.say(f"Done: {outcome.summary()}.", colour)
        if outcome.home is not None:
            self.say(f"All join URLs: {outcome.home.describe(str(outcome.home.path))}")
        checked = [part for part in outcome.webinars if part.checked]
        fixed = sum(part.corrected for part in checked)
        unlisted = sum(part.unlisted for part in checked)
        if fixed or unlisted:
            said = [f"{counted(fixed, 'row')} corrected (GoTo's list wins)"] if fixed else []
            if unlisted:
                said.append(f"{counted(unlisted, 'row')} not in the list")
            self.line(
                f"Checked against GoTo's registrant list: {', '.join(said)}; see the note "
                "column of the report.",
                "yellow",
            )
        elif checked:
            self.say("Checked against GoTo's registrant list: every key and join URL matches.")
        for part in outcome.webinars:
            if part.unchecked:
                self.line(
                    f"Not checked against GoTo's registrant list ({part.unchecked}); the report "
                    "has the keys and join URLs GoTo's answers gave.",
                    "yellow",
                )
        if outcome.throttled:
            self.say(
                f"The API asked to slow down {counted(outcome.throttled, 'time')}; the pace was "
                "adjusted."
            )

    def ending(self, done: Done) -> None:
        """Why the job stopped early, if it did, and how to carry on: in red when it cannot go
        on until something is put right (the sign-in, the webinar)."""
        text = done.ending()
        if text is None:
            return
        if done.exit_code == EXIT_API:
            self.error(text)
        else:
            self.line(text, "yellow")


def setup_logging(verbose: bool) -> None:
    """Log to stderr: every API call with ``verbose``, warnings only otherwise. A run hides
    its secrets from these lines (``redact.hidden_in_logs``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    for name in ("httpx", "httpcore", "h11", "asyncio"):
        logging.getLogger(name).setLevel(
            logging.INFO if verbose and name == "httpx" else logging.WARNING
        )


def _and_more(count: int) -> str:
    return f"  … and {count:,} more {'row' if count == 1 else 'rows'} (see the report)"


def rows(count: int) -> str:
    """``1 row``, ``2 rows``, ``1,200 rows``."""
    return counted(count, "row")


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


class Unanswered(KeyboardInterrupt):
    """Ctrl-C at the question before sending: nothing was sent or written."""


class Interrupts:
    """Ctrl-C or SIGTERM once: no new rows, the calls under way finish, the report is written.
    Twice: the run stops at once (its journal has everything settled), or, if the report is
    being written, that is abandoned without leaving half a file. At the question before
    sending, once is enough: nothing was sent."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    #: whether the process ends with the command (the console entry point), rather than a
    #: program that runs the command inside itself and goes on
    process_ends = False

    def __init__(self, stop: StopSignal, console: Console) -> None:
        self.stop = stop
        self.console = console
        #: whether the event loop is running (the run, or asyncio closing it)
        self.in_loop = False
        self._previous: dict[int, Any] = {}
        self._interrupted = False

    def __enter__(self) -> Interrupts:
        self._previous = {number: signal.signal(number, self._handle) for number in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            # Interrupted, the process is on its way out with its report written: a further
            # Ctrl-C has nothing left to stop, and with Python's own handler back it would
            # kill the process by signal instead of letting it exit with 130.
            ending = self._interrupted and self.process_ends
            signal.signal(number, signal.SIG_IGN if ending else handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.console.asking:  # nothing was sent: the first one ends it, the rest wait
            if not self._interrupted:
                self._interrupted = True
                raise Unanswered
            return
        self._interrupted = True
        if not self.stop.is_set():
            self.stop.set()
            self.console.say()
            self.console.say(
                "Stopping: letting the calls under way finish (interrupt again to stop at once).",
                "yellow",
            )
        elif not self.stop.abort() and not self.in_loop:
            files.abandon()
            self.console.line(
                "\nInterrupted while writing the report. The journal keeps everything "
                "settled: run the same command again (it also writes the report).",
                "yellow",
            )
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)


def table_lines(rows: list[tuple[str, ...]]) -> list[str]:
    """Rows as aligned columns, the first as a header underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = (clean(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return lines


def webinar_json(webinar: Webinar) -> dict[str, object]:
    """A webinar as ``webinars --json`` prints it."""
    return {
        "webinarKey": webinar.key,
        "subject": webinar.subject,
        "times": [{"startTime": start, "endTime": end} for start, end in webinar.times],
        "timeZone": webinar.time_zone,
        "type": webinar.kind,
        "registrationLimit": webinar.registration_limit,
        "numberOfRegistrants": webinar.registrant_count,
        "approvalType": webinar.approval,
    }


def webinar_lines(webinars: list[Webinar]) -> list[str]:
    """The organizer's webinars as ``webinars`` prints them: each start on the webinar's own
    clock (``(over)`` once every session has ended), whether it is one of a series or a
    sequence, the places left when it has a limit, and whether its organizer approves
    registrants by hand."""
    rows: list[tuple[str, ...]] = [("key", "starts", "type", "places", "approval", "subject")]
    rows += [
        (
            w.key,
            (local_time(w.starts, w.time_zone) if w.starts else "")
            + (" (over)" if w.ended() else ""),
            kind_text(w),
            _places(w),
            "by hand" if w.approval == "MANUAL" else "",
            w.subject,
        )
        for w in webinars
    ]
    return table_lines(rows)


def _places(webinar: Webinar) -> str:
    """``37 of 50 left`` for a webinar with a registration limit; empty for one without."""
    left, limit = webinar.places_left, webinar.registration_limit
    return f"{left:,} of {limit:,} left" if left is not None and limit is not None else ""


def kind_text(webinar: Webinar) -> str:
    """``single session``, ``series`` or ``sequence of 3 sessions``; empty when unsaid."""
    if webinar.kind == "sequence" and webinar.times:
        return f"sequence of {counted(len(webinar.times), 'session')}"
    names = {"series": "series", "sequence": "sequence", "single_session": "single session"}
    return names.get(webinar.kind or "", "")


def form_json(webinar: Webinar, form: Form) -> dict[str, object]:
    """A webinar's form as ``fields --json`` prints it."""
    return {
        **webinar_json(webinar),
        "fields": [
            {
                "field": f.name,
                "required": f.required,
                "maxSize": f.max_size,
                "answers": list(f.answers),
            }
            for f in form.fields
        ],
        "questions": [
            {
                "questionKey": q.key,
                "question": q.text,
                "required": q.required,
                "type": q.kind,
                "maxSize": q.max_size,
                "answers": [{"answerKey": a.key, "answer": a.text} for a in q.answers],
            }
            for q in form.questions
        ],
    }


def form_lines(webinar: Webinar, form: Form) -> list[str]:
    """A webinar's times, fields and questions as ``fields`` prints them."""
    lines = [f"{webinar.subject} (webinar {webinar.key})"]
    zone = f" ({webinar.time_zone})" if webinar.time_zone else ""
    lines += [f"  {start} to {end or '?'}{zone}" for start, end in webinar.times]
    lines.append("")
    fields: list[tuple[str, ...]] = [("field", "required", "max", "answers")]
    fields += [
        (f.name, "yes" if f.required else "", str(f.max_size or ""), ", ".join(f.answers))
        for f in form.fields
    ]
    lines += [*table_lines(fields), ""]
    if not form.questions:
        return [*lines, "No custom questions."]
    questions: list[tuple[str, ...]] = [("question", "required", "type", "max", "answers")]
    questions += [
        (
            q.text,
            "yes" if q.required else "",
            q.kind,
            str(q.max_size or ""),
            ", ".join(a.text for a in q.answers),
        )
        for q in form.questions
    ]
    return [*lines, *table_lines(questions)]
