"""``cancel`` and ``undo``: take registrations back, with the same care as making them.

* :func:`cancel` unregisters the people of a file, matched by e-mail (ignoring case) against the
  webinar's registrant list, whoever registered them.
* :func:`undo` unregisters exactly the people this tool registered for the webinar, as its
  journal records them: never one it found registered already, nor one who came through another
  channel (a registration under another key than the one the journal holds). A row whose create
  call went without an answer (``sending``) is this tool's only when proven
  (:mod:`importer.goto.provenance`); it is settled so in the journal before anything is
  cancelled, and one that cannot be proven is left alone, with the reason in the report.

Both read the registrant list, show a plan, ask, and cancel through a
:class:`~importer.engine.canceller.Canceller`, which keeps the journal. Run again after any
stop, they settle what the last run left open from the registrant list and go on; nobody is
cancelled twice.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from importer import report
from importer.cli.console import Console
from importer.engine.canceller import Canceller, Settled, Target
from importer.engine.journal import Entry, State
from importer.errors import EXIT_OK, EXIT_ROWS, Declined, Interrupted, RunStopped
from importer.events import StopSignal
from importer.goto.connection import Access
from importer.goto.provenance import ServerClock, Verdict, verdict
from importer.jobs.common import (
    ManageOptions,
    Person,
    Run,
    beside,
    check_out,
    connected,
    first_lines,
    named_after,
    people,
    progress,
    show,
    stamp,
    webinar_line,
)
from importer.model import Cancellation, ListedRegistrant, Webinar, email_key
from importer.read import reader
from importer.text import are, counted

HEADERS = ("row", "firstName", "lastName", "email", "status", "registrantKey", "error", "note")
_COLOURS = {
    Cancellation.CANCELLED: report.GREEN,
    Cancellation.NOT_REGISTERED: report.PALE_GREEN,
    Cancellation.LEFT_ALONE: report.PALE_GREEN,
    Cancellation.FAILED: report.RED,
    Cancellation.PENDING: report.YELLOW,
}
#: cancel's: a row that names nobody registered is a mistake in the file (a mistyped address?)
_CANCEL_COLOURS = {**_COLOURS, Cancellation.NOT_REGISTERED: report.RED}
SHOWN_ROWS = 20
#: the addresses that name nobody registered, as many as the summary line names
SHOWN_ADDRESSES = 3
EARLIER = "cancelled by an earlier run"
#: undo's: a registration of this tool's may also have been cancelled in GoTo Webinar meanwhile
UNDONE = "the registration g2w-import made is cancelled (by an earlier run, or in GoTo Webinar)"
LEFT = "not registered by g2w-import (registered already, or through another channel)"
NOBODY = "nobody with this e-mail is registered for the webinar"
NO_EMAIL = "the row has no e-mail address"
GONE = "the registration g2w-import made is gone (cancelled in GoTo Webinar?)"
REPLACED = (
    "the registration g2w-import made is gone (cancelled in GoTo Webinar?), and the one made "
    "since by someone else is left alone"
)
UNKNOWN_PENDING = (
    "the cancellation was sent, but GoTo's answer was lost; the next run looks this person up"
)
STOPPED_PENDING = "not cancelled: the run stopped first; run the command again"


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
    #: what named the people: the input file, or the journal
    source: str
    stopped: RunStopped | None = None
    dry_run: bool = False
    #: where the report went (None in a dry run)
    report: Path | None = None
    resume_hint: str = "run the same command again"
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())
    #: ``cancel`` (the people of a file) or ``undo`` (the registrations g2w-import made)
    command: str = "cancel"
    #: whether each row's ``line`` is its line in the input file; not so for an ``undo``
    #: without a file, whose people the journal holds from any number of files (the report
    #: then has no ``row`` column)
    lines: bool = True

    @property
    def counts(self) -> collections.Counter[Cancellation]:
        """How many rows ended in each status."""
        return collections.Counter(row.status for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every row is settled as asked, 1 when rows failed or are pending (or, for
        ``cancel``, name nobody registered), and the stop's own code when the run stopped
        early. ``undo`` asks for what g2w-import registered: a row it finds not registered, or
        registered by someone else, is settled."""
        if self.stopped is not None:
            return self.stopped.exit_code
        done = self.done
        return EXIT_OK if self.dry_run or all(r.status in done for r in self.rows) else EXIT_ROWS

    @property
    def done(self) -> frozenset[Cancellation]:
        """The statuses of rows settled as asked: what the report says of them is a note, not
        an error."""
        if self.command == "cancel":
            return frozenset({Cancellation.CANCELLED})
        return frozenset(
            {Cancellation.CANCELLED, Cancellation.NOT_REGISTERED, Cancellation.LEFT_ALONE}
        )

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


@dataclass
class _Book:
    """One run's people by e-mail key: who is cancelled now, who was settled without a call."""

    targets: list[Target] = field(default_factory=list)
    settled: dict[str, tuple[Cancellation, str]] = field(default_factory=dict)
    #: registrant keys, for the report
    keys: dict[str, str] = field(default_factory=dict)
    #: journal rows whose registration the list shows gone: recorded as cancelled before going on
    gone: list[str] = field(default_factory=list)
    #: journal rows of unknown outcome (``sending``) and what the list proved of them: whose
    #: registration it is (None: nobody is registered), recorded before going on
    resolved: list[tuple[str, bool | None, ListedRegistrant | None]] = field(default_factory=list)
    #: of those, the registrations left alone because they are not proven this tool's
    unproven: int = 0
    results: dict[str, Settled] = field(default_factory=dict)
    #: how a person cancelled before this run is described
    before: str = EARLIER

    def cancel(self, target: Target) -> None:
        self.targets.append(target)
        self.keys[target.email_key] = target.registrant_key

    def settle(
        self, key: str, status: Cancellation, note: str, registrant_key: str | None = None
    ) -> None:
        self.settled[key] = (status, note)
        if registrant_key:
            self.keys[key] = registrant_key

    def earlier(self, entry: Entry) -> None:
        """Cancelled by an earlier run (whose last call's answer may have been lost)."""
        self.settle(entry.email_key, Cancellation.CANCELLED, self.before, entry.registrant_key)
        if entry.state == State.CANCELLING:
            self.gone.append(entry.email_key)

    def resumed(self) -> int:
        return sum(1 for _, note in self.settled.values() if note == self.before)

    def nobody(self) -> set[str]:
        return {key for key, (_, note) in self.settled.items() if note == NOBODY}

    def left_alone(self) -> int:
        """How many are left alone: registered, but not by g2w-import (or not proven so)."""
        return sum(1 for status, _ in self.settled.values() if status is Cancellation.LEFT_ALONE)

    def cancelled_before(self, key: str) -> bool:
        """Whether this person was cancelled before this run, not by it."""
        return key not in self.results and self.settled.get(key, (None, ""))[1] == self.before

    def status(self, key: str, unknown: set[str]) -> tuple[Cancellation, str | None]:
        """How the person of e-mail key ``key`` ends, and why; ``unknown``: the e-mail keys
        whose cancellation went without a clear answer."""
        if key in self.results:
            return self.results[key].status, self.results[key].error
        if key in self.settled:
            return self.settled[key]
        return Cancellation.PENDING, UNKNOWN_PENDING if key in unknown else STOPPED_PENDING


async def cancel(
    path: Path,
    access: Access,
    options: ManageOptions,
    console: Console,
    stop: StopSignal | None = None,
) -> Cancellations:
    """Unregister the people of the file at ``path`` (matched by e-mail) from the webinar."""
    check_out(options.out)
    table = reader.visible_rows(reader.read(path, sheet=options.sheet))
    for note in table.notes:
        console.note(note)
    rows = people(table)
    book = _Book()
    async with connected(access, options, stop, table, journal=True) as run:
        listed = await run.directory().read()
        entries = run.journal.entries() if run.journal is not None else {}
        for key, line in first_lines(rows).items():
            _sort_for_cancel(book, key, line, listed.get(key), entries.get(key), run.client.clock)
        nobody = [p for p in rows if not p.email or email_key(p.email) in book.nobody()]
        show(
            console,
            run,
            [
                ("File", f"{table.describe()} ({counted(len(rows), 'row')})"),
                *_common_lines(run, book, "cancel"),
                *_nobody_lines(nobody),
                ("To cancel", f"{len(book.targets):,} registrations"),
            ],
        )
        unknown = await _go(run, book, options, console, "cancel")
    outcome = Cancellations(
        run.webinar,
        _rows(rows, book, unknown, listed),
        str(table.source),
        run.session.stopped,
        options.dry_run,
        resume_hint=options.resume_hint,
        command="cancel",
    )
    return _written(outcome, options.out or beside(path, "cancelled.xlsx"), console)


async def undo(
    access: Access,
    options: ManageOptions,
    console: Console,
    stop: StopSignal | None = None,
    file: Path | None = None,
) -> Cancellations:
    """Unregister the people this tool registered for the webinar (those of ``file`` only, when
    given), as its journal records them."""
    check_out(options.out)
    table = (
        reader.visible_rows(reader.read(file, sheet=options.sheet)) if file is not None else None
    )
    for note in table.notes if table is not None else ():
        console.note(note)
    rows = people(table) if table is not None else []
    in_file = first_lines(rows) if table is not None else None
    named = {email_key(person.email): person for person in reversed(rows)}
    book = _Book(before=UNDONE)
    chosen: list[Person] = []
    async with connected(access, options, stop, table, journal=True, existing=True) as run:
        assert run.journal is not None
        entries = run.journal.entries()
        if in_file is not None:
            entries = {key: entry for key, entry in entries.items() if key in in_file}
        listed = await run.directory().read()
        live = {found.registrant_key for found in listed.values()}
        for key, entry in entries.items():
            line = in_file[key] if in_file is not None else entry.line
            if _sort_for_undo(book, entry, line, listed.get(key), live, run.client.clock):
                chosen.append(named.get(key) or Person(line, "", "", entry.email))
        # left alone: registered for the webinar, but not by g2w-import (nobody registered is
        # not "left alone": there is nobody to leave); the report lists whoever the plan counts
        considered = in_file if in_file is not None else entries
        for key in considered:
            if key in listed and key not in book.keys and key not in book.settled:
                book.settle(key, Cancellation.LEFT_ALONE, LEFT, listed[key].registrant_key)
                if in_file is None:
                    chosen.append(Person(entries[key].line, "", "", entries[key].email))
        left = book.left_alone()
        show(
            console,
            run,
            [
                *(
                    [("File", f"{table.describe()} ({counted(len(table.rows), 'row')})")]
                    if table
                    else []
                ),
                *_common_lines(run, book, "undo"),
                *(
                    [
                        (
                            "Left alone",
                            f"{counted(left, 'person', 'people')} g2w-import did not register "
                            "(registered already, or through another channel)",
                        )
                    ]
                    if left
                    else []
                ),
                *_unproven_lines(book, run.client.clock),
                ("To cancel", f"{counted(len(book.targets), 'registration')} made by g2w-import"),
            ],
        )
        unknown = await _go(run, book, options, console, "undo")
    if table is not None:  # the report has every row of the file, in its order
        for person in rows:
            key = email_key(person.email)
            if person.email and key not in book.keys and key not in book.settled:
                book.settle(key, Cancellation.NOT_REGISTERED, NOBODY)
        chosen = rows
    else:  # the journal's lines are those of whichever file each person came from: by e-mail
        chosen.sort(key=lambda person: (email_key(person.email), person.email))
    outcome = Cancellations(
        run.webinar,
        _rows(chosen, book, unknown, listed),
        str(file) if file is not None else f"the journal {run.journal.path}",
        run.session.stopped,
        options.dry_run,
        resume_hint=options.resume_hint,
        command="undo",
        lines=table is not None,
    )
    default = beside(file, "undone.xlsx") if file else named_after(run.webinar, "undone.xlsx")
    return _written(outcome, options.out or default, console)


def _sort_for_cancel(
    book: _Book,
    key: str,
    line: int,
    found: ListedRegistrant | None,
    entry: Entry | None,
    clock: ServerClock,
) -> None:
    """Cancel whoever the list shows under this e-mail; otherwise the person is cancelled
    already (by an earlier run) or was never registered."""
    if found is not None:
        prior = _prior(entry, found, clock)
        book.cancel(Target(line, found.email, found.registrant_key, found.join_url, prior))
    elif entry is not None and entry.state in (State.CANCELLING, State.CANCELLED):
        book.earlier(entry)
    else:
        book.settle(key, Cancellation.NOT_REGISTERED, NOBODY)


def _prior(entry: Entry | None, found: ListedRegistrant, clock: ServerClock) -> State:
    """Whether the registration about to be cancelled is one this tool made (proven so, for a
    row whose create went without an answer)."""
    if entry is None:
        return State.ALREADY_REGISTERED
    if entry.state == State.CANCELLING:
        return entry.prior or State.ALREADY_REGISTERED
    if entry.state == State.SENDING:
        ours = _proof(entry, found, clock).ours
    else:
        ours = entry.state == State.REGISTERED and entry.registrant_key == found.registrant_key
    return State.REGISTERED if ours else State.ALREADY_REGISTERED


def _proof(entry: Entry, found: ListedRegistrant, clock: ServerClock) -> Verdict:
    """Whether the registration found for a journal row of unknown outcome is this tool's."""
    return verdict(
        found,
        entry.sent_at,
        clock,
        key_seen=entry.registrant_key,
        clock_low=entry.clock_low,
        measured=True,
    )


def _sort_for_undo(
    book: _Book,
    entry: Entry,
    line: int,
    found: ListedRegistrant | None,
    live: set[str],
    clock: ServerClock,
) -> bool:
    """Sort one journal entry; False when it is not a registration this tool made."""
    if entry.state == State.SENDING:
        if found is None:
            book.resolved.append((entry.email_key, None, None))
            return False  # sent, but the registration never arrived
        proof = _proof(entry, found, clock)
        book.resolved.append((entry.email_key, proof.ours, found))
        if not proof.ours:
            book.unproven += 1
            book.settle(
                entry.email_key, Cancellation.LEFT_ALONE, proof.reason, found.registrant_key
            )
            return True
        book.cancel(
            Target(line, entry.email, found.registrant_key, found.join_url, State.REGISTERED)
        )
        return True
    ours = entry.state == State.REGISTERED or (
        entry.state in (State.CANCELLING, State.CANCELLED) and entry.prior == State.REGISTERED
    )
    if not ours:
        return False
    if entry.state == State.CANCELLED:
        book.earlier(entry)
    elif entry.registrant_key in live:
        assert entry.registrant_key is not None
        book.cancel(
            Target(line, entry.email, entry.registrant_key, entry.join_url, State.REGISTERED)
        )
    elif entry.state == State.CANCELLING:
        book.earlier(entry)
    elif found is not None:  # registered again since, by someone else
        book.settle(entry.email_key, Cancellation.LEFT_ALONE, REPLACED, found.registrant_key)
        book.gone.append(entry.email_key)
    else:
        book.settle(entry.email_key, Cancellation.NOT_REGISTERED, GONE, entry.registrant_key)
        book.gone.append(entry.email_key)
    return True


def _common_lines(run: Run, book: _Book, command: str) -> list[tuple[str, str]]:
    """The plan's journal line, and how many were cancelled before this run: "Resuming" only
    when an earlier run of the same command left its work unfinished (a ``cancel``'s
    cancellations are not ``undo``'s to resume, nor is a finished run's work)."""
    lines = [("Journal", str(run.journal.path))] if run.journal is not None else []
    count = book.resumed()
    if not count:
        return lines
    if run.journal is not None and run.journal.unfinished(command):
        said = (
            "of g2w-import's registrations are cancelled already (by an earlier run, or in GoTo "
            "Webinar)"
            if book.before == UNDONE
            else "were cancelled by an earlier run"
        )
        lines.append(("Resuming", f"{count:,} {said}."))
    elif book.before == UNDONE:
        lines.append(
            (
                "Cancelled",
                f"{count:,} of g2w-import's registrations are cancelled already (by an earlier "
                "command, or in GoTo Webinar): nothing to do for them",
            )
        )
    else:
        lines.append(
            ("Cancelled", f"{count:,} were cancelled already by an earlier command: nothing to do")
        )
    return lines


def _unproven_lines(book: _Book, clock: ServerClock) -> list[tuple[str, str]]:
    """The plan's lines about registrations of unknown outcome, and the clocks that judged
    them."""
    if not book.resolved:
        return []
    lines = []
    if book.unproven:
        lines.append(
            (
                "Unanswered",
                f"of those left alone, {counted(book.unproven, 'person', 'people')} had "
                "g2w-import's call go without an answer, but GoTo registered them before it "
                "left (or does not say when): see the report",
            )
        )
    return [*lines, ("Clock", f"{clock.describe()}.")]


def _nobody_lines(nobody: list[Person]) -> list[tuple[str, str]]:
    """The plan's rows that name nobody registered, the first few of them by line."""
    if not nobody:
        return []
    names = "names" if len(nobody) == 1 else "name"
    lines = [
        (
            "Not found",
            f"{counted(len(nobody), 'row')} {names} nobody registered for this webinar:",
        )
    ]
    lines += [("", f"  row {p.line}, {p.email or '(no e-mail)'}") for p in nobody[:SHOWN_ROWS]]
    if len(nobody) > SHOWN_ROWS:
        lines.append(("", f"  … and {len(nobody) - SHOWN_ROWS:,} more rows (see the report)"))
    return lines


async def _go(
    run: Run, book: _Book, options: ManageOptions, console: Console, command: str
) -> set[str]:
    """Ask, then cancel; return the e-mail keys whose calls are left without a clear answer. The
    journal knows, while the calls are under way and after a stop, that ``command`` has work
    left unfinished."""
    if options.dry_run:
        return set()
    count = len(book.targets)
    if count:
        what = "registration" if count == 1 else "registrations"
        if not console.confirm(f"Cancel {count:,} {what} for '{run.webinar.subject}'?"):
            raise Declined("Nothing was cancelled.")
    assert run.journal is not None
    for key, ours, found in book.resolved:
        run.journal.resolve(key, ours, found)
    for key in book.gone:
        run.journal.cancelled(key)
    if not count:
        run.journal.mark_unfinished(command, False)
        return set()
    run.journal.mark_unfinished(command, True)
    canceller = Canceller(run.session, run.client, run.journal, concurrency=run.workers)
    bar = progress(console, count)

    def settled(target: Target, result: Settled) -> None:
        book.results[target.email_key] = result
        bar.advance()

    try:
        await canceller.run(book.targets, settled)
    finally:
        bar.finish()
    unsettled = canceller.unsettled()
    if not unsettled and len(book.results) == count:
        run.journal.mark_unfinished(command, False)
    return unsettled


def _rows(
    persons: Sequence[Person],
    book: _Book,
    unknown: set[str],
    listed: Mapping[str, ListedRegistrant],
) -> tuple[Row, ...]:
    """A report row per person; a repeated e-mail shares the first row's outcome."""
    rows = []
    firsts = first_lines(persons)
    for person in persons:
        key = email_key(person.email)
        if person.email:
            status, note = book.status(key, unknown)
            if firsts[key] != person.line:
                note = f"same e-mail as row {firsts[key]}"
        else:
            status, note = Cancellation.NOT_REGISTERED, NO_EMAIL
        found = listed.get(key) if person.email else None
        rows.append(
            Row(
                person.line,
                person.first_name or (found.first_name if found else ""),
                person.last_name or (found.last_name if found else ""),
                person.email,
                status,
                book.keys.get(key),
                note,
                before=bool(person.email) and book.cancelled_before(key),
            )
        )
    return tuple(rows)


def _written(outcome: Cancellations, path: Path, console: Console) -> Cancellations:
    """The outcome, with the report written (except in a dry run)."""
    if outcome.dry_run:
        return outcome
    return replace(outcome, report=report.write(_report(outcome), path, console.note))


def _report(outcome: Cancellations) -> report.Report:
    done = outcome.done
    rows: list[tuple[int | str, ...]] = [
        (
            *((row.line,) if outcome.lines else ()),
            row.first_name,
            row.last_name,
            row.email,
            row.status.value,
            row.registrant_key or "",
            *(("", row.error or "") if row.status in done else (row.error or "", "")),
        )
        for row in outcome.rows
    ]
    counts = outcome.counts
    summary: list[tuple[str, str | int]] = [
        ("People from", outcome.source),
        ("Webinar", webinar_line(outcome.webinar)),
        ("Run at", stamp(outcome.started)),
        ("Rows", len(rows)),
        *((s.value.replace("_", " ").capitalize(), counts[s]) for s in Cancellation),
    ]
    before = sum(1 for row in outcome.rows if row.before)
    if before:  # of the cancelled, those this run found cancelled already
        at = summary.index(("Cancelled", counts[Cancellation.CANCELLED])) + 1
        summary.insert(at, ("Cancelled before this run", before))
    pending = counts[Cancellation.PENDING]
    if pending:
        interrupted = isinstance(outcome.stopped, Interrupted)
        reason = f" ({outcome.stopped})" if outcome.stopped and not interrupted else ""
        summary.append(
            (
                "Interrupted" if interrupted else "Stopped early",
                f"{counted(pending, 'row')} {are(pending)} pending{reason}. To continue, "
                f"{outcome.resume_hint}",
            )
        )
    return report.Report(
        HEADERS if outcome.lines else HEADERS[1:],
        rows,
        [],
        tuple(summary),
        title="Cancellation report",
        colours=outcome.colours(),
    )
