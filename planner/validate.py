"""Validation of a parsed plan against the world rules, for this agent now.

Pydantic already checked the shape; this checks legality. Illegal steps are dropped
with a reason; a plan left with no legal step is invalid (cause "validation_error").

The world moves between steps, so only the first step that survives can be judged
against the snapshot in full (`game.rules.actions.check_step`, the same check the world
applies). Later steps get only the checks no move can change: tool allowed in the tier,
tile in bounds, walkable (and cover, for TakeCover: terrain is static), target an enemy
(or for Approach, any unit) the agent knows of, no throw past the grenades left, and no
Attack with an empty magazine before any Reload. Anything that may become legal by
the time the step runs is kept: the world re-checks every step when applying it.

One repair is made rather than a drop: a MoveTo onto an impassable tile (the compact
prompt shows no walls or water, so any model makes this mistake) goes to the nearest
walkable tile within REPAIR_RADIUS instead, and the repair is listed with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from game.rules.actions import Illegal, IllegalCode, check_step
from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.steps import (
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
    why: Illegal

    @property
    def code(self) -> IllegalCode:
        return self.why.code

    @property
    def reason(self) -> str:
        return self.why.message


REPAIR_RADIUS = 2
"""How far (in tiles) a MoveTo onto a wall or water may be moved to a walkable tile."""


@dataclass(frozen=True)
class ValidatedPlan:
    agent_id: int
    steps: tuple[Step, ...]
    dropped: tuple[DroppedStep, ...] = ()
    repaired: tuple[DroppedStep, ...] = ()
    """Steps kept in a corrected form: the original step and what was done to it."""

    @property
    def valid(self) -> bool:
        return bool(self.steps)

    @property
    def cause(self) -> Cause | None:
        return None if self.steps else "validation_error"


def _static_reason(step: Step, snap: Snapshot, grid: Grid) -> Illegal | None:
    """What is wrong with a later step whatever happens before it, or None."""
    me = snap.me
    match step:
        case MoveTo(x=x, y=y) | TakeCover(x=x, y=y):
            if not grid.walkable(x, y):
                where = grid.tile(x, y) if grid.in_bounds(x, y) else "out of bounds"
                return Illegal("impassable", f"tile ({x},{y}) is {where}")
            if isinstance(step, TakeCover) and not grid.is_cover(x, y):
                return Illegal("not_cover", f"tile ({x},{y}) is not cover")
        case ThrowSmoke(x=x, y=y) | ThrowExplosive(x=x, y=y) | AoEAttack(x=x, y=y):
            if not grid.in_bounds(x, y):
                return Illegal("out_of_bounds", f"tile ({x},{y}) out of bounds")
        case Approach(target_id=tid):
            if tid == me.id:
                return Illegal("self_target", "cannot target self")
            if tid not in {u.id for u in (*snap.allies, *snap.enemies)}:
                return Illegal("unknown_target", f"target {tid} unknown to this unit")
        case (
            Attack(target_id=tid)
            | Retreat(target_id=tid)
            | MarkTarget(target_id=tid)
            | Distract(target_id=tid)
        ):
            if tid == me.id:
                return Illegal("self_target", "cannot target self")
            if any(a.id == tid for a in snap.allies):
                return Illegal("ally_target", f"target {tid} is an ally")
            if not any(e.id == tid for e in snap.enemies):
                return Illegal("unknown_target", f"target {tid} unknown to this unit")
        case _:
            pass
    return None


def _nearest_walkable(grid: Grid, snap: Snapshot, x: int, y: int) -> tuple[int, int] | None:
    me = (snap.me.x, snap.me.y)
    best: tuple[tuple[int, int, int, int], tuple[int, int]] | None = None
    for dy in range(-REPAIR_RADIUS, REPAIR_RADIUS + 1):
        for dx in range(-REPAIR_RADIUS, REPAIR_RADIUS + 1):
            tx, ty = x + dx, y + dy
            if (tx, ty) == me or not grid.walkable(tx, ty):
                continue
            rank = (max(abs(dx), abs(dy)), abs(tx - me[0]) + abs(ty - me[1]), ty, tx)
            if best is None or rank < best[0]:
                best = (rank, (tx, ty))
    return None if best is None else best[1]


def _repair(step: Step, snap: Snapshot, grid: Grid) -> MoveTo | None:
    """A MoveTo onto wall or water, moved to the nearest walkable tile (None: no repair)."""
    if not isinstance(step, MoveTo) or not grid.in_bounds(step.x, step.y):
        return None
    if grid.walkable(step.x, step.y):
        return None
    tile = _nearest_walkable(grid, snap, step.x, step.y)
    return None if tile is None else MoveTo(x=tile[0], y=tile[1])


def _check_steps(
    steps: Iterable[Step],
    snap: Snapshot,
    grid: Grid,
    tools: frozenset[str],
    repaired: list[DroppedStep] | None = None,
) -> tuple[tuple[Step, ...], tuple[DroppedStep, ...]]:
    kept: list[Step] = []
    dropped: list[DroppedStep] = []
    reloaded = False
    grenades = snap.me.grenades  # nothing refills them, so throws past the count must fail
    for index, step in enumerate(steps):
        reason: Illegal | None
        fixed = _repair(step, snap, grid) if repaired is not None else None
        if fixed is not None and repaired is not None:
            where = grid.tile(step.x, step.y) if isinstance(step, MoveTo) else "?"
            repaired.append(
                DroppedStep(
                    index,
                    step,
                    Illegal("impassable", f"tile is {where}: moved to ({fixed.x},{fixed.y})"),
                )
            )
            step = fixed
        if step.act not in tools:
            reason = Illegal("tool_not_allowed", f"tool {step.act} not allowed in this tier")
        elif not kept:
            # This step runs first, on the world as the snapshot shows it: judge it fully.
            reason = check_step(step, snap, grid)
        else:
            reason = _static_reason(step, snap, grid)
        throw = isinstance(step, ThrowSmoke | ThrowExplosive)
        if reason is None and throw and grenades <= 0:
            reason = Illegal("no_grenades", "no grenades left")
        if reason is None and isinstance(step, Attack) and snap.me.ammo <= 0 and not reloaded:
            reason = Illegal("no_ammo", "no ammo (Reload first)")
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
        wrong = Illegal("unknown_target", f"plan is for agent {plan.agent_id}, not {snap.me.id}")
        return ValidatedPlan(
            snap.me.id, (), tuple(DroppedStep(i, s, wrong) for i, s in enumerate(plan.steps))
        )
    repaired: list[DroppedStep] = []
    steps, dropped = _check_steps(plan.steps, snap, grid, tools, repaired)
    return ValidatedPlan(plan.agent_id, steps, dropped, tuple(repaired))


def legal_steps(steps: Iterable[Step], snap: Snapshot, grid: Grid) -> tuple[Step, ...]:
    """The steps that pass validation with every tool allowed (used for the heuristic)."""
    return _check_steps(steps, snap, grid, FULL_TOOLS)[0]
