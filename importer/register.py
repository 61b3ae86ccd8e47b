"""Send registrants through a pool of asyncio workers, held just under the API's rate limit.

* The concurrency cap is the number of workers; the rate cap is a :class:`Pacer` that every API
  call passes, creates and registrant-list pages alike: evenly spaced calls just under the
  limit, an ``aiolimiter.AsyncLimiter`` as the ceiling, and an additive-increase /
  multiplicative-decrease slow-down while 429s keep coming.
* Only what is safe is retried: 429, 5xx and connections that failed before the request left,
  with capped exponential back-off and full jitter, honouring ``Retry-After``.
* A create whose answer was lost may have registered the person, and GoTo has no idempotency key:
  such a row is looked up in the webinar's registrant list before it is ever sent again.
* One row's failure never touches another; an answer that makes every further call pointless
  (token refused, webinar gone) stops the run, and rows not yet settled stay pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from aiolimiter import AsyncLimiter

from .client import G2WClient, ListedRegistrant
from .errors import (
    LimitReached,
    OutcomeUnknown,
    RateLimited,
    RequestRejected,
    RunStopped,
    TransientError,
)
from .journal import Journal
from .models import Registrant, Result, Status

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_RATE = 10.0
#: Calls are spaced at this fraction of the rate limit. GoTo does not say how it counts "10 calls
#: a second"; calls evenly spaced 1 % under the limit stay inside it under a token bucket, a fixed
#: window and a sliding window alike, unless network delays bunch them by more than a hundredth
#: of a second, and the rare 429 that follows is retried and slows the pace.
HEADROOM = 0.99
#: 429s less than this many seconds apart are a storm, not jitter
STORM_SECONDS = 5.0


def default_concurrency(rate: float) -> int:
    """Enough workers to keep ``rate`` calls a second going at 2 s per answer."""
    return max(4, min(256, math.ceil(rate * 2)))


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how long in all, one call is tried again."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: seconds of back-off one row may spend in all before it is given up
    max_wait: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the capped exponential step."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. Rows without a result are pending."""

    stopped: RunStopped | None
    calls: int
    throttled: int
    retries: int


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


class Pacer:
    """The rate cap: calls on an evenly spaced schedule, under an ``AsyncLimiter`` ceiling.

    One caller at a time (in arrival order) waits for the next slot of the schedule, spaced
    ``1 / rate`` after the previous *slot*, not after the moment the previous caller woke up, so
    a timer that fires a little late costs nothing. ``AsyncLimiter(limit, 1.0)`` stays as the
    ceiling no call can pass; on its own it would let ``limit`` calls through at once, and such a
    burst puts twice the limit into one second under a fixed or sliding window.

    Additive increase, multiplicative decrease: a 429 slows the schedule (at most once a
    second, so that one burst counts once), each success wins back a fiftieth of the ceiling.
    A lone 429, as network jitter can cause, costs a tenth of the pace; 429s that keep coming
    within a few seconds halve it each time, down to the API's real limit.
    """

    def __init__(self, limit: float) -> None:
        if limit <= 0:
            raise ValueError("the rate limit must be positive")
        self.ceiling = limit * HEADROOM
        self.rate = self.ceiling
        self.floor = min(self.ceiling, 0.5)
        self.limiter = AsyncLimiter(limit, 1.0)
        self._loop = asyncio.get_running_loop()
        self._turn = asyncio.Lock()
        self._last_slot = -math.inf
        self._last_cut = -math.inf

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Wait for this call's slot; False, at once, if ``stop`` is set meanwhile."""
        async with self._turn:
            now = self._loop.time()
            slot = max(now, self._last_slot + 1.0 / self.rate)
            if slot > now and stop is None:
                await asyncio.sleep(slot - now)
            elif slot > now and stop is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), slot - now)
            if stop is not None and stop.is_set():
                return False
            self._last_slot = slot
        await self.limiter.acquire()
        return True

    def throttled(self) -> None:
        """A 429: slow down, by a tenth after a quiet spell and by half while they persist."""
        now = self._loop.time()
        since = now - self._last_cut
        if since < 1.0:
            return
        self._last_cut = now
        self.rate = max(self.floor, self.rate * (0.5 if since < STORM_SECONDS else 0.9))

    def succeeded(self) -> None:
        """A call went through: win back a fiftieth of the ceiling."""
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + self.ceiling / 50)


Page = tuple[list[ListedRegistrant], int | None]


class Directory:
    """The webinar's registrant list by e-mail, fetched (all pages) only when it may be stale."""

    def __init__(
        self, client: G2WClient, call: Callable[[Callable[[], Awaitable[Page]]], Awaitable[Page]]
    ) -> None:
        self._client = client
        self._call = call
        self._by_email: dict[str, ListedRegistrant] = {}
        self._fetched_at = -math.inf
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()

    async def find(self, email_key: str, *, as_of: float) -> ListedRegistrant | None:
        """The registrant with this (case-folded) e-mail, if the list holds it.

        A key, once given, never changes, so a hit in a list read earlier is good; a miss counts
        only in a list read after ``as_of``, and otherwise the list is read again.
        """
        async with self._lock:
            if email_key not in self._by_email and self._fetched_at < as_of:
                await self._refresh()
        return self._by_email.get(email_key)

    async def everyone(self) -> dict[str, ListedRegistrant]:
        """The whole list, read now, by case-folded e-mail."""
        async with self._lock:
            await self._refresh()
        return dict(self._by_email)

    async def _refresh(self) -> None:
        log.debug("reading the webinar's registrant list")
        started = self._loop.time()
        found: dict[str, ListedRegistrant] = {}
        page = seen = 0
        while True:
            entries, total = await self._call(
                functools.partial(self._client.list_registrants_page, page)
            )
            for entry in entries:
                found.setdefault(entry.email.casefold(), entry)
            page, seen = page + 1, seen + len(entries)
            if total is None or not entries or seen >= total:
                break
        self._by_email = found
        self._fetched_at = started


@dataclass
class _Tries:
    """One call's failed attempts so far, and the seconds spent waiting between them."""

    count: int = 0
    waited: float = 0.0


class Registrar:
    """The worker pool and everything its calls share: pacer, registrant list, journal, stop.

    Create it inside the running event loop; every call of the run, the webinar lookup before
    it included, goes through :meth:`call` or :meth:`register` so that the pace and
    ``max_calls`` count them all. With a journal, each person is committed as ``sending``
    before the create call and settled right after the answer.
    """

    def __init__(
        self,
        client: G2WClient,
        *,
        rate: float = DEFAULT_RATE,
        concurrency: int | None = None,
        resend: bool = False,
        policy: RetryPolicy | None = None,
        journal: Journal | None = None,
        max_calls: int | None = None,
        give_up_after: float = 60.0,
        pacer: Pacer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency or default_concurrency(rate)
        self.resend = resend
        self.policy = policy or RetryPolicy()
        self.journal = journal
        self.max_calls = max_calls
        self.give_up_after = give_up_after
        self.rng = rng or random.Random()
        self.calls = 0
        self.throttled = 0
        self.retries = 0
        self.pacer = pacer or Pacer(rate)
        self.directory = Directory(client, self.call)
        self._loop = asyncio.get_running_loop()
        self._last_success = self._loop.time()
        self._stopping = asyncio.Event()
        self._stopped: RunStopped | None = None

    @property
    def stopping(self) -> bool:
        """Whether the run takes no new rows any more."""
        return self._stopping.is_set()

    async def prepare(self, registrants: list[Registrant]) -> Preparation:
        """Sort out who still needs sending, before the first create call.

        Rows the journal holds as settled are not sent again; for the rest the webinar's
        registrant list is read once, so that people already registered (by an earlier run
        whose answer was lost, or by any other channel) are not sent at all.
        """
        if self.journal is None:
            return Preparation(list(registrants), {}, 0, 0)
        admission = self.journal.admit(registrants)
        if not admission.to_send:
            return Preparation([], admission.settled, len(admission.settled), 0)
        listed = {
            email_key: (entry.registrant_key, entry.join_url)
            for email_key, entry in (await self.directory.everyone()).items()
        }
        still, found = self.journal.reconcile(admission.to_send, listed)
        return Preparation(
            still, {**admission.settled, **found}, len(admission.settled), len(found)
        )

    async def run(
        self,
        registrants: Iterable[Registrant],
        on_result: Callable[[Registrant, Result], None],
    ) -> RunOutcome:
        """Register everyone; ``on_result`` hears of each row as soon as it is settled."""
        pending = iter(registrants)
        self._last_success = self._loop.time()

        async def worker() -> None:
            for registrant in pending:
                if self.stopping:
                    return
                result = await self.register(registrant)
                if result is not None:
                    on_result(registrant, result)

        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(worker())
        return self.outcome()

    def outcome(self) -> RunOutcome:
        """How the run stands: why it stopped, if it did, and what it cost."""
        return RunOutcome(self._stopped, self.calls, self.throttled, self.retries)

    def stop(self, reason: RunStopped | None = None) -> None:
        """Take no new rows and start no new attempts; calls under way finish and are recorded.

        ``reason`` says why, unless the run was asked to stop (Ctrl-C).
        """
        if self._stopped is None:
            self._stopped = reason
        self._stopping.set()

    async def register(self, registrant: Registrant) -> Result | None:
        """Register one person, with the journal kept; None when the run stopped first."""
        result = await self._register(registrant)
        if result is not None and self.journal is not None:
            self.journal.settle(registrant, result)
        return result

    async def _register(self, registrant: Registrant) -> Result | None:
        tries = _Tries()
        what = f"row {registrant.line}"
        while True:
            if not await self._slot():
                return None
            if tries.count == 0 and self.journal is not None:
                self.journal.sending(registrant)
            try:
                got = await self.client.create_registrant(registrant, resend=self.resend)
            except RequestRejected as exc:
                return _failed(registrant, f"GoTo refused this row: {exc}")
            except RunStopped as exc:
                self.stop(exc)
                return None
            except OutcomeUnknown as exc:
                log.debug("%s: %s; looking the person up in the registrant list", what, exc)
                settled = await self._reconcile(registrant, Status.REGISTERED)
                if settled is not None:
                    return settled
                error: TransientError = exc
            except TransientError as exc:
                error = exc
            else:
                self._succeeded()
                if got.registrant_key is None:  # a 409 that does not say as whom
                    return await self._reconcile(registrant, Status.ALREADY_REGISTERED) or _failed(
                        registrant,
                        "GoTo says this e-mail is already registered, but it is not in the "
                        "webinar's registrant list; check it in GoTo Webinar",
                    )
                note = (
                    "awaits the organizer's approval in GoTo Webinar"
                    if got.approval == "WAITING"
                    else None
                )
                return Result(registrant.line, got.status, got.registrant_key, got.join_url, note)
            delay = self._retry_delay(error, tries, what)
            if delay is None and self.stopping:
                return None
            if delay is None:
                return _failed(
                    registrant, f"gave up after {tries.count} attempts: {error}", retryable=True
                )
            if await self._pause(delay):
                return None

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent call (a GET) through the pacer, retrying what may pass."""
        tries = _Tries()
        while True:
            if not await self._slot(stopping_too=False):
                assert self._stopped is not None
                raise self._stopped
            try:
                answer = await operation()
            except TransientError as exc:
                delay = self._retry_delay(exc, tries, "reading from the API")
                if delay is None and self._stopped is not None:
                    raise self._stopped from exc
                if delay is None:
                    raise
            else:
                self._succeeded()
                return answer
            await asyncio.sleep(delay)

    async def _slot(self, *, stopping_too: bool = True) -> bool:
        """Wait for the pace to allow a call and count it; False when no call may be made."""
        if not await self.pacer.acquire(self._stopping if stopping_too else None):
            return False
        if self.max_calls is not None and self.calls >= self.max_calls:
            self.stop(LimitReached(f"the run made the {self.max_calls:,} calls --max-calls allows"))
            return False
        self.calls += 1
        return True

    def _succeeded(self) -> None:
        self._last_success = self._loop.time()
        self.pacer.succeeded()

    async def _reconcile(self, registrant: Registrant, status: Status) -> Result | None:
        """Settle a row from the registrant list; None when the person is not in it."""
        try:
            found = await self.directory.find(
                registrant.email_key, as_of=asyncio.get_running_loop().time()
            )
        except RunStopped as exc:
            self.stop(exc)
            return None
        except TransientError as exc:
            return _failed(
                registrant,
                f"the answer was lost and the registrant list could not be read ({exc}); "
                "run again to settle this row",
                retryable=True,
            )
        if found is None:
            return None
        return Result(registrant.line, status, found.registrant_key, found.join_url)

    def _retry_delay(self, error: TransientError, tries: _Tries, what: str) -> float | None:
        """Count a failed attempt; the seconds to wait before the next, or None to give up."""
        tries.count += 1
        if isinstance(error, RateLimited):
            self.throttled += 1
            self.pacer.throttled()
            quiet = self._loop.time() - self._last_success
            if quiet >= self.give_up_after:
                self.stop(
                    LimitReached(
                        f"the API has answered only 429 (too many requests) for {quiet:.0f} s"
                    )
                )
                return None
        if tries.count >= self.policy.attempts:
            return None
        delay = self.policy.backoff(tries.count - 1, self.rng)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if tries.waited + delay > self.policy.max_wait:
            return None
        tries.waited += delay
        self.retries += 1
        log.debug("%s: %s; attempt %d in %.1f s", what, error, tries.count + 1, delay)
        return delay

    async def _pause(self, seconds: float) -> bool:
        """Sleep, waking early if the run stops; True when it stopped."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True


def _failed(registrant: Registrant, error: str, *, retryable: bool = False) -> Result:
    return Result(registrant.line, Status.FAILED, error=error, retryable=retryable)
