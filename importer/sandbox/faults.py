"""How the simulated API misbehaves when asked to: its settings, its rate window, its dice."""

from __future__ import annotations

import collections
import random
from collections.abc import Callable
from dataclasses import dataclass

from importer.goto.oauth import CALLBACK_PORT, redirect_uri
from importer.goto.session import DEFAULT_RATE


@dataclass
class SandboxConfig:
    """How the simulated API behaves. Rates are fractions of calls (0.05 = 5 %)."""

    rate: float = DEFAULT_RATE  #: calls allowed in any one-second window; 0 = no limit
    latency: float = 0.0  #: seconds added to every answer
    #: each answer's added seconds are drawn evenly from ``latency`` ± this (never below 0)
    jitter: float = 0.0
    error_rate: float = 0.0  #: answer 503 with an HTML body
    throttle_rate: float = 0.0  #: answer 429 although the rate is kept
    slow_rate: float = 0.0  #: register, then answer only after ``slow_seconds``
    slow_seconds: float = 60.0
    drop_rate: float = 0.0  #: register, then close the connection without an answer
    dedupe: bool = True  #: False: a repeated e-mail creates a second registrant
    conflict_keys: bool = False  #: a 409 body carries the registrantKey and joinUrl
    token_calls: int | None = None  #: each access token is refused after this many calls
    token_seconds: float = 3600.0  #: the lifetime of tokens issued by the token endpoint
    reject_refresh: bool = False  #: the token endpoint refuses every refresh
    quota: int | None = None  #: registrations allowed before every call gets a quota 403
    seed: int | None = None
    #: access tokens accepted as if issued (for scripts and tests; they do not expire, though
    #: ``token_calls`` holds); any other bearer token must come from the sign-in server
    tokens: tuple[str, ...] = ()
    #: personal access tokens the sign-in server exchanges (``grant_type=personal_access_token``)
    pats: tuple[str, ...] = ()
    #: the redirect URI registered on the OAuth client: authorize refuses any other
    redirect_uri: str = redirect_uri(CALLBACK_PORT)
    #: ``/admin/rest/v1/me`` refuses tokens with only the webinar scope (the identity API does
    #: not); GoTo's answer here is unconfirmed, so the sandbox refuses
    me_refuses: bool = True
    #: the identity API refuses too (the importer then needs --organizer-key)
    identity_refuses: bool = False
    #: register, then answer 504 as GoTo's gateway does after its ~29 s timeout
    gateway_timeout_rate: float = 0.0
    #: each webinar takes at most this many registrants; then 403 "the webinar is full"
    registration_limit: int | None = None
    #: how the registrant list pages: "array" (bare arrays of ``limit``, no total), "data"
    #: (``{data, total}`` with page/limit), "spec" (``{_embedded, page}`` with page/size) or
    #: "plain" (one array of everyone, paging parameters ignored)
    list_style: str = "array"
    #: store no answers to custom questions (as GoTo's basic create does)
    drop_answers: bool = False
    #: the 201 of a create carries the registrant's ``status`` (the spec requires only the key
    #: and the join URL, so by default it does not)
    created_status: bool = False
    #: seconds the sandbox's clock (its ``Date`` headers and registration dates) is ahead of
    #: this computer's (negative: behind)
    clock_skew: float = 0.0


class RateWindow:
    """A sliding one-second window: at most ``rate`` calls in any second (GoTo does not say how
    it counts its limit; a sliding window is the strictest reading)."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self._window: collections.deque[float] = collections.deque()

    def admit(self) -> bool:
        """Count a call; False when it is one too many."""
        if self.config.rate <= 0:
            return True
        now = self.clock()
        window = self._window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= max(1, int(self.config.rate)):
            return False
        window.append(now)
        return True


class Dice:
    """The sandbox's randomness, seeded to repeat a run exactly."""

    def __init__(self, seed: int | None) -> None:
        self.random = random.Random(seed)

    def chance(self, probability: float) -> bool:
        """True with the given probability (never for 0)."""
        return probability > 0 and self.random.random() < probability

    def delay(self, latency: float, jitter: float) -> float:
        """Seconds to hold one answer: ``latency`` ± ``jitter``, evenly spread, never negative."""
        if jitter <= 0:
            return latency
        return max(0.0, latency + self.random.uniform(-jitter, jitter))
