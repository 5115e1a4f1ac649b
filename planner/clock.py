"""Injected time: every pure core takes a `Clock` so tests run in virtual time.

`MonotonicClock` is the real one (perf_counter + anyio.sleep); `VirtualClock` only
moves when told to (`advance`) or when something sleeps on it, and sleeping on it
returns at once, so backoff and cooldown tests never wait for real.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio
import anyio.lowlevel


@runtime_checkable
class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """Real time: `time.perf_counter` and `anyio.sleep`."""

    def now(self) -> float:
        return time.perf_counter()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


SLEEPS_KEPT = 1024


class VirtualClock:
    """Time that moves only by `advance(dt)` or by `sleep`, which returns at once.

    Every sleep is recorded in `sleeps` (the last SLEEPS_KEPT), so tests can assert exact
    backoff delays while a long soak does not grow the list without bound.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time cannot go backwards")
        self._now += seconds

    def jump_to(self, t: float) -> None:
        """Set the time, even backwards: only for a virtual planner that ran a whole
        round ahead of the game and must return to the game's instant."""
        self._now = t

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        if len(self.sleeps) > SLEEPS_KEPT:
            del self.sleeps[: len(self.sleeps) - SLEEPS_KEPT]
        self._now += seconds
        # Still a checkpoint, so cancellation behaves as with a real sleep.
        await anyio.lowlevel.checkpoint()
