"""Validation: illegal steps dropped with reasons; nothing that may become legal."""

from __future__ import annotations

from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.steps import (
    FULL_TOOLS,
    SIMPLIFIED_TOOLS,
    Approach,
    Attack,
    Heal,
    MarkTarget,
    MoveTo,
    Reload,
    Scan,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
    Wait,
)
from planner.schema import AgentPlan
from planner.validate import ValidatedPlan, legal_steps, validate_plan
from tests.factories import snapshot, unit

GRID = Grid.from_strings(
    [
        "..........",
        "..+.......",
        "....###...",
        "....~~....",
        "..........",
    ]
)


def snap(**me: int) -> Snapshot:
    """Unit 1 at (1, 1) with 4 of 8 rounds and a grenade (unless `me` says otherwise),
    an ally, and one enemy in sight."""
    kit = {"ammo": 4, "grenades": 1}
    return snapshot(
        unit(1, 1, 1, **{**kit, **me}),
        width=GRID.width,
        height=GRID.height,
        allies=(unit(2, 0, 0, **kit),),
        enemies=(unit(9, 4, 1, squad="blue", **kit),),
        cover=((2, 1),),
    )


def check(steps: list[Step], tools: frozenset[str] = FULL_TOOLS, **me: int) -> ValidatedPlan:
    return validate_plan(AgentPlan(agent_id=1, steps=tuple(steps)), snap(**me), GRID, tools)


def test_legal_plan_is_kept_whole() -> None:
    steps: list[Step] = [TakeCover(x=2, y=1), Attack(target_id=9), Reload(), Scan()]
    result = check(steps)
    assert result.valid and result.cause is None
    assert result.steps == tuple(steps) and result.dropped == ()


def test_first_step_is_judged_fully_against_the_snapshot() -> None:
    result = check([MoveTo(x=1, y=1), Wait()])  # already there
    assert result.steps == (Wait(),)
    assert result.dropped[0].index == 0 and "already at" in result.dropped[0].reason


def test_later_steps_get_only_static_checks() -> None:
    # Out of range now (after moving it may not be), so a later Attack on a known enemy stays;
    # a MoveTo onto the unit's current tile is fine later (it will have moved).
    steps: list[Step] = [MoveTo(x=8, y=4), MoveTo(x=1, y=1), Attack(target_id=9)]
    assert check(steps).steps == tuple(steps)


def test_static_problems_are_dropped_anywhere() -> None:
    steps: list[Step] = [
        Scan(),
        MoveTo(x=5, y=2),  # wall
        MoveTo(x=4, y=3),  # water
        MoveTo(x=10, y=0),  # out of bounds
        TakeCover(x=0, y=4),  # floor, not cover
        ThrowSmoke(x=12, y=0),  # out of bounds
    ]
    result = check(steps)
    # Moves onto wall and water are repaired to a walkable tile nearby, not dropped.
    assert [d.index for d in result.repaired] == [1, 2]
    assert "wall" in result.repaired[0].reason and "water" in result.repaired[1].reason
    assert result.steps[0] == Scan() and len(result.steps) == 3
    assert all(isinstance(s, MoveTo) for s in result.steps[1:])
    assert [d.index for d in result.dropped] == [3, 4, 5]
    reasons = [d.reason for d in result.dropped]
    assert "out of bounds" in reasons[0]
    assert "not cover" in reasons[1] and "out of bounds" in reasons[2]


def test_targets_must_be_known_and_hostile() -> None:
    steps: list[Step] = [
        Scan(),
        Attack(target_id=2),  # ally
        Attack(target_id=1),  # self
        MarkTarget(target_id=77),  # unknown
        Approach(target_id=2),  # approaching an ally is fine
    ]
    result = check(steps)
    assert result.steps == (Scan(), Approach(target_id=2))
    reasons = [d.reason for d in result.dropped]
    assert "ally" in reasons[0] and "self" in reasons[1] and "unknown" in reasons[2]


def test_tools_outside_the_tier_are_dropped() -> None:
    result = check([Heal(), Scan(), ThrowExplosive(x=4, y=1)], SIMPLIFIED_TOOLS, hp=50)
    assert result.steps == (Scan(),)
    assert all("not allowed in this tier" in d.reason for d in result.dropped)


def test_ammo_and_grenades_are_tracked_conservatively() -> None:
    result = check([Scan(), Attack(target_id=9), Reload(), Attack(target_id=9)], ammo=0)
    assert result.steps == (Scan(), Reload(), Attack(target_id=9))
    assert "no ammo" in result.dropped[0].reason
    throws = check([Scan(), ThrowSmoke(x=3, y=3), ThrowSmoke(x=3, y=3)], grenades=1)
    assert throws.steps == (Scan(), ThrowSmoke(x=3, y=3))
    assert throws.dropped[0].reason == "no grenades left"


def test_a_plan_with_no_legal_step_is_invalid() -> None:
    result = check([Attack(target_id=5), MoveTo(x=10, y=0)])  # invisible target, off the map
    assert not result.valid and result.steps == ()
    assert result.cause == "validation_error"
    assert len(result.dropped) == 2


def test_a_plan_for_another_agent_is_invalid() -> None:
    plan = AgentPlan(agent_id=7, steps=(Scan(),))
    result = validate_plan(plan, snap(), GRID, FULL_TOOLS)
    assert result.agent_id == 1 and not result.valid
    assert "agent 7" in result.dropped[0].reason


def test_legal_steps_allows_every_tool() -> None:
    assert legal_steps([Heal(), Scan()], snap(hp=40), GRID) == (Heal(), Scan())


def test_a_move_onto_water_or_wall_is_repaired_to_the_nearest_walkable_tile() -> None:
    import random

    from game.match.maps import load
    from game.rules.steps import MoveTo, Scan
    from game.rules.world import World
    from planner.schema import AgentPlan
    from planner.validate import REPAIR_RADIUS, validate_plan

    scenario = load("village")
    world = World(scenario, random.Random(1))
    unit = next(iter(world.living("red")))
    snap = world.snapshot_of(unit.id)
    grid = scenario.grid
    blocked = next(
        (x, y)
        for y in range(grid.height)
        for x in range(grid.width)
        if not grid.walkable(x, y)
        and any(grid.walkable(x + dx, y + dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy)
    )
    plan = AgentPlan(agent_id=unit.id, steps=(MoveTo(x=blocked[0], y=blocked[1]), Scan()))
    checked = validate_plan(plan, snap, grid, frozenset({"MoveTo", "Scan"}))
    assert checked.valid and not checked.dropped
    fixed = checked.steps[0]
    assert isinstance(fixed, MoveTo) and grid.walkable(fixed.x, fixed.y)
    assert max(abs(fixed.x - blocked[0]), abs(fixed.y - blocked[1])) <= REPAIR_RADIUS
    assert len(checked.repaired) == 1 and "moved to" in checked.repaired[0].reason


def test_an_out_of_bounds_move_is_dropped_not_repaired() -> None:
    import random

    from game.match.maps import load
    from game.rules.steps import MoveTo, Scan
    from game.rules.world import World
    from planner.schema import AgentPlan
    from planner.validate import validate_plan

    scenario = load("village")
    world = World(scenario, random.Random(1))
    unit = next(iter(world.living("red")))
    plan = AgentPlan(agent_id=unit.id, steps=(MoveTo(x=500, y=2), Scan()))
    checked = validate_plan(
        plan, world.snapshot_of(unit.id), scenario.grid, frozenset({"MoveTo", "Scan"})
    )
    assert [d.index for d in checked.dropped] == [0] and not checked.repaired
