"""The rule planner: its rules, its robustness, and that it beats random play."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from game.match.controllers import HeuristicController, RandomController, controller_rng
from game.match.headless import run_match
from game.match.maps import load
from game.rules.heuristic import plan
from game.rules.snapshot import ROLES, Snapshot, UnitView
from game.rules.steps import (
    MAX_STEPS,
    STEP_ADAPTER,
    Approach,
    Attack,
    Heal,
    MoveTo,
    Reload,
    Scan,
    TakeCover,
)
from tests.factories import snapshot, unit


def snap(me: UnitView, *, objective: tuple[int, int] | None = (20, 10), **kw: Any) -> Snapshot:
    """`me` on a 30x20 map at turn 0, the objective at (20, 10) unless told otherwise."""
    return snapshot(me, turn=0, width=30, height=20, objective=objective, **kw)


RNG = random.Random(0)


def test_no_ammo_reloads_first() -> None:
    steps = plan(snap(unit(1, 2, 2, squad="blue", ammo=0)), RNG)
    assert steps[0] == Reload()


def test_badly_hurt_takes_cover() -> None:
    s = snap(
        unit(1, 2, 2, squad="blue", hp=20), enemies=(unit(9, 6, 2, squad="red"),), cover=((3, 3),)
    )
    assert plan(s, RNG)[0] == TakeCover(x=3, y=3)


def test_hurt_without_enemies_heals_self() -> None:
    assert plan(snap(unit(1, 2, 2, squad="blue", hp=20)), RNG)[0] == Heal()


def test_medic_goes_to_heal_hurt_ally() -> None:
    me = unit(1, 2, 2, squad="blue", role="medic", max_hp=80, hp=80)
    s = snap(me, allies=(unit(2, 8, 2, squad="blue", hp=30), unit(3, 3, 3, squad="blue", hp=90)))
    assert plan(s, RNG)[:2] == [Approach(target_id=2), Heal()]


def test_attacks_weakest_enemy_in_range() -> None:
    s = snap(
        unit(1, 2, 2, squad="blue"),
        enemies=(unit(8, 5, 2, squad="red"), unit(9, 6, 2, squad="red", hp=40)),
    )
    steps = plan(s, RNG)
    assert Attack(target_id=9) in steps
    assert all(st.target_id == 9 for st in steps if isinstance(st, Attack))


def test_advances_on_objective_when_nothing_seen() -> None:
    assert plan(snap(unit(1, 2, 2, squad="blue")), RNG)[0] == MoveTo(x=20, y=10)
    assert plan(snap(unit(1, 2, 2, squad="blue"), objective=None), RNG)[0] == Scan()


units = st.builds(
    lambda uid, squad, role, x, y, hp, ammo, gren, status: unit(
        uid, x, y, squad=squad, role=role, hp=hp, ammo=ammo, grenades=gren, status=status
    ),
    st.integers(1, 60),
    st.sampled_from(["blue", "red"]),
    st.sampled_from(ROLES),
    st.integers(0, 40),
    st.integers(0, 30),
    st.integers(0, 100),
    st.integers(0, 8),
    st.integers(0, 3),
    st.sampled_from(["idle", "cover", "moving,marked", "", "blocking"]),
)


@settings(max_examples=200, deadline=None)
@given(
    me=units,
    allies=st.lists(units, max_size=5),
    enemies=st.lists(units, max_size=5),
    cover=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30)), max_size=4),
    objective=st.none() | st.tuples(st.integers(0, 40), st.integers(0, 30)),
    seed=st.integers(0, 1000),
)
def test_plan_never_raises_and_returns_valid_steps(
    me: UnitView,
    allies: list[UnitView],
    enemies: list[UnitView],
    cover: list[tuple[int, int]],
    objective: tuple[int, int] | None,
    seed: int,
) -> None:
    s = snap(
        me, allies=tuple(allies), enemies=tuple(enemies), cover=tuple(cover), objective=objective
    )
    steps = plan(s, random.Random(seed))
    assert 1 <= len(steps) <= MAX_STEPS
    for step in steps:  # each one survives the wire schema
        assert STEP_ADAPTER.validate_python(step.model_dump()) == step


def test_heuristic_beats_random_in_at_least_80_percent() -> None:
    # skirmish, 20-turn limit, 50 seeds, heuristic alternating sides: ~1 s on one core.
    scenario = load("skirmish")
    wins = 0
    for seed in range(50):
        smart = "blue" if seed % 2 == 0 else "red"
        ctl = {
            s: (HeuristicController if s == smart else RandomController)(controller_rng(seed, s))
            for s in ("blue", "red")
        }
        result = run_match(scenario, seed, 20, dict(ctl))
        wins += result.winner == smart
    assert wins >= 40, f"heuristic won only {wins}/50"
