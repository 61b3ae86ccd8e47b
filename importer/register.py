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
    OutcomeUnknown,
    RateLimited,
    RequestRejected,
    RunStopped,
    TransientError,
)
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

    async def acquire(self) -> None:
        """Wait for this call's slot."""
        async with self._turn:
            now = self._loop.time()
            slot = max(now, self._last_slot + 1.0 / self.rate)
            if slot > now:
                await asyncio.sleep(slot - now)
            self._last_slot = slot
        await self.limiter.acquire()

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
    """The worker pool and everything its calls share: pacer, registrant list, stop signal.

    Create it inside the running event loop; every call of the run, the webinar lookup before
    it included, goes through :meth:`call` or :meth:`register` so that the pace counts them all.
    """

    def __init__(
        self,
        client: G2WClient,
        *,
        rate: float = DEFAULT_RATE,
        concurrency: int | None = None,
        resend: bool = False,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.client = client
        self.concurrency = concurrency or default_concurrency(rate)
        self.resend = resend
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.calls = 0
        self.throttled = 0
        self.retries = 0
        self.pacer = Pacer(rate)
        self.directory = Directory(client, self.call)
        self._stopping = asyncio.Event()
        self._stopped: RunStopped | None = None

    async def run(
        self, registrants: Iterable[Registrant], on_result: Callable[[Result], None]
    ) -> RunOutcome:
        """Register everyone; ``on_result`` hears of each row as soon as it is settled."""
        pending = iter(registrants)

        async def worker() -> None:
            for registrant in pending:
                if self._stopping.is_set():
                    return
                result = await self.register(registrant)
                if result is not None:
                    on_result(result)

        async with asyncio.TaskGroup() as group:
            for _ in range(self.concurrency):
                group.create_task(worker())
        return RunOutcome(self._stopped, self.calls, self.throttled, self.retries)

    def stop(self, reason: RunStopped) -> None:
        """Take no new rows; rows not yet settled stay pending."""
        if self._stopped is None:
            self._stopped = reason
        self._stopping.set()

    async def register(self, registrant: Registrant) -> Result | None:
        """Register one person; None when the run stopped before the row was settled."""
        tries = _Tries()
        what = f"row {registrant.line}"
        while True:
            await self.pacer.acquire()
            if self._stopping.is_set():
                return None
            self.calls += 1
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
                self.pacer.succeeded()
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
            if delay is None:
                return _failed(registrant, f"gave up after {tries.count} attempts: {error}")
            if await self._pause(delay):
                return None

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent call (a GET) through the pacer, retrying what may pass."""
        tries = _Tries()
        while True:
            await self.pacer.acquire()
            self.calls += 1
            try:
                return await operation()
            except TransientError as exc:
                delay = self._retry_delay(exc, tries, "reading from the API")
                if delay is None:
                    raise
            await asyncio.sleep(delay)

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
                "check this person in GoTo Webinar before sending again",
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


def _failed(registrant: Registrant, error: str) -> Result:
    return Result(registrant.line, Status.FAILED, error=error)
