"""Retry timing in virtual time, Retry-After, what is never retried, deadlines, settings."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable

import anyio
import pytest

from planner.clock import VirtualClock
from planner.errors import (
    BackendConnectError,
    BackendHTTPStatus,
    BackendStreamError,
    BackendTimeout,
    CircuitOpen,
    PlannerError,
    ResponseTooLarge,
)
from planner.resilience import (
    BreakerState,
    CircuitBreaker,
    RetryPolicy,
    RoundDeadline,
    call_with_retry,
    remaining_budget,
)


def failing(
    errors: list[PlannerError], result: str = "ok"
) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    """An async fn raising `errors` in turn, then returning `result`; counts its calls."""
    calls: list[int] = []

    async def fn() -> str:
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return fn, calls


def run(
    errors: list[PlannerError],
    policy: RetryPolicy | None = None,
    breaker: CircuitBreaker | None = None,
    deadline: RoundDeadline | None = None,
    clock: VirtualClock | None = None,
) -> tuple[str | PlannerError, VirtualClock, int, list[tuple[int, str, float]]]:
    clock = clock or VirtualClock()
    fn, calls = failing(errors)
    retries: list[tuple[int, str, float]] = []

    async def main() -> str | PlannerError:
        try:
            return await call_with_retry(
                fn,
                policy or RetryPolicy(),
                breaker,
                clock,
                random.Random(42),
                on_retry=lambda n, exc, wait: retries.append((n, exc.cause, wait)),
                deadline=deadline,
            )
        except PlannerError as exc:
            return exc

    return anyio.run(main), clock, len(calls), retries


def expected_backoffs(n: int, policy: RetryPolicy) -> list[float]:
    rng = random.Random(42)
    return [policy.backoff(i, rng) for i in range(1, n + 1)]


def test_transient_failures_are_retried_with_exact_jittered_backoff() -> None:
    policy = RetryPolicy()
    result, clock, calls, retries = run(
        [BackendTimeout("slow"), BackendHTTPStatus("boom", 503)], policy
    )
    assert result == "ok" and calls == 3
    want = expected_backoffs(2, policy)
    assert clock.sleeps == want
    assert clock.now() == pytest.approx(sum(want))
    assert [(n, cause) for n, cause, _ in retries] == [(1, "timeout"), (2, "http_status")]
    # Equal jitter: within [d/2, d] of 50 ms then 100 ms.
    assert 0.025 <= want[0] <= 0.050 and 0.050 <= want[1] <= 0.100


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=0.05, cap_s=0.2)
    delays = expected_backoffs(9, policy)
    assert all(0.1 <= d <= 0.2 for d in delays[3:])


def test_attempts_run_out_and_the_last_error_is_raised() -> None:
    errors: list[PlannerError] = [BackendConnectError(f"refused {i}") for i in range(5)]
    result, clock, calls, _ = run(errors)
    assert isinstance(result, BackendConnectError) and result.message == "refused 2"
    assert calls == 3 and len(clock.sleeps) == 2


def test_retry_after_is_honoured() -> None:
    result, clock, calls, _ = run([BackendHTTPStatus("slow down", 429, retry_after=1.5)])
    assert result == "ok" and calls == 2
    assert clock.sleeps == [1.5]


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_other_4xx_are_never_retried(status: int) -> None:
    result, clock, calls, retries = run([BackendHTTPStatus("bad", status)])
    assert isinstance(result, BackendHTTPStatus) and result.status == status
    assert calls == 1 and clock.sleeps == [] and retries == []


def test_mid_stream_errors_are_retried_but_oversize_is_not() -> None:
    assert run([BackendStreamError("overloaded")])[0] == "ok"
    result, _, calls, _ = run([ResponseTooLarge("too long")])
    assert isinstance(result, ResponseTooLarge) and calls == 1


def test_no_retry_that_would_outlive_the_round() -> None:
    deadline = RoundDeadline(start=0.0, budget_ms=1000)
    result, clock, calls, _ = run(
        [BackendHTTPStatus("later", 429, retry_after=2.0)], deadline=deadline
    )
    assert isinstance(result, BackendHTTPStatus) and calls == 1 and clock.sleeps == []


def test_open_breaker_refuses_without_calling() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, threshold=1)
    breaker.record_failure()
    result, _, calls, _ = run([], breaker=breaker, clock=clock)
    assert isinstance(result, CircuitOpen) and result.cause == "circuit_open" and calls == 0


def test_failures_feed_the_breaker_and_success_closes_a_probe() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, threshold=2, cooldown_s=1.0)
    result, _, calls, _ = run(
        [BackendTimeout("a"), BackendTimeout("b")], breaker=breaker, clock=clock
    )
    # Two failures open the breaker, so the third attempt is refused, not sent.
    assert isinstance(result, CircuitOpen) and calls == 2 and breaker.openings == 1
    clock.advance(1.0)
    assert run([], breaker=breaker, clock=clock)[0] == "ok"
    assert breaker.state == BreakerState.closed


def test_cancellation_frees_a_half_open_probe() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, threshold=1, cooldown_s=1.0)
    breaker.record_failure()
    clock.advance(1.0)

    async def main() -> None:
        with anyio.CancelScope() as scope:

            async def hang() -> str:
                scope.cancel()  # cancelled while the probe is in flight
                await anyio.sleep_forever()
                return "never"

            await call_with_retry(hang, RetryPolicy(), breaker, clock, random.Random(0))

    anyio.run(main)
    assert breaker.state == BreakerState.half_open and breaker.allow()


def test_round_deadline() -> None:
    d = RoundDeadline(start=10.0, budget_ms=2500)
    assert d.at == 12.5
    assert d.remaining(11.0) == pytest.approx(1.5) and not d.expired(11.0)
    assert d.remaining(13.0) == 0.0 and d.expired(12.5)
    assert d.cap(10.0, 11.0) == pytest.approx(1.5) and d.cap(0.5, 11.0) == 0.5
    assert RoundDeadline(0.0, None).remaining(1e9) == math.inf
    assert remaining_budget(0.0, 100, 0.04) == pytest.approx(0.06)
