"""The breaker under the failures the fault tests found, in virtual time.

- A half-open probe that ends in an answer too long (oversize: no verdict on the
  server's health) must free the probe slot; before the fix the breaker stayed
  half-open refusing every request for good.
- A stream cut after some plans were delivered is not retried, but still counts
  against the breaker (`call_with_retry(..., failed=...)`); before the fix it counted
  as a success, so a server that always dropped mid-stream never opened it.
"""

from __future__ import annotations

import random

import anyio
import pytest

from planner.clock import VirtualClock
from planner.errors import BackendConnectError, CircuitOpen, PlannerError, ResponseTooLarge
from planner.resilience import BreakerState, CircuitBreaker, RetryPolicy, call_with_retry


def opened_breaker(clock: VirtualClock) -> CircuitBreaker:
    breaker = CircuitBreaker(clock, threshold=1, cooldown_s=5.0)
    breaker.record_failure()
    assert breaker.state == BreakerState.open
    return breaker


def attempt(
    breaker: CircuitBreaker,
    clock: VirtualClock,
    exc: PlannerError | None = None,
    returned: PlannerError | None = None,
) -> tuple[str | PlannerError | None, int]:
    """One call_with_retry; (its result or error, how many times fn ran)."""
    calls: list[int] = []

    async def fn() -> PlannerError | None:
        calls.append(1)
        if exc is not None:
            raise exc
        return returned

    async def main() -> str | PlannerError | None:
        try:
            return await call_with_retry(
                fn,
                RetryPolicy(max_attempts=3),
                breaker,
                clock,
                random.Random(0),
                failed=lambda cut: cut,
            )
        except PlannerError as err:
            return err

    return anyio.run(main), len(calls)


def test_an_oversize_probe_frees_the_half_open_slot() -> None:
    clock = VirtualClock()
    breaker = opened_breaker(clock)
    clock.advance(5.0)
    result, calls = attempt(breaker, clock, exc=ResponseTooLarge("too long"))
    assert isinstance(result, ResponseTooLarge) and calls == 1
    assert breaker.state == BreakerState.half_open
    assert breaker.allow(), "the next request may probe again"


def test_a_healthy_probe_after_an_oversize_one_closes_the_breaker() -> None:
    clock = VirtualClock()
    breaker = opened_breaker(clock)
    clock.advance(5.0)
    attempt(breaker, clock, exc=ResponseTooLarge("too long"))
    result, _ = attempt(breaker, clock)
    assert result is None
    assert breaker.state == BreakerState.closed


@pytest.mark.parametrize("threshold", [1, 2, 3])
def test_streams_cut_after_some_plans_count_against_the_breaker(threshold: int) -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, threshold=threshold, cooldown_s=5.0)
    cut = BackendConnectError("dropped mid-stream")
    for i in range(threshold):
        assert breaker.state == BreakerState.closed, f"opened after {i} cut streams"
        result, calls = attempt(breaker, clock, returned=cut)
        assert result is cut and calls == 1, "a partly used answer is never retried"
    assert breaker.state == BreakerState.open
    refused, calls = attempt(breaker, clock)
    assert isinstance(refused, CircuitOpen) and calls == 0


def test_a_cut_that_is_the_models_doing_does_not_count() -> None:
    clock = VirtualClock()
    breaker = CircuitBreaker(clock, threshold=1, cooldown_s=5.0)
    result, _ = attempt(breaker, clock, returned=ResponseTooLarge("too long"))
    assert isinstance(result, ResponseTooLarge)
    assert breaker.state == BreakerState.closed


def test_a_cut_probe_reopens_the_breaker() -> None:
    clock = VirtualClock()
    breaker = opened_breaker(clock)
    clock.advance(5.0)
    attempt(breaker, clock, returned=BackendConnectError("dropped mid-stream"))
    assert breaker.state == BreakerState.open
    assert breaker.openings == 2
