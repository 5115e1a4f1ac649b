"""Circuit breaker transitions in virtual time."""

from __future__ import annotations

import pytest

from planner.clock import VirtualClock
from planner.resilience import BreakerState, CircuitBreaker


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read through a call so mypy does not narrow the property between transitions."""
    return breaker.state


def make(**kw: float) -> tuple[CircuitBreaker, VirtualClock]:
    clock = VirtualClock()
    return CircuitBreaker(clock, **kw), clock  # type: ignore[arg-type]


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _ = make(threshold=5)
    for _ in range(4):
        breaker.record_failure()
    breaker.record_success()  # resets the run
    for _ in range(4):
        breaker.record_failure()
        assert state(breaker) == BreakerState.closed and breaker.allow()
    breaker.record_failure()
    assert state(breaker) == BreakerState.open and breaker.openings == 1
    assert not breaker.allow()


def test_opens_on_failure_ratio_once_enough_calls_are_in_the_window() -> None:
    breaker, _ = make(threshold=100)
    # Alternate: never two failures in a row, ratio 50%.
    for _ in range(4):
        breaker.record_failure()
        breaker.record_success()
    breaker.record_failure()
    assert state(breaker) == BreakerState.closed  # 9 calls: below the 10-call minimum
    breaker.record_success()
    breaker.record_failure()  # 11 calls, 6 failures in the window
    assert state(breaker) == BreakerState.open and breaker.openings == 1


def test_ratio_counts_only_the_last_20_calls() -> None:
    breaker, _ = make(threshold=100)
    for _ in range(9):
        breaker.record_failure()
        breaker.record_success()
        breaker.record_success()
    # 27 calls, 9 failures: a third, below half.
    assert state(breaker) == BreakerState.closed
    assert breaker.failure_ratio == pytest.approx(6 / 20)
    for _ in range(20):
        breaker.record_success()
    assert breaker.failure_ratio == 0.0
    # Old failures have left the window: 9 in a 20-call window of which 11 succeed.
    for _ in range(9):
        breaker.record_failure()
        breaker.record_success()
    assert state(breaker) == BreakerState.closed
    breaker.record_failure()  # 10 of the last 20
    assert state(breaker) == BreakerState.open


def test_cooldown_then_one_probe_then_close() -> None:
    breaker, clock = make(threshold=1, cooldown_s=5.0)
    breaker.record_failure()
    assert breaker.retry_in() == pytest.approx(5.0)
    clock.advance(4.9)
    assert state(breaker) == BreakerState.open and not breaker.allow()
    clock.advance(0.1)
    assert state(breaker) == BreakerState.half_open
    assert breaker.allow()  # the single probe
    assert not breaker.allow() and not breaker.allow()
    breaker.record_success()
    assert state(breaker) == BreakerState.closed and breaker.allow()
    assert breaker.failure_ratio == 0.0


def test_failed_probe_reopens_for_another_cooldown() -> None:
    breaker, clock = make(threshold=1, cooldown_s=2.0)
    breaker.record_failure()
    clock.advance(2.0)
    assert breaker.allow()
    breaker.record_failure()
    assert state(breaker) == BreakerState.open and breaker.openings == 2
    clock.advance(1.9)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()


def test_stragglers_while_open_change_nothing() -> None:
    breaker, clock = make(threshold=1, cooldown_s=1.0)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert state(breaker) == BreakerState.open and breaker.openings == 1
    clock.advance(1.0)
    assert state(breaker) == BreakerState.half_open


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        make(threshold=0)
    with pytest.raises(ValueError):
        make(ratio=1.5)
