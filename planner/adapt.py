"""Situation hits adapted to their agent: a stored plan moved, turned and re-validated.

One home for what a hit through the situation index must pass before an agent uses it,
whether it comes from an earlier round (planner/dispatch.py) or from another agent of the
same situation in this round (planner/delivery.py).
"""

from __future__ import annotations

from game.rules.grid import Grid
from game.rules.pathfinding import reachable
from game.rules.snapshot import Snapshot
from game.rules.steps import MoveTo, Step, TakeCover
from planner.cache import adapt_steps, anchor_of
from planner.core import CachedPlan, validate_plan_steps
from planner.intents import intent_of


def adapted_plan(plan: CachedPlan, snap: Snapshot, grid: Grid) -> CachedPlan | None:
    """A situation hit moved to this agent (planner/cache.py's `adapt_steps`) and validated
    on its snapshot, or None (a rejected hit). Stricter than an LLM's answer: every tile
    the adapted plan moves to must be reachable from where the agent stands, since it was
    chosen for someone else's ground; a tile that is not (a wall here) becomes the nearest
    one that is, at most `SNAP_TILES` away (a cover step: the agent's nearest cover tile)."""
    if plan.anchor is None:
        return None
    here = (snap.me.x, snap.me.y)
    moved: list[Step] = []
    steps = adapt_steps(plan.steps, plan.anchor, snap)
    if steps is None:
        return None
    for step in steps:
        if isinstance(step, MoveTo | TakeCover):
            tile = _reachable_near(grid, snap, here, (step.x, step.y), isinstance(step, TakeCover))
            if tile is None:
                return None
            step = step.model_copy(update={"x": tile[0], "y": tile[1]})
        moved.append(step)
    if not moved:
        return None
    checked = validate_plan_steps(tuple(moved), snap, grid, plan.tier)
    if not checked:
        return None
    # the stored intent named the other agent's targets and tiles: say this plan's own
    intent = intent_of(checked, snap) if plan.intent is not None else None
    return CachedPlan(checked, plan.tier, anchor_of(snap), intent)


SNAP_TILES = 2
"""How far an adapted move may be shifted to a tile this agent can reach."""


def _reachable_near(
    grid: Grid, snap: Snapshot, here: tuple[int, int], tile: tuple[int, int], cover: bool
) -> tuple[int, int] | None:
    """`tile` if reachable from `here`, else the nearest reachable tile within SNAP_TILES
    (Chebyshev, then y, x), among the agent's cover tiles for a cover step."""
    x, y = tile
    if cover:
        candidates = [c for c in snap.cover if max(abs(c[0] - x), abs(c[1] - y)) <= SNAP_TILES]
    else:
        r = SNAP_TILES
        candidates = [(x + dx, y + dy) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    candidates.sort(key=lambda c: (max(abs(c[0] - x), abs(c[1] - y)), c[1], c[0]))
    for c in candidates:
        if grid.in_bounds(*c) and grid.walkable(*c) and reachable(grid, here, c):
            return c
    return None
