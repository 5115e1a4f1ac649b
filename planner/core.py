"""The planner's long-lived state, and what a planning round is.

`PlannerCore` lives inside the planner's event loop (the thread of `PlannerService`,
or the one-round loops of `VirtualPlanner`) and is shared by every round: the backend,
the clock, the prompt cache, the circuit breaker, the retry policy, telemetry.
"""

from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.steps import Step
from planner.backends.base import Backend
from planner.cache import Anchor, PlanCache
from planner.clock import Clock
from planner.fallback import TIER_TOOLS, Tier
from planner.resilience import CircuitBreaker, RetryPolicy, Timeouts
from planner.schedule import Schedule, ServerModel
from planner.schema import AgentPlan, PlanFormat, plan_json_schema
from planner.telemetry import Telemetry
from planner.validate import validate_plan


@dataclass(frozen=True)
class PlanningRound:
    """What the game submits: one squad's snapshots for one turn."""

    round_id: int
    squad: str
    snapshots: tuple[Snapshot, ...]
    grid: Grid


@dataclass(frozen=True)
class CachedPlan:
    steps: tuple[Step, ...]
    tier: Tier
    anchor: Anchor | None = None
    """Where and for whom it was made (a situation hit is adapted from it)."""
    intent: str | None = None
    """The intent the plan was delivered with (a cache hit says it again)."""


@dataclass
class PlannerCore:
    """The long-lived state of the planner loop, shared by every round."""

    backend: Backend
    clock: Clock
    cache: PlanCache[CachedPlan]
    breaker: CircuitBreaker
    retry: RetryPolicy
    timeouts: Timeouts
    rng: random.Random
    virtual: bool = False
    """Time comes from the backend's emission stamps, not from the clock."""
    telemetry: Telemetry = field(default_factory=Telemetry)
    server: ServerModel = field(default_factory=ServerModel)
    """What `auto` has learned of the server (lives as long as the backend)."""
    recorded_schedules: dict[int, deque[Schedule]] | None = None
    """Replay: `auto`'s recorded decisions, in order, used instead of deciding again (a
    replay's timing is the record's to within rounding, and a decision taken again on it
    could shape a round differently from the one recorded)."""
    request_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    served_from_cache: dict[int, str] = field(default_factory=dict)
    """Agent id -> the situation key of the cached plan it was last given, until it gets
    a plan from the LLM or the rules. An agent still in that situation next round is
    asked afresh: a cached plan that left it where it was (a Scan, a Wait) would
    otherwise be served again and again, and a passing hesitation of the model become a
    stall (docs/BENCHMARKS.md, issue 17: warm squads played worse before it)."""
    seen_thinking: bool = False
    """The server has streamed a model's thinking: with `think` auto, later requests get
    the thinking room too (PlannerSettings.think_tokens)."""
    _schemas: dict[tuple[Tier, int, int, PlanFormat, bool], dict[str, object]] = field(
        default_factory=dict
    )

    def static_schema(
        self, tier: Tier, grid: Grid, fmt: PlanFormat, intent: bool = False
    ) -> dict[str, object]:
        key = (tier, grid.width, grid.height, fmt, intent)
        if key not in self._schemas:
            self._schemas[key] = plan_json_schema(
                TIER_TOOLS[tier], grid.width, grid.height, fmt=fmt, intent=intent
            )
        return self._schemas[key]


def validate_plan_steps(
    steps: tuple[Step, ...], snap: Snapshot, grid: Grid, tier: Tier
) -> tuple[Step, ...]:
    """The legal remainder of a stored plan for this agent now (empty: unusable)."""
    tools = TIER_TOOLS.get(tier)
    if tools is None:  # rule-tier plans are never cached, but stay safe
        return ()
    return validate_plan(AgentPlan(agent_id=snap.me.id, steps=steps), snap, grid, tools).steps
