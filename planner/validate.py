"""Validation of a parsed plan against the world rules, for this agent now.

Pydantic already checked the shape; this checks legality. Illegal steps are dropped
with a reason; a plan left with no legal step is invalid (cause "validation_error").

The world moves between steps, so only the first step that survives can be judged
against the snapshot in full (`game.actions.check_step`, the same check the world
applies). Later steps get only the checks no move can change: tool allowed in the tier,
tile in bounds, walkable (and cover, for TakeCover: terrain is static), target an enemy
(or for Approach, any unit) the agent knows of, no throw past the grenades left, and no
Attack with an empty magazine before any Reload. Anything that may become legal by
the time the step runs is kept: the world re-checks every step when applying it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from game.actions import check_step
from game.grid import Grid
from game.snapshot import Snapshot
from game.steps import (
    FULL_TOOLS,
    AoEAttack,
    Approach,
    Attack,
    Distract,
    MarkTarget,
    MoveTo,
    Reload,
    Retreat,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
)
from planner.errors import Cause
from planner.schema import AgentPlan


@dataclass(frozen=True)
class DroppedStep:
    index: int
    """Position of the step in the plan as received."""
    step: Step
    reason: str


@dataclass(frozen=True)
class ValidatedPlan:
    agent_id: int
    steps: tuple[Step, ...]
    dropped: tuple[DroppedStep, ...] = ()

    @property
    def valid(self) -> bool:
        return bool(self.steps)

    @property
    def cause(self) -> Cause | None:
        return None if self.steps else "validation_error"


def _static_reason(step: Step, snap: Snapshot, grid: Grid) -> str | None:
    """What is wrong with a later step whatever happens before it, or None."""
    me = snap.me
    match step:
        case MoveTo(x=x, y=y) | TakeCover(x=x, y=y):
            if not grid.walkable(x, y):
                where = grid.tile(x, y) if grid.in_bounds(x, y) else "out of bounds"
                return f"tile ({x},{y}) is {where}"
            if isinstance(step, TakeCover) and not grid.is_cover(x, y):
                return f"tile ({x},{y}) is not cover"
        case ThrowSmoke(x=x, y=y) | ThrowExplosive(x=x, y=y) | AoEAttack(x=x, y=y):
            if not grid.in_bounds(x, y):
                return f"tile ({x},{y}) out of bounds"
        case Approach(target_id=tid):
            if tid == me.id:
                return "cannot target self"
            if tid not in {u.id for u in (*snap.allies, *snap.enemies)}:
                return f"target {tid} unknown to this unit"
        case (
            Attack(target_id=tid)
            | Retreat(target_id=tid)
            | MarkTarget(target_id=tid)
            | Distract(target_id=tid)
        ):
            if tid == me.id:
                return "cannot target self"
            if any(a.id == tid for a in snap.allies):
                return f"target {tid} is an ally"
            if not any(e.id == tid for e in snap.enemies):
                return f"target {tid} unknown to this unit"
        case _:
            pass
    return None


def _check_steps(
    steps: Iterable[Step], snap: Snapshot, grid: Grid, tools: frozenset[str]
) -> tuple[tuple[Step, ...], tuple[DroppedStep, ...]]:
    kept: list[Step] = []
    dropped: list[DroppedStep] = []
    reloaded = False
    grenades = snap.me.grenades  # nothing refills them, so throws past the count must fail
    for index, step in enumerate(steps):
        reason: str | None
        if step.act not in tools:
            reason = f"tool {step.act} not allowed in this tier"
        elif not kept:
            # This step runs first, on the world as the snapshot shows it: judge it fully.
            reason = check_step(step, snap, grid)
        else:
            reason = _static_reason(step, snap, grid)
        throw = isinstance(step, ThrowSmoke | ThrowExplosive)
        if reason is None and throw and grenades <= 0:
            reason = "no grenades left"
        if reason is None and isinstance(step, Attack) and snap.me.ammo <= 0 and not reloaded:
            reason = "no ammo (Reload first)"
        if reason is None:
            kept.append(step)
            reloaded = reloaded or isinstance(step, Reload)
            grenades -= 1 if throw else 0
        else:
            dropped.append(DroppedStep(index, step, reason))
    return tuple(kept), tuple(dropped)


def validate_plan(
    plan: AgentPlan, snap: Snapshot, grid: Grid, tools: frozenset[str]
) -> ValidatedPlan:
    """Drop the illegal steps of `plan` for the agent of `snap`; never raises on bad plans."""
    if plan.agent_id != snap.me.id:
        wrong = f"plan is for agent {plan.agent_id}, not {snap.me.id}"
        return ValidatedPlan(
            snap.me.id, (), tuple(DroppedStep(i, s, wrong) for i, s in enumerate(plan.steps))
        )
    steps, dropped = _check_steps(plan.steps, snap, grid, tools)
    return ValidatedPlan(plan.agent_id, steps, dropped)


def legal_steps(steps: Iterable[Step], snap: Snapshot, grid: Grid) -> tuple[Step, ...]:
    """The steps that pass validation with every tool allowed (used for the heuristic)."""
    return _check_steps(steps, snap, grid, FULL_TOOLS)[0]
