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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from importer.engine.canceller import Canceller, Settled, Target
from importer.engine.journal import Entry, State
from importer.errors import Declined
from importer.events import Brief, Listener, Silent, StopSignal
from importer.goto.connection import Access
from importer.goto.provenance import ServerClock, Verdict, verdict
from importer.jobs.common import Options, Run, connected
from importer.model import (
    Cancellation,
    ListedRegistrant,
    Table,
    email_key,
    pending_stopped,
    pending_unknown,
)
from importer.read import reader
from importer.read.people import Person, first_lines, people
from importer.read.reader import Source
from importer.report.cancellations import Cancellations, Row
from importer.text import are, counted

SHOWN_ROWS = 20
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
UNKNOWN_PENDING = pending_unknown("the cancellation")


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
    #: why a row the run stopped before is pending, and how to carry on (None in a dry run,
    #: whose rows to cancel are pending by design)
    stopped: str | None = None

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
        return Cancellation.PENDING, UNKNOWN_PENDING if key in unknown else self.stopped


def _stopped(options: Options) -> str | None:
    """Why a row the run stopped before is pending, in the front door's words; None in a dry
    run."""
    return None if options.dry_run else pending_stopped("cancelled", options.again)


def _read(source: Source, options: Options, listener: Listener) -> Table:
    """The visible rows of ``source`` (rows hidden in Excel are nobody's to cancel)."""
    table = reader.visible_rows(reader.read(source, sheet=options.sheet))
    for note in table.notes:
        listener.note(note)
    return table


async def cancel(
    source: Source,
    access: Access,
    options: Options | None = None,
    listener: Listener | None = None,
    stop: StopSignal | None = None,
) -> Cancellations:
    """Unregister the people of ``source`` (a file, a DataFrame or records; matched by e-mail)
    from the webinar."""
    options = options or Options()
    listener = listener or Silent()
    table = _read(source, options, listener)
    rows = people(table)
    book = _Book(stopped=_stopped(options))
    async with connected(access, options, stop, table, journal=True) as run:
        listed = await run.directory().read()
        entries = run.journal.entries() if run.journal is not None else {}
        for key, line in first_lines(rows).items():
            _sort_for_cancel(book, key, line, listed.get(key), entries.get(key), run.client.clock)
        nobody = [p for p in rows if not p.email or email_key(p.email) in book.nobody()]
        _show(
            listener,
            run,
            "cancel",
            [
                ("File", f"{table.describe()} ({counted(len(rows), 'row')})"),
                *_common_lines(run, book, "cancel"),
                *_nobody_lines(nobody),
                ("To cancel", counted(len(book.targets), "registration")),
            ],
        )
        unknown = await _go(run, book, options, listener, "cancel")
    return Cancellations(
        run.webinar,
        _rows(rows, book, unknown, listed),
        table.describe(),
        run.session.stopped,
        options.dry_run,
        resume_hint=options.resume_hint,
        command="cancel",
        path=table.source,
        index=table.index,
    )


async def undo(
    source: Source | None,
    access: Access,
    options: Options | None = None,
    listener: Listener | None = None,
    stop: StopSignal | None = None,
) -> Cancellations:
    """Unregister the people this tool registered for the webinar, as its journal records them
    (those of ``source`` only, when given: a file, a DataFrame or records)."""
    options = options or Options()
    listener = listener or Silent()
    table = _read(source, options, listener) if source is not None else None
    rows = people(table) if table is not None else []
    in_file = first_lines(rows) if table is not None else None
    named = {email_key(person.email): person for person in reversed(rows)}
    book = _Book(before=UNDONE, stopped=_stopped(options))
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
        _show(
            listener,
            run,
            "undo",
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
        unknown = await _go(run, book, options, listener, "undo")
    if table is not None:  # the report has every row of the file, in its order
        for person in rows:
            key = email_key(person.email)
            if person.email and key not in book.keys and key not in book.settled:
                book.settle(key, Cancellation.NOT_REGISTERED, NOBODY)
        chosen = rows
    else:  # the journal's lines are those of whichever file each person came from: by e-mail
        chosen.sort(key=lambda person: (email_key(person.email), person.email))
    return Cancellations(
        run.webinar,
        _rows(chosen, book, unknown, listed),
        table.describe() if table is not None else f"the journal {run.journal.path}",
        run.session.stopped,
        options.dry_run,
        resume_hint=options.resume_hint,
        command="undo",
        lines=table is not None,
        path=table.source if table is not None else None,
        index=table.index if table is not None else None,
    )


def _show(listener: Listener, run: Run, command: str, lines: list[tuple[str, str]]) -> None:
    """The plan: the webinar first, then a line per label."""
    listener.plan(Brief(command, run.webinar, tuple(lines), run.connection.label))


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
        names=entry.names,
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
    were = "was" if count == 1 else "were"
    if run.journal is not None and run.journal.unfinished(command):
        said = (
            f"of g2w-import's registrations {are(count)} cancelled already (by an earlier run, "
            "or in GoTo Webinar)"
            if book.before == UNDONE
            else f"{were} cancelled by an earlier run"
        )
        lines.append(("Resuming", f"{count:,} {said}."))
    elif book.before == UNDONE:
        lines.append(
            (
                "Cancelled",
                f"{count:,} of g2w-import's registrations {are(count)} cancelled already (by an "
                "earlier command, or in GoTo Webinar): nothing to do for them",
            )
        )
    else:
        lines.append(
            (
                "Cancelled",
                f"{count:,} {were} cancelled already by an earlier command: nothing to do",
            )
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
    run: Run, book: _Book, options: Options, listener: Listener, command: str
) -> set[str]:
    """Ask, then cancel; return the e-mail keys whose calls are left without a clear answer. The
    journal knows, while the calls are under way and after a stop, that ``command`` has work
    left unfinished."""
    if options.dry_run:
        return set()
    count = len(book.targets)
    if count:
        what = "registration" if count == 1 else "registrations"
        if not listener.confirm(f"Cancel {count:,} {what} for '{run.webinar.subject}'?"):
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

    def settled(target: Target, result: Settled) -> None:
        book.results[target.email_key] = result
        listener.settled(result.status, target.line)

    listener.started(count)
    try:
        await canceller.run(book.targets, settled)
    finally:
        listener.finished()
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
