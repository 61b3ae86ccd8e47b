"""Register people for one webinar through a pool of asyncio workers, keeping the journal.

* As many workers run as the pace needs with the answer times seen so far
  (:meth:`~importer.session.ApiSession.workers`), never more than ``concurrency``; every call
  goes through the run's :class:`~importer.session.ApiSession`, which paces, retries and stops.
* Each person is committed to the journal as ``sending`` before the create call leaves and
  settled after the answer (in batches: :class:`~importer.journal.Journal`), so a crash at any
  instant leaves an exact record.
* A create whose outcome is unknown (the answer was lost, timed out, or was a 5xx from a gateway
  that may have passed the request on) is *parked*, never re-sent blindly: GoTo has no
  idempotency key. When the queue runs dry, one read of the registrant list settles every parked
  row; only those not in the list are sent again. A 409 that does not say as whom is settled the
  same way.
* One row's failure never touches another; an answer that makes every further call pointless
  stops the session, and rows not yet settled stay pending.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from .client import PAGE_LIMIT, G2WClient, Page, Registration
from .errors import (
    AnswersDropped,
    ApiUnavailable,
    OutcomeUnknown,
    RequestRejected,
    RunStopped,
    ServerError,
    TransientError,
)
from .journal import Journal
from .models import ListedRegistrant, Registrant, Result, Status, email_key
from .session import ApiSession

log = logging.getLogger(__name__)

#: the most pages of the registrant list read at once: 200,000 people, more than a webinar holds
MAX_PAGES = 1000
#: how many people with answers are sent one by one, at most, to find one to read back
VERIFY_TRIES = 5
#: seconds to let a request whose answer was lost reach the API before the list is read
SETTLE_DELAY = 2.0

OnResult = Callable[[Registrant, Result], None]


@dataclass(frozen=True)
class Preparation:
    """Who still needs sending after the journal and the registrant list had their say."""

    to_send: list[Registrant]
    #: rows settled before any create call, by input line
    settled: dict[int, Result]
    #: of those, how many an earlier run had settled
    resumed: int
    #: and how many the registrant list showed as registered already
    found: int


class Directory:
    """The webinar's registrant list by e-mail key, read whole (every page) when asked."""

    def __init__(self, session: ApiSession, client: G2WClient) -> None:
        self._session = session
        self._client = client
        self.known: dict[str, ListedRegistrant] = {}

    async def read(self) -> dict[str, ListedRegistrant]:
        """Everyone registered now, by e-mail key (the first entry of a repeated address).

        Pages are read until the answer's own shape says the list is over: the total of a
        ``{data, total}`` answer, the page count of a ``{_embedded, page}`` one, and for bare
        arrays a page shorter than asked for, or one with nobody new (a server that ignores
        paging sends the same people again). Entries are told apart by registrant key; the
        reading is bounded, and stops with the run.
        """
        log.debug("reading the webinar's registrant list")
        by_key: dict[str, ListedRegistrant] = {}
        style: str | None = None
        page = 0
        for _ in range(MAX_PAGES + 1):
            answer = await self._session.call(
                functools.partial(
                    self._client.list_registrants_page, page, PAGE_LIMIT, style=style
                ),
                what="reading the registrant list",
            )
            if style is None and answer.style == "spec" and answer.size not in (None, PAGE_LIMIT):
                style = "spec"  # it ignored "limit": start again, asking for full pages
                continue
            style = answer.style
            new = [entry for entry in answer.entries if entry.registrant_key not in by_key]
            by_key.update((entry.registrant_key, entry) for entry in new)
            absurd = _absurd(answer.total, answer.pages)
            if absurd is not None:
                self._session.stop(absurd)
                raise absurd
            if _last_page(answer, page, len(by_key), bool(new)):
                break
            page += 1
        else:
            endless = ApiUnavailable(
                f"the registrant list did not end after {MAX_PAGES:,} pages; run again later"
            )
            self._session.stop(endless)  # nobody may be sent again without the whole list
            raise endless
        found: dict[str, ListedRegistrant] = {}
        for entry in by_key.values():
            found.setdefault(email_key(entry.email), entry)
        self.known = found
        return found


def _last_page(answer: Page, page: int, seen: int, anything_new: bool) -> bool:
    """Whether this page of the registrant list is its last."""
    if not answer.entries or not anything_new:
        return True
    if answer.style == "data":
        return len(answer.entries) < PAGE_LIMIT or (
            answer.total is not None and seen >= answer.total
        )
    if answer.style == "spec":
        return answer.pages is None or page + 1 >= answer.pages
    return len(answer.entries) != PAGE_LIMIT  # a bare array: a full page means ask for more


def _absurd(total: int | None, pages: int | None) -> ApiUnavailable | None:
    """Why a list that claims more registrants than any webinar can hold is refused."""
    if (total is not None and total > MAX_PAGES * PAGE_LIMIT) or (pages or 0) > MAX_PAGES:
        return ApiUnavailable(
            f"the registrant list claims {total or pages:,} entries or pages, more than a "
            "webinar holds; run again later, and report it to GoTo if it persists"
        )
    return None


@dataclass
class _Parked:
    """A row waiting for the registrant list: sent with no clear answer, a 409 that does not
    say as whom, or a 201 without a join URL."""

    registrant: Registrant
    #: "unknown": the create may or may not have gone through; "conflict": GoTo said "already
    #: registered"; "created": registered (``key``), but the answer gave no join URL
    kind: str
    error: str = ""
    key: str | None = None


class Registrar:
    """Registers one webinar's people; several registrars may share one session (one pace)."""

    def __init__(
        self,
        session: ApiSession,
        client: G2WClient,
        *,
        journal: Journal | None = None,
        resend: bool = False,
        concurrency: int = 4,
        settle_delay: float = SETTLE_DELAY,
        manual_approval: bool = False,
    ) -> None:
        self.session = session
        self.client = client
        self.journal = journal
        self.resend = resend
        self.concurrency = concurrency
        self.settle_delay = settle_delay
        #: the organizer approves registrants by hand: a new one waits (the spec's 201 does
        #: not say so itself)
        self.manual_approval = manual_approval
        self.directory = Directory(session, client)
        self._attempts: collections.Counter[str] = collections.Counter()
        #: e-mail keys whose create this run sent without learning the outcome
        self._maybe_ours: set[str] = set()
        self._parked: dict[str, _Parked] = {}

    async def prepare(
        self,
        registrants: list[Registrant],
        listed: Mapping[str, ListedRegistrant] | None = None,
    ) -> Preparation:
        """Sort out who still needs sending, before the first create call.

        Rows the journal holds as settled are not sent again. When an earlier run may have
        registered some of the rest without learning it (``sending`` in the journal), the
        webinar's registrant list settles them first (``listed``, when already read), and
        anyone else it shows is not sent either. Otherwise nothing is read: people registered
        by another channel are found by GoTo's 409, and settled from one read of the list once
        the rest are sent.
        """
        if self.journal is None:
            return Preparation(list(registrants), {}, 0, 0)
        admission = self.journal.admit(registrants)
        if listed is None and not admission.unknown:
            settled = admission.settled
            return Preparation(admission.to_send, settled, len(settled), 0)
        if listed is None:
            listed = await self.directory.read()
        else:
            self.directory.known = dict(listed)
        still, found = self.journal.reconcile(admission.to_send, listed)
        return Preparation(
            still, {**admission.settled, **found}, len(admission.settled), len(found)
        )

    async def run(self, registrants: Iterable[Registrant], on_result: OnResult) -> None:
        """Register everyone; ``on_result`` hears of each row as soon as it is settled.

        Returns when every row is settled or the session stopped; rows not settled then are
        pending (their journal state says whether a call for them may have gone through).
        """
        queue = collections.deque(registrants)
        try:
            if any(registrant.responses for registrant in queue):
                await self._answers_kept(queue, on_result)
            while queue and not self.session.stopping:
                await self._drain(queue, on_result)
                if self._parked and not self.session.stopping:
                    try:
                        await self._settle_parked(queue, on_result)
                    except RunStopped:
                        return
        finally:
            self._commit()

    def unsettled(self) -> set[int]:
        """Lines sent without a clear answer and not settled yet: the journal holds them as
        ``sending``, and the next run looks them up before sending again."""
        return {row.registrant.line for row in self._parked.values() if row.kind == "unknown"}

    async def _drain(self, queue: collections.deque[Registrant], on_result: OnResult) -> None:
        """Send everyone in ``queue``; workers are added as the pace needs more, and leave
        when it needs fewer."""
        running = 0

        def wanted() -> int:
            return self.session.workers(self.concurrency)

        async def worker() -> None:
            nonlocal running
            while queue and not self.session.stopping and running <= wanted():
                await self._send(queue.popleft(), on_result)
                hire()
            running -= 1
            if not queue:  # no create is left to commit the answers staged since
                self._commit()

        def hire() -> None:
            nonlocal running
            while running < min(wanted(), len(queue)):
                running += 1
                group.create_task(worker())

        async def stand_in() -> None:
            while True:  # a call waiting to be tried again holds its worker: hire another
                await self.session.backing_off()
                hire()

        standing_in: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as group:
                hire()
                standing_in = asyncio.create_task(stand_in())
        finally:
            if standing_in is not None:
                standing_in.cancel()

    async def _answers_kept(
        self, queue: collections.deque[Registrant], on_result: OnResult
    ) -> None:
        """Send the first people with answers to custom questions one by one until one is
        newly registered, and read that one back: if GoTo kept none of the answers (as its
        "basic" create does), stop before the rest are sent without theirs."""
        for registrant in [r for r in queue if r.responses][:VERIFY_TRIES]:
            if self.session.stopping:
                return
            queue.remove(registrant)
            result = await self._send(registrant, on_result)
            if (
                result is None
                or result.status is not Status.REGISTERED
                or not result.registrant_key
            ):
                continue
            try:
                stored = await self.session.call(
                    functools.partial(self.client.get_registrant, result.registrant_key),
                    what="reading back the first registrant",
                )
            except RunStopped:
                return
            if stored is not None and stored.responses is not None and not stored.responses:
                self.session.stop(
                    AnswersDropped(
                        f"GoTo registered row {registrant.line} but kept none of its answers "
                        "to the webinar's questions; nothing more was sent. Check the "
                        "webinar's registration questions in GoTo Webinar, then run again"
                    )
                )
            return

    async def _send(self, registrant: Registrant, on_result: OnResult) -> Result | None:
        """Send one person; the result once settled, None while it waits for the list or the
        run stopped first."""
        result = await self._create(registrant)
        if result is not None:
            self._settle(registrant, result, on_result)
        return result

    async def _create(self, registrant: Registrant) -> Result | None:
        key = registrant.email_key
        self._attempts[key] += 1
        journal = self.journal
        batch = None
        if journal is not None and self._attempts[key] == 1:
            batch = journal.stage_sending(registrant)

        async def create() -> Registration:
            if journal is not None and batch is not None:
                journal.commit(batch)  # "sending" is on disk before the call leaves
            return await self.client.create_registrant(registrant, resend=self.resend)

        try:
            got = await self.session.call(
                create, what=f"registering row {registrant.line}", create=True
            )
        except RunStopped:
            return None
        except RequestRejected as exc:
            return _failed(registrant, f"GoTo refused this row: {exc}")
        except (OutcomeUnknown, ServerError) as exc:
            log.debug("row %d: %s; parked for the registrant list", registrant.line, exc)
            self._maybe_ours.add(key)
            self._parked[key] = _Parked(registrant, "unknown", str(exc))
            return None
        except TransientError as exc:  # 429s or failed connections until retries ran out
            attempts = self.session.policy.attempts
            return _failed(registrant, f"gave up after {attempts} attempts: {exc}", retryable=True)
        approval = got.approval
        if got.status is Status.ALREADY_REGISTERED and (
            got.registrant_key is None or approval is None
        ):
            # a 409 that does not say as whom, or whether the organizer declined the person:
            # the registrant list says both (one read for all such rows)
            known = self.directory.known.get(key)
            if known is None:
                self._parked[key] = _Parked(registrant, "conflict")
                return None
            got = got.with_keys(known.registrant_key, known.join_url)
            approval = known.status
        elif approval is None and self.manual_approval:
            approval = "WAITING"
        if got.join_url is None and got.registrant_key is not None:
            # registered, but the answer did not carry the join URL: the list has it
            self._maybe_ours.add(key)
            self._parked[key] = _Parked(registrant, "created", key=got.registrant_key)
            return None
        status = got.status
        if status is Status.ALREADY_REGISTERED and key in self._maybe_ours:
            status = Status.REGISTERED  # this run's own earlier attempt went through
        assert got.registrant_key is not None
        return Result.settled(registrant.line, status, got.registrant_key, got.join_url, approval)

    async def _settle_parked(
        self, queue: collections.deque[Registrant], on_result: OnResult
    ) -> None:
        """One read of the registrant list for every parked row; send again who is not in it."""
        self._commit()
        if any(row.kind == "unknown" for row in self._parked.values()):
            await self.session.pause(self.settle_delay)
        listed = await self.directory.read()
        parked, self._parked = self._parked, {}
        for key, row in parked.items():
            registrant = row.registrant
            found = listed.get(key)
            if found is not None:
                ours = key in self._maybe_ours
                status = Status.REGISTERED if ours else Status.ALREADY_REGISTERED
                result = Result.settled(
                    registrant.line, status, found.registrant_key, found.join_url, found.status
                )
                if result.join_url is None and result.status is not Status.DENIED:
                    note = "GoTo gave no join URL for this person; find it in GoTo Webinar"
                    result = replace(result, error=note)
                self._settle(registrant, result, on_result)
            elif row.kind == "created":
                assert row.key is not None
                note = "GoTo gave no join URL for this person; find it in GoTo Webinar"
                result = Result(registrant.line, Status.REGISTERED, row.key, None, note)
                self._settle(registrant, result, on_result)
            elif row.kind == "conflict":
                self._settle(
                    registrant,
                    _failed(
                        registrant,
                        "GoTo says this e-mail is already registered, but it is not in the "
                        "webinar's registrant list; check it in GoTo Webinar",
                    ),
                    on_result,
                )
            elif self._attempts[key] >= self.session.policy.attempts:
                message = f"gave up after {self._attempts[key]} attempts: {row.error}"
                self._settle(registrant, _failed(registrant, message, retryable=True), on_result)
            else:
                queue.append(registrant)  # the list shows the last attempt did not arrive
                self.session.retries += 1

    def _commit(self) -> None:
        if self.journal is not None:
            self.journal.commit()

    def _settle(self, registrant: Registrant, result: Result, on_result: OnResult) -> None:
        if self.journal is not None:
            self.journal.stage_settled(registrant, result)
        on_result(registrant, result)


def _failed(registrant: Registrant, error: str, *, retryable: bool = False) -> Result:
    return Result(registrant.line, Status.FAILED, error=error, retryable=retryable)
