"""One test per rule bug the fair-game review found; each failed on the old rules.

Maps: lowercase letters are blue, uppercase red (r rifleman, m medic, s scout, h heavy),
ids in reading order; `#` wall, `+` low cover, `.` floor.
"""

from __future__ import annotations

import random

from game.rules.actions import DURATION, ROLE_STATS, check_step
from game.rules.effects import hit_chance
from game.rules.scenarios import parse
from game.rules.sight import line_of_sight
from game.rules.steps import (
    AoEAttack,
    Attack,
    Block,
    Distract,
    Heal,
    MarkTarget,
    MoveTo,
    Reload,
    Step,
    ThrowExplosive,
    ThrowSmoke,
)
from game.rules.world import World


class Rolls(random.Random):
    """Every roll returns `value`: 0.0 always hits."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def world(text: str, roll: float | None = None) -> World:
    rng: random.Random = Rolls(roll) if roll is not None else random.Random(0)
    return World(parse(text, "t.txt"), rng, turn_limit=100)


def code(w: World, uid: int, step: Step) -> str | None:
    illegal = check_step(step, w.snapshot_of(uid), w.grid)
    return None if illegal is None else illegal.code


def run(w: World, ticks: int) -> None:
    for _ in range(ticks):
        w.step_tick()


def test_1_smoke_hides_both_ways() -> None:
    w = world("#########\n#r.....R#\n#########\n")
    w.place_smoke([(1, 1)])  # the blue rifleman stands on the edge of a cloud
    assert w.visible_enemy_ids("blue") == frozenset()
    assert w.visible_enemy_ids("red") == frozenset()
    assert code(w, 1, Attack(target_id=2)) == "not_visible"


def test_2_mark_and_distract_need_the_actors_own_sight_and_range() -> None:
    # Blue rifleman 1 is behind a wall; blue scout 2 sees the red rifleman 3 for the squad.
    w = world("#########\n#r#.....#\n###.....#\n#s....R.#\n#########\n")
    assert 3 in w.visible_enemy_ids("blue")
    assert code(w, 1, MarkTarget(target_id=3)) == "no_line_of_sight"
    assert code(w, 1, Distract(target_id=3)) == "no_line_of_sight"
    assert code(w, 2, MarkTarget(target_id=3)) is None
    far = world("#" * 14 + "\n#s..........R#\n" + "#" * 14 + "\n")
    assert code(far, 1, MarkTarget(target_id=2)) == "out_of_range"


def test_3_healing_is_a_medics_job_and_slower_than_a_rifle() -> None:
    w = world("#######\n#r.R..#\n#######\n")
    w.units[1].hp = ROLE_STATS["rifleman"].hp // 2 - 30  # six dressings would pass half
    w.assign_plan(1, [Heal()] * 6)
    run(w, 6 * DURATION["Heal"])
    assert w.units[1].hp == ROLE_STATS["rifleman"].hp // 2  # a dressing, not a full heal
    assert code(w, 1, Heal()) == "not_a_medic"
    medic = ROLE_STATS["medic"].heal / DURATION["Heal"]
    rifle = ROLE_STATS["rifleman"].damage * ROLE_STATS["rifleman"].accuracy / DURATION["Attack"]
    assert medic < rifle


def test_4_block_ends_with_its_step() -> None:
    w = world("#######\n#r...R#\n#######\n")
    w.assign_plan(1, [Block()])
    run(w, 1)
    assert w.units[1].posture == "blocking"
    run(w, DURATION["Block"])
    assert w.units[1].posture == "idle"
    assert w.zone_of_control("red") == set()


def test_5_shooting_from_cover_keeps_the_cover_and_cover_faces_away() -> None:
    w = world("#########\n#r.....R#\n#########\n", roll=0.0)
    w.units[1].posture = "cover"
    w.assign_plan(1, [Attack(target_id=2)])
    run(w, 1)
    assert w.units[1].posture == "cover"  # still in cover after shooting from it
    far = hit_chance(w, w.units[2], w.units[1], 0.75)
    w.units[2].x = 2  # the enemy walks up beside it
    near = hit_chance(w, w.units[2], w.units[1], 0.75)
    assert near > 2 * far  # flanked: the cover no longer helps


def test_6_a_new_plan_lets_a_reload_finish() -> None:
    w = world("#######\n#r...R#\n#######\n")
    w.units[1].ammo = 0
    w.assign_plan(1, [Reload()])
    run(w, 1)
    w.assign_plan(1, [MoveTo(x=2, y=1)])  # a new plan mid-reload
    run(w, DURATION["Reload"])
    assert w.units[1].ammo == ROLE_STATS["rifleman"].ammo
    assert w.units[1].pos == (2, 1)  # and the new plan ran after it


def test_7_explosives_not_at_ones_feet_nor_over_walls_and_aoe_spares_allies() -> None:
    w = world("#########\n#r..#...#\n#...#.R.#\n#########\n")
    w.units[1].grenades = 2
    assert code(w, 1, ThrowExplosive(x=1, y=1)) == "too_close"
    assert code(w, 1, ThrowExplosive(x=2, y=1)) == "too_close"
    assert code(w, 1, ThrowExplosive(x=6, y=2)) == "no_line_of_sight"
    assert code(w, 1, ThrowSmoke(x=6, y=2)) == "no_line_of_sight"
    assert code(w, 1, ThrowExplosive(x=3, y=2)) is None
    allies = world("#########\n#h.rR...#\n#########\n", roll=0.0)
    assert code(allies, 1, AoEAttack(x=3, y=1)) is None
    run(allies, 1)
    allies.assign_plan(1, [AoEAttack(x=3, y=1)])
    run(allies, 1)
    assert allies.units[2].hp == ROLE_STATS["rifleman"].hp  # the blue rifleman is spared
    assert allies.units[3].hp < ROLE_STATS["rifleman"].hp  # the red one is not


def test_8_sight_does_not_squeeze_between_diagonal_walls() -> None:
    gap = parse("#####\n#.#R#\n##r.#\n#####\n", "t.txt").grid
    # (1,1) -> (2,2): the diagonal step squeezes between the walls at (2,1) and (1,2).
    assert not line_of_sight(gap, (), (1, 1), (2, 2))
    assert not line_of_sight(gap, (), (2, 2), (1, 1))
    assert line_of_sight(gap, (), (2, 2), (3, 1))  # one open side is enough
