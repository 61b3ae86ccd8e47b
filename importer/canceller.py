"""Cancel registrations through a pool of asyncio workers, keeping the journal.

The same pattern as registering (``register.py``), for the DELETE call:

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

import asyncio
import collections
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .client import G2WClient
from .errors import OutcomeUnknown, RequestRejected, RunStopped, ServerError, TransientError
from .journal import Journal, State
from .models import Cancellation, email_key
from .register import SETTLE_DELAY, Directory
from .session import ApiSession

log = logging.getLogger(__name__)


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


class Canceller:
    """Cancels registrations for one webinar through the run's session, one journal write before
    and one after each call."""

    def __init__(
        self,
        session: ApiSession,
        client: G2WClient,
        journal: Journal,
        *,
        concurrency: int = 4,
        settle_delay: float = SETTLE_DELAY,
    ) -> None:
        self.session = session
        self.client = client
        self.journal = journal
        self.concurrency = concurrency
        self.settle_delay = settle_delay
        self.directory = Directory(session, client)
        self._attempts: collections.Counter[str] = collections.Counter()
        #: calls without a clear answer, by registrant key, with the reason
        self._parked: dict[str, tuple[Target, str]] = {}

    async def run(self, targets: Iterable[Target], on_settled: OnSettled) -> None:
        """Cancel every target; ``on_settled`` hears of each as soon as it is settled.

        Returns when all are settled or the session stopped; those not settled then stay
        ``cancelling`` in the journal, and the next run settles them from the registrant list.
        """
        queue = collections.deque(targets)
        while queue and not self.session.stopping:
            await self._drain(queue, on_settled)
            if self._parked and not self.session.stopping:
                try:
                    await self._settle_parked(queue, on_settled)
                except RunStopped:
                    return

    def unsettled(self) -> set[str]:
        """The e-mail keys of the targets whose call went out without a clear answer and are
        not settled yet (by e-mail, not by line: an ``undo`` of the whole journal has people
        from several files, whose lines repeat)."""
        return {target.email_key for target, _ in self._parked.values()}

    async def _drain(self, queue: collections.deque[Target], on_settled: OnSettled) -> None:
        async def worker() -> None:
            while queue and not self.session.stopping:
                await self._send(queue.popleft(), on_settled)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(self.concurrency, len(queue))):
                group.create_task(worker())

    async def _send(self, target: Target, on_settled: OnSettled) -> None:
        key = target.registrant_key
        self._attempts[key] += 1
        if self._attempts[key] == 1:
            self.journal.cancelling(target.email, target.line, key, target.join_url, target.prior)
        try:
            await self.session.call(
                functools.partial(self.client.delete_registrant, key),
                what=f"cancelling row {target.line}",
                create=True,
            )
        except RunStopped:
            return
        except RequestRejected as exc:
            self._keep(target, f"GoTo refused to cancel this registration: {exc}", on_settled)
        except (OutcomeUnknown, ServerError) as exc:
            log.debug("row %d: %s; parked for the registrant list", target.line, exc)
            self._parked[key] = (target, str(exc))
        except TransientError as exc:  # 429s or failed connections until retries ran out
            attempts = self.session.policy.attempts
            self._keep(target, f"gave up after {attempts} attempts: {exc}", on_settled)
        else:  # cancelled now, or gone already (404): either way no longer registered
            self._cancelled(target, on_settled)

    async def _settle_parked(self, queue: collections.deque[Target], on_settled: OnSettled) -> None:
        """One read of the registrant list for every parked row; call again for who is in it."""
        await self.session.pause(self.settle_delay)
        listed = {entry.registrant_key for entry in (await self.directory.read()).values()}
        parked, self._parked = self._parked, {}
        for key, (target, error) in parked.items():
            if key not in listed:
                self._cancelled(target, on_settled)
            elif self._attempts[key] >= self.session.policy.attempts:
                message = f"gave up after {self._attempts[key]} attempts: {error}"
                self._keep(target, message, on_settled)
            else:
                queue.append(target)  # the list shows the last call did not arrive
                self.session.retries += 1

    def _cancelled(self, target: Target, on_settled: OnSettled) -> None:
        self.journal.cancelled(target.email_key)
        on_settled(target, Settled(target.line, Cancellation.CANCELLED))

    def _keep(self, target: Target, error: str, on_settled: OnSettled) -> None:
        """The registration stands: the journal goes back to where the cancellation started."""
        self.journal.kept(target.email_key)
        on_settled(target, Settled(target.line, Cancellation.FAILED, error))
