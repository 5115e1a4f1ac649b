"""A MatchObserver that remembers: what the session told its observers, in order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from game.rules.steps import Step
from planner.core import PlanningRound
from planner.events import PlanEvent


@dataclass
class Watcher:
    """A MatchObserver that keeps everything it is told, in order."""

    seen: list[tuple[str, Any]] = field(default_factory=list)

    def on_round_submitted(self, tick: int, planning: PlanningRound) -> None:
        self.seen.append(("round", (tick, planning)))

    def on_event(self, event: PlanEvent) -> None:
        self.seen.append(("event", event))

    def on_plan_applied(
        self, tick: int, unit_id: int, steps: tuple[Step, ...], source: str
    ) -> None:
        self.seen.append(("applied", (tick, unit_id, steps, source)))

    def on_match_end(self, tick: int, winner: str, state_hash: str) -> None:
        self.seen.append(("end", (tick, winner, state_hash)))

    def of(self, kind: str) -> list[Any]:
        return [item for k, item in self.seen if k == kind]
