"""Retries, the circuit breaker, timeouts and the per-round deadline (ours on purpose).

Pure: the clock, the sleep (via the clock) and the jitter RNG are injected, so every
test runs in virtual time. Only transient failures are retried (`PlannerError.transient`:
connect/read timeout, 429 honouring Retry-After, 5xx, an error reported mid-stream);
other 4xx and non-HTTP failures are not.

Breaker: closed -> open after LLM_BREAKER_THRESHOLD consecutive failures, or when at
least BREAKER_MIN_CALLS of the last BREAKER_WINDOW calls are recorded and half or more
of them failed (the minimum keeps two early failures out of three from tripping it).
Open for a cooldown, then half-open lets exactly one probe through: its success closes
the breaker (with a fresh window), its failure re-opens it for another cooldown.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from planner.clock import Clock
from planner.errors import (
    BackendHTTPStatus,
    CircuitOpen,
    MalformedResponse,
    PlannerError,
    ResponseTooLarge,
)

T = TypeVar("T")


# --------------------------------------------------------------------------- timeouts


@dataclass(frozen=True)
class Timeouts:
    request_ms: float = 10_000.0
    """Per-request timeout (LLM_TIMEOUT_MS; see planner/config.py): connect + whole response."""
    connect_ms: float = 2_000.0
    """Connect timeout (LLM_CONNECT_TIMEOUT_MS), never more than request_ms."""

    @property
    def request_s(self) -> float:
        return self.request_ms / 1000

    @property
    def connect_s(self) -> float:
        return self.connect_ms / 1000


# --------------------------------------------------------------------------- deadline


@dataclass(frozen=True)
class RoundDeadline:
    """A planning round's budget: `budget_ms` from `start` (None: no deadline)."""

    start: float
    budget_ms: float | None

    @property
    def at(self) -> float | None:
        return None if self.budget_ms is None else self.start + self.budget_ms / 1000

    def remaining(self, now: float) -> float:
        """Seconds left (never negative; inf without a budget): for anyio.fail_after."""
        at = self.at
        return math.inf if at is None else max(0.0, at - now)

    def expired(self, now: float) -> bool:
        at = self.at
        return at is not None and now >= at

    def cap(self, seconds: float, now: float) -> float:
        """A per-request timeout shortened so it never outlives the round."""
        return min(seconds, self.remaining(now))


def remaining_budget(start: float, budget_ms: float | None, now: float) -> float:
    return RoundDeadline(start, budget_ms).remaining(now)


# --------------------------------------------------------------------------- retry


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, PlannerError) and exc.transient


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    """Attempts in all, the first included (LLM_RETRY_MAX)."""
    base_s: float = 0.050
    cap_s: float = 2.0
    """Largest backoff before jitter (Retry-After may ask for longer)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError("need max_attempts >= 1 and 0 <= base_s <= cap_s")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Sleep after failed attempt number `attempt` (1-based): equal jitter, so the
        delay is in [d/2, d] with d = min(cap, base * 2**(attempt-1)); never zero."""
        d = min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))
        return d / 2 + rng.uniform(0, d / 2)

    def delay(self, attempt: int, exc: BaseException, rng: random.Random) -> float:
        """Backoff, or the server's Retry-After when it asks for longer."""
        wait = self.backoff(attempt, rng)
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(exc, BackendHTTPStatus) and retry_after is not None:
            wait = max(wait, float(retry_after))
        return wait


# --------------------------------------------------------------------------- breaker


class BreakerState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


BREAKER_WINDOW = 20
BREAKER_MIN_CALLS = 10
BREAKER_RATIO = 0.5


class CircuitBreaker:
    def __init__(
        self,
        clock: Clock,
        *,
        threshold: int = 5,
        cooldown_s: float = 5.0,
        window: int = BREAKER_WINDOW,
        min_calls: int = BREAKER_MIN_CALLS,
        ratio: float = BREAKER_RATIO,
    ) -> None:
        if threshold < 1 or window < 1 or not 0 < ratio <= 1 or cooldown_s < 0:
            raise ValueError("bad breaker settings")
        self._clock = clock
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.min_calls = min(min_calls, window)
        self.ratio = ratio
        self._window: deque[bool] = deque(maxlen=window)
        """Recent outcomes while closed: True = failure."""
        self._consecutive = 0
        self._state = BreakerState.closed
        self._opened_at = 0.0
        self._probe_out = False
        self.openings = 0

    @property
    def state(self) -> BreakerState:
        """Current state; an open breaker whose cooldown passed reads as half-open."""
        if (
            self._state == BreakerState.open
            and self._clock.now() >= self._opened_at + self.cooldown_s
        ):
            self._state = BreakerState.half_open
            self._probe_out = False
        return self._state

    @property
    def failure_ratio(self) -> float:
        return sum(self._window) / len(self._window) if self._window else 0.0

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state != BreakerState.open:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_s - self._clock.now())

    def allow(self) -> bool:
        """May a request go out now? Half-open admits exactly one probe until it reports."""
        state = self.state
        if state == BreakerState.closed:
            return True
        if state == BreakerState.half_open and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def record_success(self) -> None:
        state = self.state
        if state == BreakerState.half_open:
            self._close()
        elif state == BreakerState.closed:
            self._consecutive = 0
            self._window.append(False)
        # Open: a straggler that started before the breaker opened; it changes nothing.

    def record_failure(self) -> None:
        state = self.state
        if state == BreakerState.half_open:
            self._open()
        elif state == BreakerState.closed:
            self._consecutive += 1
            self._window.append(True)
            by_ratio = len(self._window) >= self.min_calls and self.failure_ratio >= self.ratio
            if self._consecutive >= self.threshold or by_ratio:
                self._open()

    def abandon(self) -> None:
        """The call that was let through ended without a verdict (cancelled): a half-open
        breaker may send another probe."""
        self._probe_out = False

    def _open(self) -> None:
        self._state = BreakerState.open
        self._opened_at = self._clock.now()
        self._probe_out = False
        self.openings += 1

    def _close(self) -> None:
        self._state = BreakerState.closed
        self._window.clear()
        self._consecutive = 0
        self._probe_out = False


def counts_against_breaker(exc: PlannerError) -> bool:
    """Server-health failures trip the breaker; a too-long answer, or one whose bytes
    are not text, is the model's doing."""
    return not isinstance(exc, ResponseTooLarge | MalformedResponse | CircuitOpen)


# --------------------------------------------------------------------------- retry loop

OnRetry = Callable[[int, PlannerError, float], None]
"""Called before each backoff sleep: (failed attempt number, its error, sleep seconds)."""


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    breaker: CircuitBreaker | None,
    clock: Clock,
    rng: random.Random,
    on_retry: OnRetry | None = None,
    deadline: RoundDeadline | None = None,
    failed: Callable[[T], PlannerError | None] | None = None,
) -> T:
    """Run `fn` with retries for transient PlannerErrors, through the breaker.

    Raises CircuitOpen (no request made) when the breaker refuses, the last error once
    attempts run out, a non-transient error at once, and the last error early when the
    backoff would outlive the round's deadline. Anything not a PlannerError (bugs,
    cancellation) passes straight through. `failed(result)` names a failure that still
    returned something useful (a stream cut after some plans landed): it is counted
    against the breaker like a raised one, but not retried.
    """
    attempt = 0
    last: PlannerError | None = None
    while True:
        if breaker is not None and not breaker.allow():
            raise CircuitOpen(f"circuit open, next probe in {breaker.retry_in():.2f}s") from last
        attempt += 1
        try:
            result = await fn()
        except PlannerError as exc:
            last = exc
            if breaker is not None:
                if counts_against_breaker(exc):
                    breaker.record_failure()
                else:
                    # No verdict on the server (too long an answer): a half-open breaker
                    # must not wait forever for this probe's report.
                    breaker.abandon()
            if not exc.transient or attempt >= policy.max_attempts:
                raise
            wait = policy.delay(attempt, exc, rng)
            if deadline is not None and wait >= deadline.remaining(clock.now()):
                raise
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            await clock.sleep(wait)
            continue
        except BaseException:
            # Cancelled or a bug: no verdict on the server, but free a half-open probe slot.
            if breaker is not None:
                breaker.abandon()
            raise
        if breaker is not None:
            cut = None if failed is None else failed(result)
            if cut is None or not counts_against_breaker(cut):
                breaker.record_success()
            else:
                breaker.record_failure()
        return result
