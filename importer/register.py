"""Send registrants through a pool of asyncio workers, held just under the API's rate limit.

* The concurrency cap is the number of workers; the rate cap is an ``aiolimiter.AsyncLimiter``
  that every API call passes, creates and registrant-list pages alike. On top of it an
  additive-increase/multiplicative-decrease gate slows the pool while 429s keep coming.
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

DEFAULT_RATE = 10.0
#: Calls are spaced at this fraction of the rate limit. GoTo does not say how it counts "10 calls
#: a second"; evenly spaced calls just under the limit stay inside it under a token bucket, a
#: fixed window and a sliding window alike, even when network delays bunch a few together.
HEADROOM = 0.97


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
    """The rate cap: an ``AsyncLimiter`` at the ceiling, and an AIMD gate below it after 429s.

    The limiter holds a bucket of one call, so calls are evenly spaced: the burst of a full
    second's calls that a larger bucket allows would, under a fixed or sliding window, put up to
    twice the limit into one second.
    """

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.ceiling = rate * HEADROOM
        self.rate = self.ceiling
        self.floor = min(self.ceiling, 0.5)
        self.limiter = AsyncLimiter(1, 1.0 / self.ceiling)
        self._loop = asyncio.get_running_loop()
        self._next_slot = 0.0
        self._last_cut = -math.inf

    async def acquire(self) -> None:
        """Wait for this call's turn."""
        if self.rate < self.ceiling:
            now = self._loop.time()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.rate
            if slot > now:
                await asyncio.sleep(slot - now)
        await self.limiter.acquire()

    def throttled(self) -> None:
        """A 429: halve the rate, once per second at most (one burst is one event)."""
        now = self._loop.time()
        if now - self._last_cut >= 1.0:
            self._last_cut = now
            self.rate = max(self.floor, self.rate / 2)

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


class Registrar:
    """One run of the worker pool over a list of registrants."""

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
        self.rate = rate
        self.concurrency = concurrency or default_concurrency(rate)
        self.resend = resend
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.calls = 0
        self.throttled = 0
        self.retries = 0
        self._stopped: RunStopped | None = None

    async def run(
        self, registrants: Iterable[Registrant], on_result: Callable[[Result], None]
    ) -> RunOutcome:
        """Register everyone; ``on_result`` hears of each row as soon as it is settled."""
        self.pacer = Pacer(self.rate)
        self.directory = Directory(self.client, self.call)
        self._stopping = asyncio.Event()
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
        attempt, waited = 0, 0.0
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
                settled = await self._reconcile(registrant, Status.REGISTERED)
                if settled is not None:
                    return settled
                error: TransientError = exc
            except TransientError as exc:
                if isinstance(exc, RateLimited):
                    self.throttled += 1
                    self.pacer.throttled()
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
            delay = self._delay(error, attempt, waited)
            if delay is None:
                return _failed(registrant, f"gave up after {attempt + 1} attempts: {error}")
            attempt, waited = attempt + 1, waited + delay
            self.retries += 1
            if await self._pause(delay):
                return None

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run an idempotent call (a GET) through the pacer, retrying what may pass."""
        attempt, waited = 0, 0.0
        while True:
            await self.pacer.acquire()
            self.calls += 1
            try:
                return await operation()
            except TransientError as exc:
                if isinstance(exc, RateLimited):
                    self.throttled += 1
                    self.pacer.throttled()
                delay = self._delay(exc, attempt, waited)
                if delay is None:
                    raise
            attempt, waited = attempt + 1, waited + delay
            self.retries += 1
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

    def _delay(self, error: TransientError, attempt: int, waited: float) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if attempt + 1 >= self.policy.attempts:
            return None
        delay = self.policy.backoff(attempt, self.rng)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if waited + delay > self.policy.max_wait:
            return None
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
