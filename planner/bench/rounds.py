"""Drive the real planning service from the bench's own thread, like the game does."""

from __future__ import annotations

import time
from collections.abc import Sequence

from game.rules.snapshot import Snapshot
from planner.bench import data as bench_data
from planner.core import PlanningRound
from planner.events import PlanDelivered, PlanEvent, RoundDone
from planner.service import PlannerService

POLL_S = 0.002
"""How often the bench drains the event queue (a frame loop would do it every ~16 ms;
the events carry their own instants, so this only bounds how soon we notice)."""


class RoundTimeout(RuntimeError):
    pass


def run_round(
    service: PlannerService,
    round_id: int,
    snapshots: Sequence[Snapshot],
    *,
    squad: str = "red",
    timeout_s: float = 120.0,
) -> list[PlanEvent]:
    """Submit one round and return its events, up to and including its RoundDone."""
    planning = PlanningRound(round_id, squad, tuple(snapshots), bench_data.grid_of())
    service.submit(planning)
    events: list[PlanEvent] = []
    give_up = time.perf_counter() + timeout_s
    while True:
        for event in service.drain():
            if event.round_id != round_id:
                continue
            events.append(event)
            if isinstance(event, RoundDone):
                return events
        if time.perf_counter() > give_up:
            raise RoundTimeout(f"round {round_id} did not finish within {timeout_s:.0f} s")
        time.sleep(POLL_S)


def done_of(events: Sequence[PlanEvent]) -> RoundDone:
    return next(e for e in events if isinstance(e, RoundDone))


def delivered(events: Sequence[PlanEvent]) -> list[PlanDelivered]:
    return [e for e in events if isinstance(e, PlanDelivered)]
