"""A round's time: one interface for the wall clock and the virtual clock.

On the wall clock (the window, real servers) time is the clock, the round's deadline is
an anyio cancel scope and each request a `fail_after` ending just before it; a plan is
delivered when it has been parsed and validated. On the virtual clock (deterministic
headless matches on the sim) time is the backend's emission stamps: the round runs to
completion at once, a token stamped past the deadline counts as not received, a request
waiting for a free lane leaves when that lane's last request ended, and the next request
of a sequence leaves when the previous one ended. Everything above asks this object and
never which clock it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import anyio

from planner.clock import Clock
from planner.resilience import RoundDeadline, Timeouts

DEADLINE_MARGIN_S = 0.002
"""On the wall clock a request's own timeout fires this much before the round's deadline."""


class RoundTimeline:
    """Shared by both clocks: the round's start, deadline and the latest instant reached."""

    virtual = False

    def __init__(self, clock: Clock, budget_ms: float) -> None:
        self.clock = clock
        self.t0 = clock.now()
        self.deadline = RoundDeadline(self.t0, budget_ms)
        self.latest = self.t0
        """The latest instant this round has reached (virtual: the furthest stamp)."""

    def ms(self, at: float) -> float:
        return (at - self.t0) * 1000

    def past_deadline(self, at: float | None = None) -> bool:
        return self.deadline.expired(self.latest if at is None else at)

    def left(self, now: float) -> float:
        """Seconds of budget left after `now` (and after anything already reached)."""
        return self.deadline.remaining(max(now, self.latest))

    def reach_deadline(self) -> None:
        """The round has run into its deadline (a cut request, an answer that never came)."""
        self.latest = max(self.latest, self.deadline.at or self.latest)

    # Overridden per clock --------------------------------------------------------

    def now(self, stamp: float | None = None) -> float:
        raise NotImplementedError

    def round_scope(self) -> contextlib.AbstractContextManager[object]:
        raise NotImplementedError

    def deadline_cancelled(self) -> bool:
        """Did the round's deadline (not something else) cancel the work in flight?"""
        return False

    def request_limit(self, timeouts: Timeouts) -> float:
        raise NotImplementedError

    def request_scope(self, limit: float) -> contextlib.AbstractContextManager[object]:
        raise NotImplementedError

    def in_time(self, at: float) -> bool:
        """May a token that arrived at `at` still count?"""
        raise NotImplementedError

    def catch_up(self) -> None:
        """The next request of a sequence leaves when the previous one ended."""

    def leaves_at(self, lane_free: float) -> float | None:
        """When a request waiting for a client-side lane free at `lane_free` leaves (None:
        when it is made)."""
        return None

    def end_of(self, last_at: float) -> float:
        """Now, on a request's timeline, `last_at` being its latest chunk's instant."""
        raise NotImplementedError

    def delivered_at(self, at: float) -> float:
        """The instant a plan whose closing chunk arrived at `at` reaches the world."""
        raise NotImplementedError

    def overhead_ms(self, at: float, emitted_at: float | None) -> float | None:
        """Delivery minus the instant the plan's closing brace was sent, where known."""
        return None

    def fallback_at(self) -> float:
        """When the agents still waiting get their rule plan at the round's end."""
        raise NotImplementedError


class WallTimeline(RoundTimeline):
    def __init__(self, clock: Clock, budget_ms: float) -> None:
        super().__init__(clock, budget_ms)
        self._scope: anyio.CancelScope | None = None

    def now(self, stamp: float | None = None) -> float:
        return self.clock.now()

    @contextlib.contextmanager
    def round_scope(self) -> Iterator[object]:
        with anyio.move_on_after(self.deadline.remaining(self.clock.now())) as scope:
            self._scope = scope
            yield scope
        self.latest = self.clock.now()

    def deadline_cancelled(self) -> bool:
        return self._scope is not None and self._scope.cancel_called

    def request_limit(self, timeouts: Timeouts) -> float:
        # A request ends just before the round does, so that a server with nothing to show
        # by then is a failure the breaker sees (not a silent cut).
        left = self.deadline.remaining(self.clock.now()) - DEADLINE_MARGIN_S
        return max(0.001, min(timeouts.request_s, left))

    def request_scope(self, limit: float) -> contextlib.AbstractContextManager[object]:
        return anyio.fail_after(limit)

    def in_time(self, at: float) -> bool:
        return True  # the cancel scopes end a late stream

    def end_of(self, last_at: float) -> float:
        return self.clock.now()

    def delivered_at(self, at: float) -> float:
        # Delivered once parsed and validated, not when the chunk that closed it arrived:
        # plan_wait and overhead include that work.
        return max(at, self.clock.now())

    def overhead_ms(self, at: float, emitted_at: float | None) -> float | None:
        return None if emitted_at is None else max(0.0, (at - emitted_at) * 1000)

    def fallback_at(self) -> float:
        return max(self.latest, self.clock.now())


class VirtualTimeline(RoundTimeline):
    virtual = True

    def now(self, stamp: float | None = None) -> float:
        t = self.clock.now() if stamp is None else stamp
        self.latest = max(self.latest, t)
        return t

    def round_scope(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def request_limit(self, timeouts: Timeouts) -> float:
        return timeouts.request_s

    def request_scope(self, limit: float) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()  # the stamps, not a timer, end a late stream

    def in_time(self, at: float) -> bool:
        return not self.past_deadline(at)

    def catch_up(self) -> None:
        ahead = self.latest - self.clock.now()
        advance = getattr(self.clock, "advance", None)
        if ahead > 0 and advance is not None:
            advance(ahead)

    def leaves_at(self, lane_free: float) -> float | None:
        return lane_free

    def end_of(self, last_at: float) -> float:
        return last_at

    def delivered_at(self, at: float) -> float:
        return at

    def fallback_at(self) -> float:
        at = max(self.latest, self.now())
        deadline_at = self.deadline.at
        if deadline_at is not None and self.past_deadline(at):
            return deadline_at
        return at


def timeline_for(clock: Clock, budget_ms: float, *, virtual: bool) -> RoundTimeline:
    return VirtualTimeline(clock, budget_ms) if virtual else WallTimeline(clock, budget_ms)
