"""One import, start to end: every front door (command line, Python API, web page) calls
:func:`register`.

read → check the columns → connect → split by webinar → journals → look up each webinar, its
form and its approval setting → validate (once per webinar) → prepare (resume, reconcile) → plan
→ confirm → send → check every registered row against the registrant list →
:class:`~importer.report.outcome.Outcome`.

Whatever stops the run after the file was read (the API down or out of reach, a refused token,
a missing webinar, a quota, Ctrl-C) ends in an outcome with the rows not settled ``pending``,
never in an exception, so that the report can always be written. Only a file or a setting that
cannot be used at all raises (:class:`~importer.errors.InputError`, ``UsageError``), before
anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from importer import report
from importer.checks.validate import Plan, check_columns, validate
from importer.engine.directory import Directory
from importer.engine.journal import Journal, State, webinar_journal
from importer.engine.registrar import UNLISTED, Preparation, Registrar
from importer.errors import Declined, JournalFull, NoWebinar, RunStopped, UsageError
from importer.events import Listener, PlanView, Silent, StopSignal
from importer.goto import lookup
from importer.goto.client import PAGE_LIMIT, G2WClient
from importer.goto.connection import Access, Connection, paced
from importer.goto.credentials import NotSignedIn
from importer.goto.session import ApiSession
from importer.jobs.common import Options, default_webinar, open_connection
from importer.model import (
    Form,
    ListedRegistrant,
    Result,
    RowProblem,
    Table,
    Webinar,
    pending_stopped,
    pending_unknown,
)
from importer.read import reader, settings
from importer.read.reader import Source
from importer.report.outcome import (
    Outcome,
    RowOutcome,
    WebinarOutcome,
    build,
    report_columns,
    row_outcomes,
)
from importer.text import are, counted

UNKNOWN_PENDING = pending_unknown("the registration")

log = logging.getLogger(__name__)


@dataclass
class _Part:
    """One webinar's share of the run, filled in as the run goes."""

    key: str
    table: Table
    journal: Journal | None = None
    webinar: Webinar | None = None
    form: Form | None = None
    plan: Plan | None = None
    #: the webinar's registrant list, read beside the look-ups when the journal needs it
    listed: dict[str, ListedRegistrant] | None = None
    #: the webinar's approvalType, from the organizer's webinar list
    approval: str | None = None
    prepared: Preparation | None = None
    registrar: Registrar | None = None
    results: dict[int, Result] = field(default_factory=dict)
    #: whether the registered rows were checked against the registrant list, and how many of
    #: them it corrected
    checked: bool = False
    corrected: int = 0
    #: and how many it did not show (kept as GoTo's answers had them)
    unlisted: int = 0
    #: why the check could not be made, when it could not
    unchecked: str | None = None
    #: join URLs the journal recorded as cancelled when the run began
    retired: frozenset[str] = frozenset()
    #: whether the last run on this journal stopped with work open, which this run resumes
    resuming: bool = False


#: the journal's name for a ``register`` run whose calls began and are not all settled
_REGISTER = "register"


async def register(
    source: Source,
    access: Access,
    options: Options | None = None,
    listener: Listener | None = None,
    stop: StopSignal | None = None,
) -> Outcome:
    """Import ``source`` (a file, a DataFrame or records) for the webinars ``options`` name."""
    options = options or Options()
    listener = listener or Silent()
    table = reader.read(
        source, sheet=options.sheet, include_hidden_rows=options.include_hidden_rows
    )
    for note in table.notes:
        listener.note(note)
    check_columns(table)  # a missing name or e-mail column fails here, before any call
    keys = settings.webinar_keys(options.webinar_keys, table, default_webinar(access))
    try:
        parts = [_Part(k, t) for k, t in settings.split_by_webinar(table, keys).items()]
    except NoWebinar:
        if not options.dry_run:
            raise
        return _offline(table, [_Part("", table)], options, listener)
    async with contextlib.AsyncExitStack() as stack:
        try:
            connection = await stack.enter_async_context(open_connection(access, table))
        except NotSignedIn:
            if not options.dry_run:
                raise
            return _offline(table, parts, options, listener)
        http, session, workers = await paced(stack, connection, options, stop)
        run = _Registering(parts, http, connection, session, options, listener, table, workers)
        try:
            await run.look_up(stack)
            await run.send()
        except RunStopped as exc:
            session.stop(exc)  # the session holds the reason (the first one stands)
        return _outcome(table, parts, options, session, run.draft)


async def _draft(outcome: Outcome) -> report.Draft | None:
    """The report of ``outcome`` built and its rows written ahead, in a thread (the outcome
    is a snapshot: nothing changes it meanwhile); None when they cannot be (the report is then
    written whole, and says why)."""

    def drafted() -> report.Draft:
        draft = report.Draft(build(outcome))
        draft.write_rows()
        return draft

    try:
        return await asyncio.to_thread(drafted)
    except Exception:  # whatever it was, writing the report whole meets it again, and says so
        log.debug("the report's rows could not be written ahead", exc_info=True)
        return None


class _Registering:
    """One import once connected: what it needs at hand, and its two halves."""

    def __init__(
        self,
        parts: list[_Part],
        http: httpx.AsyncClient,
        connection: Connection,
        session: ApiSession,
        options: Options,
        listener: Listener,
        table: Table,
        workers: int,
    ) -> None:
        self.parts = parts
        self.http = http
        self.connection = connection
        self.session = session
        self.options = options
        self.listener = listener
        self.table = table
        self.workers = workers
        #: whose token this is, when known: from the sign-in, or the API when asked for the key
        self.account: str | None = None
        self.clients: dict[str, G2WClient] = {}
        #: the report's rows, written while the check ran
        self.draft: report.Draft | None = None

    async def look_up(self, stack: contextlib.AsyncExitStack) -> None:
        """Whose token, the journals, every webinar and its form (side by side, with the
        registrant list when a journal holds rows of unknown outcome), the checks.

        Every webinar of the run is read before anything is sent: one that is missing stops
        the run before its first registration.
        """
        dry = self.options.dry_run
        organizer, self.account = await lookup.organizer(self.connection, self.http, self.session)
        if not dry:
            _open_journals(stack, self.parts, organizer, self.connection, self.options.journal)
        self.clients = {part.key: G2WClient(self.http, organizer, part.key) for part in self.parts}
        await _together(*(self._look_up(part) for part in self.parts))
        for part in self.parts:
            part.plan = validate(part.table, part.form)
        if dry:
            for part in self.parts:
                self.listener.plan(self._view(part))

    async def _look_up(self, part: _Part) -> None:
        client = self.clients[part.key]

        async def webinar() -> None:
            what = f"reading webinar {part.key}"
            part.webinar = await self.session.call(client.get_webinar, what=what)

        async def form() -> None:
            what = f"reading the form of webinar {part.key}"
            part.form = await self.session.call(client.get_form, what=what)

        async def registrants() -> None:
            if part.journal is not None and part.journal.holds_unknown():
                part.listed = await Directory(self.session, client).read()

        async def approval() -> None:
            part.approval = await lookup.approval(
                self.session, self.http, client.organizer_key, part.key
            )

        await _together(webinar(), form(), registrants(), approval())
        found = part.webinar
        if found is not None and found.approval is None:
            if part.approval is None and not lookup.upcoming(found):  # asked the wrong days
                part.approval = await lookup.approval(
                    self.session, self.http, client.organizer_key, part.key, found.times
                )
            part.webinar = dataclasses.replace(found, approval=part.approval)
        if part.journal is not None and part.webinar is not None:
            part.journal.remember(part.webinar)

    async def send(self) -> None:
        """Prepare (resume, reconcile), show the plan, confirm, and register; raises
        :class:`RunStopped` when the run stops early."""
        if self.options.dry_run:
            return
        resend = settings.resend_confirmation(self.options.resend, self.table.settings)
        owners: dict[str, tuple[str, str]] = {}  # one run's keys and join URLs, every webinar's
        for part in self.parts:
            part.registrar = Registrar(
                self.session,
                self.clients[part.key],
                journal=part.journal,
                resend=resend,
                concurrency=self.workers,
                manual_approval=_by_hand(part.webinar),
                owners=owners,
            )
        await _together(*(_prepare(part) for part in self.parts))
        for part in self.parts:
            self.listener.plan(self._view(part))
        total = sum(len(part.prepared.to_send) for part in self.parts if part.prepared)
        if total:
            people = "person" if total == 1 else "people"
            what = f"{total:,} {people}" if len(self.parts) == 1 else f"{total:,} registrations"
            if not self.listener.confirm(f"Send {what}?"):
                raise Declined("Nothing was sent.")
            for part in self.parts:
                if part.journal is not None and part.prepared and part.prepared.to_send:
                    part.journal.mark_unfinished(_REGISTER, True)
            await self._register(total)
        for part in self.parts:
            _finished(part)
        drafting = None
        if self.options.draft_report and any(self._checks(part) for part in self.parts):
            outcome = _outcome(self.table, self.parts, self.options, self.session)
            drafting = asyncio.create_task(_draft(outcome))
        try:
            for part in self.parts:
                if self._checks(part) and not self.session.stopping:
                    await self._verify(part)
        finally:
            if drafting is not None:
                self.draft = await drafting

    def _checks(self, part: _Part) -> bool:
        """Whether the webinar's registered rows are checked against the registrant list: after
        a stray answer, the answers that followed it on its connection are suspect too, and only
        the list can tell, so it is read whatever --no-verify says."""
        strays = part.registrar is not None and part.registrar.strays
        return bool(self.options.verify or strays)

    async def _register(self, total: int) -> None:
        """Send every webinar's rows, one webinar after the other."""
        self.listener.started(total)
        try:
            for part in self.parts:
                assert part.registrar is not None
                assert part.prepared is not None

                def settled(_: object, result: Result, part: _Part = part) -> None:
                    part.results[result.line] = result
                    self.listener.settled(result.status, result.line)

                await part.registrar.run(part.prepared.to_send, settled)
                if self.session.stopping:
                    break
        finally:
            self.listener.finished()
            for part in self.parts:
                if part.registrar is not None and part.registrar.strays:
                    self.listener.note(
                        f"{counted(part.registrar.strays, 'answer')} of the API for webinar "
                        f"{part.key} belonged to another registrant (a stray answer on a "
                        "connection, or a proxy that mixed them up): every row is checked "
                        "against GoTo's registrant list"
                        + ("" if self.options.verify else ", --no-verify notwithstanding")
                    )

    async def _verify(self, part: _Part) -> None:
        """Check the webinar's registered rows against GoTo's registrant list (GoTo's wins)."""
        assert part.registrar is not None
        assert part.plan is not None
        held = part.webinar.registrant_count if part.webinar is not None else None
        sent = len(part.prepared.to_send) if part.prepared is not None else 0
        try:
            corrected = await part.registrar.verify(
                part.plan.registrants, part.results, (held or 0) + sent
            )
        except RunStopped as exc:
            if self.session.stopping:
                raise
            part.unchecked = str(exc)  # every row is settled: the run ends as it would have
            return
        part.results.update(corrected)
        part.checked = True
        part.unlisted = sum(1 for result in corrected.values() if result.error in UNLISTED)
        part.corrected = len(corrected) - part.unlisted

    def _view(self, part: _Part) -> PlanView:
        return _view(part, self.connection, self.account, self.options.verify)


def _finished(part: _Part) -> None:
    """Record in the journal that no work of this run's is open for the webinar (every row to
    send settled, none of unknown outcome), so that the next run does not say it resumes."""
    if part.journal is None or part.prepared is None or part.registrar is None:
        return
    if part.registrar.unsettled() or any(
        registrant.line not in part.results for registrant in part.prepared.to_send
    ):
        return
    # not recorded (a full disk): the next run says it resumes, and sends nobody twice anyway
    with contextlib.suppress(JournalFull):
        part.journal.mark_unfinished(_REGISTER, False)


async def _prepare(part: _Part) -> None:
    assert part.registrar is not None
    assert part.plan is not None
    if part.journal is not None:  # before registering anyone again gives them new ones
        part.resuming = part.journal.unfinished(_REGISTER)
        part.retired = frozenset(
            entry.join_url
            for entry in part.journal.entries().values()
            if entry.state is State.CANCELLED and entry.join_url
        )
    part.prepared = await part.registrar.prepare(list(part.plan.registrants), part.listed)
    part.results.update(part.prepared.settled)


async def _together(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run side by side; the first :class:`RunStopped` cancels the others and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except* RunStopped as stopped:
        raise stopped.exceptions[0] from None


def _open_journals(
    stack: contextlib.AsyncExitStack,
    parts: list[_Part],
    organizer: str,
    connection: Connection,
    path: Path | None,
) -> None:
    """Each webinar's journal, locked for this run."""
    if path is not None and len(parts) > 1:
        raise UsageError(
            "--journal names one journal, but this run has several webinars; leave --journal out"
        )
    for part in parts:
        part.journal = stack.enter_context(
            webinar_journal(organizer, part.key, folder=connection.journal_folder, path=path)
        )


def _by_hand(webinar: Webinar | None) -> bool | None:
    """Whether the webinar's organizer approves each registrant by hand; None when unknown."""
    approval = webinar.approval if webinar is not None else None
    return {"MANUAL": True, "AUTOMATIC": False}.get(approval or "")


def _check_calls(part: _Part, verify: bool) -> int | None:
    """About how many calls the check after sending costs: one read of the registrant list,
    ⌈registrants / 200⌉ pages."""
    prepared = part.prepared
    if not verify or prepared is None:
        return None
    settled = [r for r in prepared.settled.values() if r.registered]
    if not prepared.to_send and not settled:
        return None
    held = part.webinar.registrant_count if part.webinar is not None else None
    people = len(prepared.to_send) + (held if held is not None else len(settled))
    return max(1, -(-people // PAGE_LIMIT))


def _view(
    part: _Part, connection: Connection | None, account: str | None = None, verify: bool = False
) -> PlanView:
    plan = part.plan
    assert plan is not None
    prepared = part.prepared
    warnings = []
    ended = part.webinar.ended() if part.webinar else None
    if ended is not None:
        warnings.append(
            f"this webinar is over: its last session ended on {ended:%Y-%m-%d}; GoTo may still "
            "take registrations (as late registrants), check the key if that is not what you mean"
        )
    if _by_hand(part.webinar):
        warnings.append(
            "this webinar approves registrants by hand: GoTo e-mails each person the join link "
            "once the organizer approves them (the report says waiting_approval until then)"
        )
    left = part.webinar.places_left if part.webinar else None
    sending = len(prepared.to_send) if prepared else len(plan.registrants)
    if left == 0 and sending:
        warnings.append(
            "this webinar is full: GoTo will refuse every registration; raise its registration "
            "limit in GoTo Webinar first (the run stops at the first refusal, and the same "
            "command continues once there is room)"
        )
    elif left is not None and sending > left:
        people = counted(sending, "person", "people")
        warnings.append(
            f"this webinar has {counted(left, 'place')} left and {people} {are(sending)} to be "
            "sent: GoTo will refuse the rest once it is full; the run then stops, and the same "
            "command continues after the limit is raised"
        )
    unused = tuple(
        header
        for i, header in enumerate(plan.table.headers)
        if header in plan.ignored_headers and i not in report_columns(plan.table.headers)
    )
    near = tuple((header, which) for header, which in plan.near if header in unused)
    return PlanView(
        webinar_key=part.key,
        webinar=part.webinar,
        source=plan.table.describe(),
        header_line=plan.table.header_line,
        rows=len(plan.table.rows),
        problems=plan.problems,
        duplicates=plan.duplicates,
        unused=unused,
        near=near,
        unsent=tuple((plan.table.headers[i], why) for i, why in sorted(plan.unsent.items())),
        mapping=tuple((rule.header, rule.sent_as, rule.plain) for rule in plan.rules),
        resumed=prepared.resumed if prepared else 0,
        found=prepared.found if prepared else 0,
        to_send=len(prepared.to_send) if prepared else None,
        journal=part.journal.path if part.journal else None,
        resuming=part.resuming,
        connection=connection.label if connection else None,
        account=account,
        warnings=tuple(warnings),
        check_calls=_check_calls(part, verify),
        sheet=plan.table.sheet,
        other_sheets=plan.table.other_sheets,
        hidden_rows=plan.table.hidden_rows,
        hidden_sent=plan.table.send_hidden_rows,
    )


def _offline(table: Table, parts: list[_Part], options: Options, listener: Listener) -> Outcome:
    """A dry run without credentials or a webinar: the file alone, without the webinar's form."""
    for part in parts:
        part.plan = validate(part.table)
        listener.plan(_view(part, None))
    return _outcome(table, parts, options, None)


def _outcome(
    table: Table,
    parts: list[_Part],
    options: Options,
    session: ApiSession | None,
    draft: report.Draft | None = None,
) -> Outcome:
    ordered: list[tuple[int, int, RowOutcome]] = []
    problems: list[RowProblem] = []
    for index, part in enumerate(parts):
        plan = part.plan or validate(part.table)  # stopped before the form was read
        unknown = part.registrar.unsettled() if part.registrar else set()
        stopped = None if options.dry_run else pending_stopped("sent", options.again)

        def pending(
            line: int, unknown: set[int] = unknown, stopped: str | None = stopped
        ) -> str | None:
            return UNKNOWN_PENDING if line in unknown else stopped

        results = part.results
        if part.prepared is None and part.journal is not None:
            # stopped before its rows were admitted (a look-up failed): what earlier runs
            # settled is still known, and reported as it stands, join URLs and all
            results = {**part.journal.settled(plan.registrants), **results}
        rows, found = row_outcomes(part.key, plan, results, pending)
        ordered += [(row.line, index, row) for row in rows]
        problems += found
    ordered.sort(key=lambda item: item[:2])
    return Outcome(
        table=table,
        webinars=tuple(_webinar_outcome(part) for part in parts),
        rows=tuple(row for *_, row in ordered),
        stopped=session.stopped if session is not None else None,
        resume_hint=options.resume_hint,
        calls=session.calls if session else 0,
        throttled=session.throttled if session else 0,
        retries=session.retries if session else 0,
        dry_run=options.dry_run,
        problems=tuple(problems),
        draft=draft,
    )


def _webinar_outcome(part: _Part) -> WebinarOutcome:
    prepared = part.prepared
    return WebinarOutcome(
        key=part.key,
        webinar=part.webinar,
        resumed=prepared.resumed if prepared else 0,
        found=prepared.found if prepared else 0,
        to_send=len(prepared.to_send) if prepared else 0,
        journal=part.journal.path if part.journal else None,
        checked=part.checked,
        corrected=part.corrected,
        unlisted=part.unlisted,
        unchecked=part.unchecked,
        retired=part.retired,
    )
