"""Cancel registrations, keeping the journal: the DELETE call on the exactly-once engine
(:mod:`importer.engine.exactly_once`: workers, attempts, parking, settling from the
registrant list), as registering is the create call on it.

* Each person is committed to the journal as ``cancelling`` before the call and settled right
  after the answer, so a kill at any instant leaves an exact record.
* A DELETE is treated like a create: only 429s and connections that failed before the request
  left are retried. A lost answer or a 5xx leaves the outcome unknown; such rows are parked, and
  when the queue runs dry one read of the registrant list settles them all: gone means
  cancelled, still there means the call is made again. Nothing is guessed.
* A 404 means the registration is gone already (an earlier call whose answer was lost went
  through, or it was removed by hand): the person is cancelled.
* A refusal leaves the person registered as before: the journal goes back to the state the
  cancellation started from, and the row fails.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from importer.engine.exactly_once import SETTLE_DELAY, Engine, Parked
from importer.engine.journal import Journal, State
from importer.errors import RequestRejected
from importer.goto.client import G2WClient
from importer.goto.session import ApiSession
from importer.model import Cancellation, ListedRegistrant, email_key


@dataclass(frozen=True)
class Target:
    """One registration to cancel, and the row that asks for it."""

    line: int
    email: str
    registrant_key: str
    join_url: str | None = None
    #: the journal state the person goes back to if the cancellation does not happen:
    #: ``registered`` when this tool registered them
    prior: State = State.ALREADY_REGISTERED

    @property
    def email_key(self) -> str:
        """The e-mail as GoTo compares it."""
        return email_key(self.email)


@dataclass(frozen=True)
class Settled:
    """What became of one target."""

    line: int
    status: Cancellation
    error: str | None = None


OnSettled = Callable[[Target, Settled], None]


class Canceller(Engine[Target, bool, Settled]):
    """Cancels registrations for one webinar through the run's session, one journal write before
    and one after each call; as many workers as the pace needs, at most ``concurrency``."""

    doing = "cancelling"

    def __init__(
        self,
        session: ApiSession,
        client: G2WClient,
        journal: Journal,
        *,
        concurrency: int = 4,
        settle_delay: float = SETTLE_DELAY,
    ) -> None:
        super().__init__(
            session, client, journal, concurrency=concurrency, settle_delay=settle_delay
        )
        self.journal: Journal = journal

    def unsettled(self) -> set[str]:
        """The e-mail keys of the targets whose call went out without a clear answer and are
        not settled yet (by e-mail, not by line: an ``undo`` of the whole journal has people
        from several files, whose lines repeat). The journal holds them as ``cancelling``, and
        the next run settles them from the registrant list."""
        return {target.email_key for target in self._unknown()}

    def _key(self, target: Target) -> str:
        return target.registrant_key

    def _call(self, target: Target, attempt: int) -> Callable[[], Awaitable[bool]]:
        """The DELETE call; the first attempt commits "cancelling" before it leaves."""
        key = target.registrant_key
        if attempt == 1:
            self.journal.cancelling(target.email, target.line, key, target.join_url, target.prior)
        return functools.partial(self.client.delete_registrant, key)

    def _answered(self, target: Target, answer: bool) -> Settled:
        """Cancelled now, or gone already (404): either way no longer registered."""
        return Settled(target.line, Cancellation.CANCELLED)

    def _refused(self, target: Target, error: RequestRejected) -> Settled:
        return Settled(
            target.line, Cancellation.FAILED, f"GoTo refused to cancel this registration: {error}"
        )

    def _gave_up(self, target: Target, note: str) -> Settled:
        return Settled(target.line, Cancellation.FAILED, note)

    async def _listing(self) -> dict[str, ListedRegistrant]:
        """The registrant list by registrant key."""
        listed = await self.directory.read()
        return {entry.registrant_key: entry for entry in listed.values()}

    def _proven(self, row: Parked[Target], found: ListedRegistrant | None) -> Settled | None:
        """Gone from the list means cancelled; still there, the call did not arrive."""
        return Settled(row.item.line, Cancellation.CANCELLED) if found is None else None

    def _settle(self, target: Target, settled: Settled, on_settled: OnSettled) -> None:
        """Commit the outcome: cancelled, or, when the cancellation did not happen, the
        registration stands and the journal goes back to where the cancellation started."""
        if settled.status is Cancellation.CANCELLED:
            self.journal.cancelled(target.email_key)
        else:
            self.journal.kept(target.email_key)
        on_settled(target, settled)
