"""The rule planner uses the whole action set where it makes tactical sense."""

from __future__ import annotations

import random
from typing import Any

from game.match.controllers import HeuristicController
from game.rules.heuristic import plan
from game.rules.scenarios import parse
from game.rules.snapshot import Snapshot, UnitView
from game.rules.steps import (
    AoEAttack,
    Approach,
    Attack,
    Block,
    Distract,
    Heal,
    Reload,
    Retreat,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
    Wait,
)
from game.rules.world import World
from tests.factories import snapshot, unit


def snap(me: UnitView, **kw: Any) -> Snapshot:
    return snapshot(me, turn=0, width=30, height=20, objective=(20, 10), **kw)


class Rolls(random.Random):
    """Every roll returns `value` (0.0: every 'sometimes' choice is taken)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def test_a_medic_in_the_world_heals_a_hurt_ally_next_to_it() -> None:
    w = World(parse("#######\n#rm...#\n#.....#\n#....R#\n#######\n", "t.txt"), random.Random(0))
    w.units[1].hp = 60
    plans = HeuristicController(random.Random(0)).plan_turn(w, "blue")
    assert plans[2][0] == Heal()
    for uid, steps in plans.items():
        w.assign_plan(uid, steps)
    w.step_turn()
    assert w.units[1].hp > 60
    assert w.actions_by_squad["blue"].get("Heal", 0) >= 1


def test_distracts_an_enemy_busy_reloading() -> None:
    me = unit(1, 5, 5, squad="blue")
    busy = unit(2, 9, 5, status="reloading")
    assert plan(snap(me, enemies=[busy]), Rolls(0.9))[0] == Distract(target_id=2)


def test_explosive_at_a_cluster_and_suppressing_fire_without_grenades() -> None:
    cluster = [unit(2, 9, 5), unit(3, 10, 5)]
    me = unit(1, 5, 5, squad="blue", grenades=1)
    assert plan(snap(me, enemies=cluster), Rolls(0.0))[0] == ThrowExplosive(x=9, y=5)
    heavy = unit(1, 5, 5, squad="blue", role="heavy", ammo=10, max_ammo=10)
    assert plan(snap(heavy, enemies=cluster), Rolls(0.0))[0] == AoEAttack(x=9, y=5)


def test_badly_hurt_in_the_open_smokes_and_retreats_or_takes_cover_and_blocks() -> None:
    me = unit(1, 5, 5, squad="blue", hp=20, grenades=1)
    enemy = unit(2, 9, 5)
    assert plan(snap(me, enemies=[enemy]), Rolls(0.9))[:2] == [
        ThrowSmoke(x=5, y=5),
        Retreat(target_id=2),
    ]
    steps = plan(snap(me, enemies=[enemy], cover=[(4, 5)]), Rolls(0.9))
    assert steps[:2] == [TakeCover(x=4, y=5), Block()]


def test_takes_cover_in_reach_of_the_target_then_shoots() -> None:
    me = unit(1, 5, 5, squad="blue")
    enemy = unit(2, 10, 5)
    steps = plan(snap(me, enemies=[enemy], cover=[(6, 6)]), Rolls(0.9))
    assert steps[:3] == [TakeCover(x=6, y=6), Approach(target_id=2), Attack(target_id=2)]


def test_reloads_when_low_with_no_enemy_in_sight_and_holds_the_objective() -> None:
    low = unit(1, 5, 5, squad="blue", ammo=1)
    assert plan(snap(low), Rolls(0.9))[0] == Reload()
    there = unit(1, 20, 11, squad="blue")
    assert plan(snap(there), Rolls(0.9))[-1] == Wait()
    assert plan(snap(there), Rolls(0.0))[-1] == Block()
