"""Exactly-once bulk calls over the journal: the engine under registering and cancelling.

GoTo has no idempotency key, so a call that changes a registration (a create, a DELETE) is
made so that nothing is done twice and nothing is guessed:

* As many workers run as the pace needs with the answer times seen so far
  (:meth:`~importer.goto.session.ApiSession.workers`), never more than ``concurrency``; a call
  waiting to be tried again holds its worker, and another is hired meanwhile. Every call goes
  through the run's :class:`~importer.goto.session.ApiSession`, which paces, retries and stops.
* The journal is written on both sides of each call: what the call is about to do
  (``sending``, ``cancelling``) is committed before it leaves, and the item is settled right
  after the answer, so a kill at any instant leaves an exact record.
* Only 429s and connections that failed before the request left are retried. A lost answer or
  a 5xx from a gateway that may have passed the request on leaves the outcome unknown: the item
  is *parked*, never called again blindly. When the queue runs dry, one read of the registrant
  list (:class:`~importer.engine.directory.Directory`) settles every parked item; only
  those the list shows the call did not reach are called again, and after the session's
  attempts they fail as "gave up after N attempts", as an item whose 429s outlast its retries does.
* One item's failure never touches another; an answer that makes every further call pointless
  stops the session, and items not settled then stay as the journal holds them, for the next
  run to settle from the registrant list.

:class:`Engine` is that loop; a subclass says what the call is, what its answer and the list
prove, and how an outcome is recorded in the journal: :class:`importer.engine.registrar.Registrar`
creates registrants, :class:`importer.engine.canceller.Canceller` cancels registrations.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from importer.engine.directory import Directory
from importer.engine.journal import Journal
from importer.errors import (
    OutcomeUnknown,
    RequestRejected,
    RunStopped,
    ServerError,
    TransientError,
)
from importer.goto.client import G2WClient
from importer.goto.session import ApiSession
from importer.model import ListedRegistrant

log = logging.getLogger(__name__)

#: seconds to let a request whose answer was lost reach the API before the list is read
SETTLE_DELAY = 2.0


def gave_up(attempts: int, error: object) -> str:
    """The note of an item given up on: its calls never got through, or never arrived."""
    return f"gave up after {attempts} attempts: {error}"


class Item(Protocol):
    """What the engine calls for: one row of the input."""

    @property
    def line(self) -> int:
        """The row's line in its file."""
        ...


ItemT = TypeVar("ItemT", bound=Item)
#: what the call answers
AnswerT = TypeVar("AnswerT")
#: what becomes of an item, once settled
DoneT = TypeVar("DoneT")

#: the kind of a parked item whose call may or may not have gone through
UNKNOWN = "unknown"


@dataclass
class Parked(Generic[ItemT]):
    """An item waiting for the registrant list."""

    item: ItemT
    #: :data:`UNKNOWN`, or a kind of the subclass's own (what else the list is to say)
    kind: str = UNKNOWN
    #: why the outcome is unknown: the note, should the item be given up on
    error: str = ""
    #: the registrant key an answer gave, if any
    key: str | None = None


class Engine(abc.ABC, Generic[ItemT, AnswerT, DoneT]):
    """Makes one call per item through the run's session, keeping the journal; several
    engines may share one session (one pace)."""

    #: what the call does, for messages: "registering", "cancelling"
    doing = "calling"

    def __init__(
        self,
        session: ApiSession,
        client: G2WClient,
        journal: Journal | None,
        *,
        concurrency: int,
        settle_delay: float,
    ) -> None:
        self.session = session
        self.client = client
        self.journal = journal
        self.concurrency = concurrency
        self.settle_delay = settle_delay
        self.directory = Directory(session, client)
        #: calls made for each item, by :meth:`_key`
        self._attempts: collections.Counter[str] = collections.Counter()
        #: items waiting for the registrant list, by :meth:`_key`
        self._parked: dict[str, Parked[ItemT]] = {}

    # --- what a subclass says ------------------------------------------------------------

    @abc.abstractmethod
    def _key(self, item: ItemT) -> str:
        """What tells items apart, and finds one in :meth:`_listing`."""

    @abc.abstractmethod
    def _call(self, item: ItemT, attempt: int) -> Callable[[], Awaitable[AnswerT]]:
        """The call for ``item`` (``attempt`` counts from 1), for the session to make and
        retry; made only once the journal holds, or will hold before it leaves, that it is
        under way."""

    @abc.abstractmethod
    def _answered(self, item: ItemT, answer: AnswerT) -> DoneT | None:
        """What an answer means; None when it leaves the item parked."""

    @abc.abstractmethod
    def _refused(self, item: ItemT, error: RequestRejected) -> DoneT:
        """What a refusal means (nothing was done)."""

    @abc.abstractmethod
    def _gave_up(self, item: ItemT, note: str) -> DoneT:
        """An item given up on, with its :func:`gave_up` note (nothing was done)."""

    @abc.abstractmethod
    async def _listing(self) -> Mapping[str, ListedRegistrant]:
        """One read of the registrant list, by :meth:`_key`."""

    @abc.abstractmethod
    def _proven(self, row: Parked[ItemT], found: ListedRegistrant | None) -> DoneT | None:
        """What the registrant list proves of a parked item (``found`` is its entry); None
        when it shows that the last call did not arrive."""

    @abc.abstractmethod
    def _settle(self, item: ItemT, done: DoneT, on_done: Callable[[ItemT, DoneT], None]) -> None:
        """Record the outcome in the journal, then tell ``on_done``."""

    async def _start(
        self, queue: collections.deque[ItemT], on_done: Callable[[ItemT, DoneT], None]
    ) -> None:
        """What comes before the workers start (nothing, unless a subclass says)."""

    def _finish(self) -> None:
        """What comes once the run returns, however it ends: the journal is committed."""
        self._commit()

    # --- the engine ----------------------------------------------------------------------

    async def run(self, items: Iterable[ItemT], on_done: Callable[[ItemT, DoneT], None]) -> None:
        """Call for every item; ``on_done`` hears of each as soon as it is settled.

        Returns when every item is settled or the session stopped; items not settled then
        stay as the journal holds them (their state says whether a call may have gone
        through), and the next run settles them from the registrant list.
        """
        queue = collections.deque(items)
        try:
            await self._start(queue, on_done)
            while queue and not self.session.stopping:
                await self._drain(queue, on_done)
                if self._parked and not self.session.stopping:
                    try:
                        await self._settle_parked(queue, on_done)
                    except RunStopped:
                        return
        finally:
            self._finish()

    def _unknown(self) -> list[ItemT]:
        """The items whose call went out without a clear answer, not settled yet."""
        return [row.item for row in self._parked.values() if row.kind == UNKNOWN]

    async def _drain(
        self, queue: collections.deque[ItemT], on_done: Callable[[ItemT, DoneT], None]
    ) -> None:
        """Call for everyone in ``queue``; workers are added as the pace needs more, and leave
        when it needs fewer."""
        running = 0

        def wanted() -> int:
            return self.session.workers(self.concurrency)

        async def worker() -> None:
            nonlocal running
            while queue and not self.session.stopping and running <= wanted():
                await self._send(queue.popleft(), on_done)
                hire()
            running -= 1
            if not queue:  # no call is left to commit the outcomes staged since
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

    async def _send(self, item: ItemT, on_done: Callable[[ItemT, DoneT], None]) -> DoneT | None:
        """Call for one item; its outcome once settled, None while it waits for the list or
        the run stopped first."""
        done = await self._attempt(item)
        if done is not None:
            self._settle(item, done, on_done)
        return done

    async def _attempt(self, item: ItemT) -> DoneT | None:
        """Make the call once (with the session's retries); what it proved, None when the
        item is parked or the run stopped first."""
        key = self._key(item)
        self._attempts[key] += 1
        call = self._call(item, self._attempts[key])
        try:
            answer = await self.session.call(
                call, what=f"{self.doing} row {item.line}", create=True
            )
        except RunStopped:
            return None
        except RequestRejected as exc:
            return self._refused(item, exc)
        except (OutcomeUnknown, ServerError) as exc:
            self._park_unknown(item, str(exc))
            return None
        except TransientError as exc:  # 429s or failed connections until retries ran out
            return self._gave_up(item, gave_up(self.session.policy.attempts, exc))
        return self._answered(item, answer)

    def _park_unknown(self, item: ItemT, why: str) -> None:
        """Set an item aside for the registrant list: its call may or may not have gone
        through."""
        log.debug("row %d: %s; parked for the registrant list", item.line, why)
        self._parked[self._key(item)] = Parked(item, UNKNOWN, why)

    async def _settle_parked(
        self, queue: collections.deque[ItemT], on_done: Callable[[ItemT, DoneT], None]
    ) -> None:
        """One read of the registrant list for every parked item; call again for those it
        shows the last call did not reach."""
        self._commit()
        if any(row.kind == UNKNOWN for row in self._parked.values()):
            await self.session.pause(self.settle_delay)
        listed = await self._listing()
        parked, self._parked = self._parked, {}
        for key, row in parked.items():
            done = self._proven(row, listed.get(key))
            if done is not None:
                self._settle(row.item, done, on_done)
            elif self._attempts[key] >= self.session.policy.attempts:
                note = gave_up(self._attempts[key], row.error)
                self._settle(row.item, self._gave_up(row.item, note), on_done)
            else:
                queue.append(row.item)  # the list shows the last call did not arrive
                self.session.retries += 1

    def _commit(self) -> None:
        """Commit the journal's staged writes; one that cannot be written stops the run."""
        if self.journal is None:
            return
        try:
            self.journal.commit()
        except RunStopped as exc:  # the journal could not be written: nothing more is sent
            self.session.stop(exc)
            raise
