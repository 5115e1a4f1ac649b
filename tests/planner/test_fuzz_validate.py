"""Fuzzing validation: arbitrary steps (every action, arbitrary ints) against real
snapshots and grids. It never raises; every step is either kept or dropped with a
reason; the first kept step passes the world's own legality check; nothing outside the
tier's tools is kept."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from game.match.maps import load
from game.rules.actions import check_step
from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.steps import (
    FULL_TOOLS,
    MAX_STEPS,
    POSITION_ACTS,
    SIMPLE_ACTS,
    SIMPLIFIED_TOOLS,
    TARGET_ACTS,
    MoveTo,
    Step,
)
from planner.schema import AgentPlan
from planner.validate import validate_plan
from tests.planning_helpers import squad_snapshots

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCENARIOS = ("village", "skirmish", "siege")


@functools.cache
def world_views(scenario: str) -> tuple[Grid, tuple[Snapshot, ...]]:
    return load(scenario).grid, squad_snapshots(scenario, "red") + squad_snapshots(scenario, "blue")


def any_int(near: list[int]) -> st.SearchStrategy[int]:
    """Arbitrary ints, weighted towards values that mean something on this map."""
    return st.one_of(st.integers(), st.integers(-3, 40), st.sampled_from(near))


@st.composite
def situation(draw: st.DrawFn) -> tuple[Grid, Snapshot, list[Step], int]:
    grid, snaps = world_views(draw(st.sampled_from(SCENARIOS)))
    snap = draw(st.sampled_from(snaps))
    ids = [snap.me.id, *(u.id for u in (*snap.allies, *snap.enemies))]
    coords = [snap.me.x, snap.me.y, *(u.x for u in snap.enemies), *(u.y for u in snap.enemies)]
    kinds: list[st.SearchStrategy[Any]] = [
        st.builds(cls, x=any_int(coords), y=any_int(coords)) for cls in POSITION_ACTS
    ]
    kinds += [st.builds(cls, target_id=any_int(ids)) for cls in TARGET_ACTS]
    kinds += [st.builds(cls) for cls in SIMPLE_ACTS]
    steps = draw(st.lists(st.one_of(kinds), min_size=1, max_size=MAX_STEPS))
    agent_id = draw(st.one_of(st.just(snap.me.id), any_int(ids)))
    return grid, snap, steps, agent_id


@FUZZ
@given(situation(), st.sampled_from([FULL_TOOLS, SIMPLIFIED_TOOLS]))
def test_validation_never_raises_and_accounts_for_every_step(
    case: tuple[Grid, Snapshot, list[Step], int], tools: frozenset[str]
) -> None:
    grid, snap, steps, agent_id = case
    checked = validate_plan(AgentPlan(agent_id=agent_id, steps=tuple(steps)), snap, grid, tools)

    assert checked.agent_id == snap.me.id
    assert checked.valid == bool(checked.steps)
    assert len(checked.steps) + len(checked.dropped) == len(steps)
    for dropped in checked.dropped:
        assert dropped.reason, "a dropped step says why"
        assert dropped.step == steps[dropped.index]
    if agent_id != snap.me.id:
        assert not checked.steps, "a plan for another agent keeps nothing"
        return

    repaired = {r.index: r for r in checked.repaired}
    dropped_at = {d.index for d in checked.dropped}
    kept_at = [i for i in range(len(steps)) if i not in dropped_at]
    assert len(kept_at) == len(checked.steps)
    for index, step in zip(kept_at, checked.steps, strict=True):
        assert step.act in tools
        if index in repaired:  # a MoveTo onto a wall, moved to a walkable tile near it
            assert isinstance(step, MoveTo) and grid.walkable(step.x, step.y)
            assert repaired[index].step == steps[index]
        else:
            assert step == steps[index]
    if checked.steps:
        assert check_step(checked.steps[0], snap, grid) is None, "the first step is legal now"
