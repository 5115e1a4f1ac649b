"""Steps the world made stale vs steps illegal as planned, and retargeting after a kill.

A step refused when it comes to start is *stale* if the unit it names fell or moved
since the plan was given, and *illegal* otherwise; an Attack or Approach whose enemy
fell turns on the next enemy at once (checked like any step) instead of idling.
"""

from __future__ import annotations

import random

from game.rules.actions import ROLE_STATS
from game.rules.scenarios import parse
from game.rules.steps import Attack, MoveTo, Wait
from game.rules.world import World


class AlwaysHit(random.Random):
    def random(self) -> float:
        return 0.0


def world_of(text: str) -> World:
    return World(parse(text, "t.txt"), AlwaysHit(0), turn_limit=100)


def run(w: World, ticks: int) -> None:
    for _ in range(ticks):
        w.step_tick()


# 1 = blue rifleman (1,1), 2 = red scout (5,1), 3 = red rifleman (12,1), 4 = red scout (5,3)
FIELD = """\
##############
#r...S......R#
#............#
#....S.......#
##############
"""


def test_attack_on_a_fallen_enemy_turns_on_the_next_one_within_the_turn() -> None:
    w = world_of(FIELD)
    w.units[2].hp = 1  # the first shot kills it
    w.assign_plan(1, [Attack(target_id=2)] * 3)
    for uid in (2, 3, 4):
        w.assign_plan(uid, [Wait()] * 3)
    run(w, 6)  # three Attacks of 2 ticks: one turn's plan, well within the turn
    assert w.units[2].dead
    # The rifleman 3 is out of range: the Attacks turn on the scout 4.
    assert w.units[4].hp == ROLE_STATS["scout"].hp - 2 * ROLE_STATS["rifleman"].damage
    assert w.units[3].hp == ROLE_STATS["rifleman"].hp
    assert w.retargeted_by_squad["blue"] == 1
    assert w.stale_by_squad["blue"] == 0 and w.illegal_by_squad["blue"] == 0
    assert w.actions_by_squad["blue"] == {"Attack": 3}


def test_a_fallen_target_with_no_one_else_in_reach_is_stale() -> None:
    w = world_of("###########\n#r...S....#\n#########.#\n#R........#\n###########\n")
    w.units[2].hp = 1
    w.assign_plan(1, [Attack(target_id=2), Attack(target_id=2)])
    run(w, 3)
    assert w.units[2].dead
    refused = [r for r in w.refusals if r.unit_id == 1]
    assert [(r.act, r.code, r.stale) for r in refused] == [("Attack", "not_visible", True)]
    assert w.stale_by_squad["blue"] == 1 and w.illegal_by_squad["blue"] == 0


def test_a_target_that_walked_out_of_sight_makes_the_step_stale() -> None:
    w = world_of("#################\n#r.....R........#\n#################\n")
    w.assign_plan(2, [MoveTo(x=15, y=1)])  # the red rifleman walks away
    w.assign_plan(1, [Wait(), Attack(target_id=2)])  # blue shoots after waiting 4 ticks
    run(w, 6)
    refused = [r for r in w.refusals if r.unit_id == 1]
    assert [(r.code, r.stale) for r in refused] == [("not_visible", True)]
    assert w.stale_by_squad == {"blue": 1, "red": 0}


def test_an_attack_out_of_range_as_planned_is_illegal() -> None:
    w = world_of("###########\n#r.......R#\n###########\n")  # in sight, not in range
    w.assign_plan(1, [Attack(target_id=2)])
    run(w, 1)
    assert [(r.code, r.stale) for r in w.refusals] == [("out_of_range", False)]
    assert w.illegal_by_squad == {"blue": 1, "red": 0}
    assert w.invalid_steps == 1 and w.stale_by_squad == {"blue": 0, "red": 0}
