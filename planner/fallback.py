"""Fallback tiers, per agent: full_llm -> simplified_llm -> heuristic -> emergency.

An agent whose plan is missing, invalid or late drops to the next tier on its own,
with a named `Cause`. The heuristic tier runs the same rule planner as the blue AI;
the emergency plan (Scan, Wait) is a constant and cannot fail.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from game.rules import heuristic
from game.rules.snapshot import Snapshot
from game.rules.steps import FULL_TOOLS, MAX_STEPS, SIMPLIFIED_TOOLS, STEP_TYPES, Scan, Step, Wait
from planner.errors import CAUSES, Cause
from planner.validate import DroppedStep, legal_steps

if TYPE_CHECKING:
    from game.rules.grid import Grid


class Tier(StrEnum):
    full_llm = "full_llm"
    simplified_llm = "simplified_llm"
    heuristic = "heuristic"
    emergency = "emergency"


LLM_TIERS: tuple[Tier, ...] = (Tier.full_llm, Tier.simplified_llm)
TIER_ORDER: tuple[Tier, ...] = (Tier.full_llm, Tier.simplified_llm, Tier.heuristic, Tier.emergency)

TIER_TOOLS: dict[Tier, frozenset[str]] = {
    Tier.full_llm: FULL_TOOLS,
    Tier.simplified_llm: SIMPLIFIED_TOOLS | {"Heal", "ThrowExplosive"},
}
"""Tools each LLM tier offers (the rule tiers are not limited by a tool list). The
simplified tier adds Heal and ThrowExplosive to the 8 core tools: a medic must be able
to heal and a squad to throw its grenades, whichever tier plans it."""

EMERGENCY_PLAN: tuple[Step, ...] = (Scan(), Wait())


def is_llm_tier(tier: Tier) -> bool:
    return tier in TIER_TOOLS


def next_llm_tier(tier: Tier) -> Tier | None:
    """Where an undelivered agent is re-requested once: full -> simplified; else None."""
    return Tier.simplified_llm if tier == Tier.full_llm else None


def next_tier(tier: Tier) -> Tier:
    """One tier down; emergency is the floor."""
    i = TIER_ORDER.index(tier)
    return TIER_ORDER[min(i + 1, len(TIER_ORDER) - 1)]


@dataclass(frozen=True)
class AgentOutcome:
    """What one agent ended up with in a round: the record the overlay and reports read."""

    agent_id: int
    steps: tuple[Step, ...]
    tier: Tier
    cause: Cause | None = None
    """Why the agent is on this tier rather than the one the round started at (None: no drop)."""
    from_cache: bool = False
    partial: bool = False
    """Recovered from a truncated element: only its complete steps are kept."""
    dropped: tuple[DroppedStep, ...] = ()
    """Steps validation removed, with reasons."""
    repaired: tuple[DroppedStep, ...] = ()
    """Steps validation corrected (a move onto wall or water), as sent and why."""
    intent: str | None = None
    """The plan's own short statement of purpose, when the model (or sim) wrote one."""

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("an outcome always carries at least one step")
        if self.cause is not None and self.cause not in CAUSES:
            raise ValueError(f"unknown cause {self.cause!r}")


def emergency_outcome(agent_id: int, cause: Cause) -> AgentOutcome:
    return AgentOutcome(agent_id, EMERGENCY_PLAN, Tier.emergency, cause)


def _usable(steps: object) -> tuple[Step, ...] | None:
    """The heuristic's output as a step tuple, or None if it is not a usable plan."""
    if not isinstance(steps, Sequence) or not steps:
        return None
    step_classes = tuple(STEP_TYPES.values())
    if not all(isinstance(s, step_classes) for s in steps):
        return None
    return tuple(steps[:MAX_STEPS])


def heuristic_plan(
    snap: Snapshot, rng: random.Random, grid: Grid | None = None
) -> tuple[tuple[Step, ...], Tier, Cause | None]:
    """Plan with the rule planner; the emergency plan when it raises or yields nothing legal.

    With a `grid`, the heuristic's steps go through the same validation as an LLM's
    (any tool allowed); without one only the shape is checked.
    """
    try:
        steps = _usable(heuristic.plan(snap, rng))
        if steps is not None and grid is not None:
            steps = legal_steps(steps, snap, grid) or None
    except Exception:  # any bug in the rule planner must still leave the unit a plan
        steps = None
    if steps is None:
        return EMERGENCY_PLAN, Tier.emergency, "heuristic_error"
    return steps, Tier.heuristic, None
