"""The injected clocks."""

from __future__ import annotations

import anyio
import pytest

from planner.clock import Clock, MonotonicClock, VirtualClock


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(start=10.0)
    assert clock.now() == 10.0
    clock.advance(0.5)
    assert clock.now() == 10.5
    with pytest.raises(ValueError):
        clock.advance(-1)

    async def main() -> None:
        await clock.sleep(2.0)
        await clock.sleep(-1.0)  # clamped, like a real sleep

    anyio.run(main)
    assert clock.now() == 12.5
    assert clock.sleeps == [2.0, 0.0]


def test_virtual_sleep_is_a_cancellation_point() -> None:
    clock = VirtualClock()

    async def main() -> bool:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await clock.sleep(1.0)
            return False
        return True

    assert anyio.run(main)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(VirtualClock(), Clock) and isinstance(MonotonicClock(), Clock)
    real = MonotonicClock()
    a = real.now()
    anyio.run(real.sleep, 0)
    assert real.now() >= a
