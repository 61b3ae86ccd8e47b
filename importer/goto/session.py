"""Every API call of a run goes through one :class:`ApiSession`: pace, retries, budget, stop.

* The pace is a :class:`Pacer`: calls on an evenly spaced schedule just under the rate limit,
  an ``aiolimiter.AsyncLimiter`` as the ceiling, and an additive-increase /
  multiplicative-decrease slow-down while 429s keep coming.
* One retry loop, :meth:`ApiSession.call`, serves every call. Reads are retried on 429, 5xx and
  connection failures; a create only on 429 and on connections that failed before the request
  left. Any other failure of a create leaves its outcome unknown, and the caller settles it from
  the registrant list (GoTo has no idempotency key). Back-off is capped exponential with full
  jitter, and ``Retry-After`` is honoured.
* The API answering only 429s, 5xx or nothing at all for ``give_up_after`` seconds stops the
  run resumably, as do ``max_calls`` and an answer that makes every further call pointless.
* How many calls need to be under way to keep the pace follows from Little's law: the rate
  times the time an answer takes (a moving average of the answers seen), with a margin for
  answers slower than the average; :meth:`ApiSession.workers` says how many, as it changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from importer.errors import (
    ApiUnavailable,
    ConnectFailed,
    Interrupted,
    LimitReached,
    RateLimited,
    RunStopped,
    TransientError,
)
from importer.text import counted

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

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
#: calls kept under way beyond the rate times the average answer time: a share of it, and a few
#: more, so that answers slower than the average do not leave a slot of the pace unused
MARGIN = 1.5
SPARE = 2
#: the weight of each new answer time in the moving average
LATENCY_WEIGHT = 0.125
#: attempts of a call the run can do without (``optional``) before it is given up
OPTIONAL_ATTEMPTS = 2
#: the answer time assumed before the first answer
FIRST_LATENCY = 1.0


def default_concurrency(rate: float) -> int:
    """The most calls under way by default: enough to keep ``rate`` calls a second going at
    2 s per answer."""
    return max(4, min(256, math.ceil(rate * 2)))


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how long in all, one call is tried again."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    #: seconds of back-off one call may spend in all before it is given up
    max_wait: float = 300.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the capped exponential step."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**attempt))


class Pacer:
    """The rate cap: calls on an evenly spaced schedule, under an ``AsyncLimiter`` ceiling.

    Callers wait in line (in arrival order) for the slots of the schedule, each spaced
    ``1 / rate`` after the previous *slot*, not after the moment its timer fired, so a timer
    that fires a little late costs nothing; one timer at a time hands out the next slot.
    ``AsyncLimiter(limit, 1.0)`` stays as the ceiling no call can pass; on its own it would let
    ``limit`` calls through at once, and such a burst puts twice the limit into one second
    under a fixed or sliding window.

    Additive increase, multiplicative decrease: a 429 slows the schedule (at most once a
    second, so that one burst counts once), each success wins back a fiftieth of the ceiling.
    A lone 429, as network jitter can cause, costs a tenth of the pace; 429s that keep coming
    within a few seconds halve it each time, down to the API's real limit.
    """

    def __init__(self, limit: float) -> None:
        from aiolimiter import AsyncLimiter

        if limit <= 0:
            raise ValueError("the rate limit must be positive")
        self.ceiling = limit * HEADROOM
        self.rate = self.ceiling
        self.floor = min(self.ceiling, 0.5)
        # aiolimiter's capacity is max_rate: below one call a second, a period of several
        # seconds holds one call
        self.limiter: AsyncLimiter = (
            AsyncLimiter(limit, 1.0) if limit >= 1 else AsyncLimiter(1, 1.0 / limit)
        )
        self._loop = asyncio.get_running_loop()
        #: callers waiting for a slot, in arrival order, and the timer of the next slot
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._last_slot = -math.inf
        self._last_cut = -math.inf
        #: 429s keep coming: the pace was halved and has not been won back since
        self.storm = False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait for this call's slot; False, at once, if ``stop`` is set meanwhile."""
        if stop.is_set():
            return False
        turn: asyncio.Future[None] = self._loop.create_future()
        self._queue.append(turn)
        if self._timer is None:
            self._next()
        await turn  # cancelled while waiting, it is passed over; its slot, if given, is lost
        if stop.is_set():
            return False
        await self.limiter.acquire()
        return True

    def wake(self) -> None:
        """End every wait for a slot at once (the run stops: ``acquire`` checks why)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)

    def _next(self) -> None:
        """Give the first caller in line its slot now, or set a timer for it."""
        now = self._loop.time()
        slot = max(now, self._last_slot + 1.0 / self.rate)
        if slot <= now:
            self._grant(slot)
        else:
            self._timer = self._loop.call_at(slot, self._grant, slot)

    def _grant(self, slot: float) -> None:
        """``slot`` has come: the first caller still waiting takes it; then the next slot is
        spaced from this one as scheduled, not from the moment its timer fired, so a timer that
        fires late costs nothing."""
        self._timer = None
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                self._last_slot = slot
                turn.set_result(None)
                break
        if self._queue:
            self._next()

    def throttled(self) -> None:
        """A 429: slow down, by a tenth after a quiet spell and by half while they persist."""
        now = self._loop.time()
        since = now - self._last_cut
        if since < 1.0:
            return
        self._last_cut = now
        self.storm = self.storm or since < STORM_SECONDS
        self.rate = max(self.floor, self.rate * (0.5 if since < STORM_SECONDS else 0.9))

    def succeeded(self) -> None:
        """A call went through: win back a fiftieth of the ceiling."""
        if self.rate < self.ceiling:
            self.rate = min(self.ceiling, self.rate + self.ceiling / 50)
            self.storm = self.storm and self.rate < self.ceiling


class ApiSession:
    """The pace, the retry policy, the call budget and the stop that every call of a run shares.

    Create it inside the running event loop. Once stopped (Ctrl-C, a quota, a refused token,
    the API gone) it starts no call and no attempt: :meth:`call` raises the reason, a
    :class:`RunStopped`, and calls already under way finish and are recorded by their callers.
    """

    def __init__(
        self,
        *,
        rate: float = DEFAULT_RATE,
        policy: RetryPolicy | None = None,
        max_calls: int | None = None,
        give_up_after: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.pacer = Pacer(rate)
        self.policy = policy or RetryPolicy()
        self.max_calls = max_calls
        self.give_up_after = give_up_after
        self.rng = rng or random.Random()
        self.calls = 0
        self.throttled = 0
        self.retries = 0
        #: the moving average of the seconds from a call leaving to its answer
        self.latency = FIRST_LATENCY
        self._answers = 0
        #: calls waiting to be tried again, and a signal each time one starts to
        self._backing_off = 0
        self._backed_off = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._last_success = self._loop.time()
        #: whether every failure since the last success was a 429
        self._only_429 = True
        self._stopping = asyncio.Event()
        self._stopped: RunStopped | None = None

    @property
    def stopping(self) -> bool:
        """Whether the run takes no new calls any more."""
        return self._stopping.is_set()

    @property
    def stopped(self) -> RunStopped | None:
        """Why the run stopped, once it has."""
        return self._stopped

    def workers(self, most: int) -> int:
        """How many workers to keep, at least one and at most ``most``: the pace times the
        average answer time (Little's law), with a margin, and one more for each call that
        waits to be tried again. While 429s keep coming, ``most``: the few calls the API lets
        through are then spread over many rows, so that no row runs out of attempts before
        the storm ends or the run gives up."""
        if self.pacer.storm:
            return most
        needed = math.ceil(self.pacer.rate * self.latency * MARGIN) + SPARE + self._backing_off
        return max(1, min(most, needed))

    async def backing_off(self) -> None:
        """Wait until a call starts waiting to be tried again (its worker is then held up)."""
        await self._backed_off.wait()
        self._backed_off.clear()

    def stop(self, reason: RunStopped | None = None) -> None:
        """Start no new call or attempt; calls under way finish. The first reason stands."""
        if self._stopped is None:
            self._stopped = reason or Interrupted()
        self._stopping.set()
        self.pacer.wake()

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        what: str,
        create: bool = False,
        optional: bool = False,
    ) -> T:
        """Make one API call through the pace, retrying what is safe to retry.

        ``what`` names the call in messages ("reading the webinar"). Raises
        :class:`RunStopped` once the run stops. A ``create`` raises any failure whose outcome
        is unknown (:class:`~importer.errors.OutcomeUnknown`, a 5xx) at once, for the caller to
        settle from the registrant list, and its last 429 or connection failure when retries
        run out. A read that keeps failing stops the run: :class:`ApiUnavailable`. An
        ``optional`` call (one the run can do without) raises such a stop, or its own, without
        stopping the run.
        """
        tries = 0
        waited = 0.0
        while True:
            await self._slot()
            left = self._loop.time()
            try:
                answer = await operation()
            except RunStopped as exc:
                if not optional:
                    self.stop(exc)
                raise
            except TransientError as exc:
                self._answered(left)
                if create and not isinstance(exc, RateLimited | ConnectFailed):
                    self._failed(exc)
                    raise
                tries += 1
                delay = self._retry_delay(exc, tries, waited, what)
                if optional and tries >= OPTIONAL_ATTEMPTS:
                    delay = None  # a call the run can do without is not worth a long wait
                if delay is None:
                    if self._stopped is None and create:
                        raise
                    if self._stopped is None and optional:
                        raise _unavailable(exc, f"{what} failed {counted(tries, 'time')}") from exc
                    if self._stopped is None:
                        self.stop(_unavailable(exc, f"{what} failed {counted(tries, 'time')}"))
                    assert self._stopped is not None
                    raise self._stopped from exc
                waited += delay
            else:
                self._answered(left)
                self._last_success = self._loop.time()
                self._only_429 = True
                self.pacer.succeeded()
                return answer
            self._backing_off += 1
            self._backed_off.set()
            try:
                await self.pause(delay)
            finally:
                self._backing_off -= 1

    async def pause(self, seconds: float) -> None:
        """Sleep, waking early if the run stops (and then raising why)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        if self._stopped is not None:
            raise self._stopped

    def _answered(self, left: float) -> None:
        """Count the time a call took into the moving average (the first answer sets it)."""
        took = self._loop.time() - left
        weight = LATENCY_WEIGHT if self._answers else 1.0
        self.latency += weight * (took - self.latency)
        self._answers += 1

    async def _slot(self) -> None:
        """Wait for the pace to allow a call and count it; raise when no call may be made."""
        if self._stopped is None:
            await self.pacer.acquire(self._stopping)
        if self._stopped is None and self.max_calls is not None and self.calls >= self.max_calls:
            self.stop(
                LimitReached(
                    f"the run made the {counted(self.max_calls, 'call')} --max-calls allows"
                )
            )
        if self._stopped is not None:
            raise self._stopped
        self.calls += 1

    def _failed(self, error: TransientError) -> None:
        """Count a failure towards giving up on the API altogether."""
        if isinstance(error, RateLimited):
            self.throttled += 1
            self.pacer.throttled()
        else:
            self._only_429 = False
        quiet = self._loop.time() - self._last_success
        if quiet >= self.give_up_after:
            if self._only_429:
                self.stop(
                    LimitReached(
                        f"the API has answered only 429 (too many requests) for {quiet:.0f} s"
                    )
                )
            else:
                self.stop(_unavailable(error, f"nothing but errors for {quiet:.0f} s"))

    def _retry_delay(
        self, error: TransientError, tries: int, waited: float, what: str
    ) -> float | None:
        """The seconds to wait before the next attempt, or None to give up."""
        self._failed(error)
        if self._stopped is not None or tries >= self.policy.attempts:
            return None
        delay = self.policy.backoff(tries - 1, self.rng)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if waited + delay > self.policy.max_wait:
            return None
        self.retries += 1
        log.debug("%s: %s; attempt %d in %.1f s", what, error, tries + 1, delay)
        return delay


def _unavailable(error: TransientError, detail: str) -> RunStopped:
    """The stop for an API that keeps failing: 429s stay a limit, the rest is unavailability."""
    if isinstance(error, RateLimited):
        return LimitReached(f"the API kept answering 429 (too many requests): {detail}")
    return ApiUnavailable(f"the API is unavailable: {detail} (last: {error})")
