"""Every action's effect and its refusals, through the live World."""

from __future__ import annotations

import random

import pytest

from game.rules import actions
from game.rules.actions import check_step
from game.rules.effects import hit_chance
from game.rules.scenarios import parse
from game.rules.state import Died, Explosion, Healed, Shot, SmokePlaced
from game.rules.steps import (
    AoEAttack,
    Approach,
    Attack,
    Block,
    Distract,
    Heal,
    MarkTarget,
    MoveTo,
    Reload,
    Retreat,
    Scan,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
    Wait,
)
from game.rules.world import World

# id 1 = blue rifleman (1,1), id 2 = red rifleman (7,1), id 3 = blue medic (1,4)
ARENA = """\
############
#r.....R...#
#..........#
#..+.......#
#m.........#
#....#.....#
#..~.......#
############
"""


class FixedRandom(random.Random):
    """Every roll returns `value`: 0.0 always hits, 0.999 always misses."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


RIFLE_HP = actions.ROLE_STATS["rifleman"].hp


def world_of(text: str = ARENA, roll: float | None = None) -> World:
    rng: random.Random = FixedRandom(roll) if roll is not None else random.Random(0)
    return World(parse(text, "t.txt"), rng, turn_limit=100)


def run(w: World, ticks: int) -> None:
    for _ in range(ticks):
        w.step_tick()


def plan(w: World, uid: int, *steps: Step) -> None:
    w.assign_plan(uid, list(steps))


def refusal(w: World, uid: int, step: Step) -> str | None:
    illegal = check_step(step, w.snapshot_of(uid), w.grid)
    return None if illegal is None else illegal.message


def refusal_code(w: World, uid: int, step: Step) -> str | None:
    illegal = check_step(step, w.snapshot_of(uid), w.grid)
    return None if illegal is None else illegal.code


# ---------------------------------------------------------------- walking
def test_move_to_walks_one_tile_per_tick() -> None:
    w = world_of()
    plan(w, 1, MoveTo(x=4, y=1))
    run(w, 1)
    assert w.units[1].pos == (2, 1) and w.units[1].posture == "moving"
    run(w, 2)
    assert w.units[1].pos == (4, 1)
    run(w, 1)
    assert w.units[1].posture == "idle" and w.units[1].active is None


@pytest.mark.parametrize(
    ("step", "reason", "code"),
    [
        (MoveTo(x=5, y=5), "tile (5,5) is wall", "impassable"),
        (MoveTo(x=3, y=6), "tile (3,6) is water", "impassable"),
        (MoveTo(x=40, y=1), "tile (40,1) out of bounds", "out_of_bounds"),
        (MoveTo(x=1, y=1), "already at (1,1)", "already_there"),
        (TakeCover(x=2, y=2), "tile (2,2) is not cover", "not_cover"),
    ],
)
def test_move_refusals(step: Step, reason: str, code: str) -> None:
    w = world_of()
    assert refusal(w, 1, step) == reason
    assert refusal_code(w, 1, step) == code


def test_move_refused_when_no_path() -> None:
    w = world_of("#######\n#r#...#\n###.R.#\n#######\n")
    assert refusal(w, 1, MoveTo(x=3, y=1)) == "no path to (3,1)"


def test_take_cover_moves_and_takes_cover_status() -> None:
    w = world_of()
    plan(w, 1, TakeCover(x=3, y=3))
    run(w, 3)
    u = w.units[1]
    assert u.pos == (3, 3) and u.posture == "cover"
    assert w.unit_status(u).startswith("cover")
    run(w, 5)
    assert u.posture == "cover"  # the status persists while it stays


def test_take_cover_refused_when_occupied() -> None:
    w = world_of()
    w.units[3].x, w.units[3].y = 3, 3
    w.touch()
    assert refusal(w, 1, TakeCover(x=3, y=3)) == "cover (3,3) occupied by unit 3"


def test_cover_lowers_hit_chance() -> None:
    w = world_of()
    shooter, target = w.units[2], w.units[1]
    open_ground = hit_chance(w, shooter, target, 0.75)
    target.x, target.y = 3, 3  # a cover tile
    shooter.x, shooter.y = 9, 3  # same distance
    on_cover = hit_chance(w, shooter, target, 0.75)
    target.posture = "cover"
    in_cover = hit_chance(w, shooter, target, 0.75)
    assert open_ground > on_cover > in_cover


def test_approach_stops_when_it_can_shoot() -> None:
    w = world_of("##############\n#s..........R#\n##############\n")
    plan(w, 1, Approach(target_id=2))
    run(w, 10)
    scout = w.units[1]
    assert scout.pos == (6, 1)  # range 6 reached after 5 tiles
    assert scout.active is None


def test_approach_an_ally_stops_adjacent() -> None:
    w = world_of()
    plan(w, 3, Approach(target_id=1))
    run(w, 6)
    assert w.units[3].pos == (1, 2)


def test_retreat_moves_away() -> None:
    w = world_of()
    w.units[1].x = 5
    w.touch()
    before = abs(w.units[1].x - w.units[2].x)
    plan(w, 1, Retreat(target_id=2))
    run(w, 6)
    after = max(abs(w.units[1].x - 7), abs(w.units[1].y - 1))
    assert after > before
    assert w.units[1].active is None  # stops after RETREAT_MAX_TILES


# ---------------------------------------------------------------- fighting
def test_attack_hit_costs_ammo_and_deals_damage() -> None:
    w = world_of(roll=0.0)
    plan(w, 1, Attack(target_id=2))
    run(w, 1)
    assert w.units[2].hp == RIFLE_HP - 25
    assert w.units[1].ammo == 7
    shots = [e for e in w.effects if isinstance(e, Shot)]
    assert shots == [Shot(0, 1, 2, (1, 1), (7, 1), True, 25)]


def test_attack_miss() -> None:
    w = world_of(roll=0.999)
    plan(w, 1, Attack(target_id=2))
    run(w, 1)
    assert w.units[2].hp == RIFLE_HP
    assert [e.hit for e in w.effects if isinstance(e, Shot)] == [False]


def test_attack_refusals() -> None:
    w = world_of()
    assert refusal(w, 1, Attack(target_id=99)) == "target 99 not visible"
    assert refusal(w, 1, Attack(target_id=3)) == "target 3 is an ally"
    assert refusal(w, 1, Attack(target_id=1)) == "cannot target self"
    w.units[1].ammo = 0
    assert refusal(w, 1, Attack(target_id=2)) == "no ammo"
    far = world_of("##########\n#m......R#\n##########\n")  # 7 tiles: seen, out of range
    assert refusal(far, 1, Attack(target_id=2)) == "target 2 out of range 5"


def test_attack_needs_own_line_of_sight() -> None:
    # The scout (3) sees the red rifleman (2); the wall hides it from rifleman 1.
    w = world_of("#######\n#r#...#\n#.#.R.#\n#s....#\n#######\n")
    assert 2 in w.visible_enemy_ids("blue")
    assert refusal(w, 1, Attack(target_id=2)) == "no line of sight to target 2"
    assert refusal(w, 3, Attack(target_id=2)) is None


def test_aoe_attack_hits_the_area_and_costs_ammo() -> None:
    w = world_of("############\n#r.....RR..#\n#......R...#\n############\n", roll=0.0)
    plan(w, 1, AoEAttack(x=7, y=1))
    run(w, 1)
    assert w.units[1].ammo == 8 - actions.AOE_AMMO
    assert [w.units[i].hp for i in (2, 3, 4)] == [RIFLE_HP - 15] * 3
    w.units[1].ammo = 2
    assert refusal(w, 1, AoEAttack(x=7, y=1)) == "not enough ammo (need 3, have 2)"


def test_throw_explosive_damages_centre_and_ring() -> None:
    w = world_of("############\n#h....RR...#\n#.....R....#\n############\n")
    plan(w, 1, ThrowExplosive(x=6, y=1))
    run(w, 1)
    assert w.units[1].grenades == 1
    assert w.units[2].hp == RIFLE_HP - actions.EXPLOSIVE_DAMAGE
    ring = actions.EXPLOSIVE_DAMAGE * 2 // 3
    assert w.units[3].hp == RIFLE_HP - ring and w.units[4].hp == RIFLE_HP - ring
    assert any(isinstance(e, Explosion) for e in w.effects)


def test_throw_refusals() -> None:
    w = world_of()
    assert refusal(w, 1, ThrowExplosive(x=9, y=1)) == "tile (9,1) out of throw range 6"
    assert refusal(w, 1, ThrowSmoke(x=5, y=5)) == "tile (5,5) is a wall"
    assert refusal(w, 1, ThrowSmoke(x=0, y=99)) == "tile (0,99) out of bounds"
    w.units[1].grenades = 0
    assert refusal(w, 1, ThrowExplosive(x=4, y=1)) == "no grenades left"


def test_smoke_blocks_sight_then_clears() -> None:
    w = world_of()
    assert 2 in w.visible_enemy_ids("blue")
    plan(w, 1, ThrowSmoke(x=4, y=1))
    run(w, 1)
    assert (4, 1) in w.smoke and (3, 2) in w.smoke
    assert any(isinstance(e, SmokePlaced) for e in w.effects)
    assert 2 not in w.visible_enemy_ids("blue")
    assert refusal(w, 1, Attack(target_id=2)) == "target 2 not visible"
    run(w, actions.SMOKE_TICKS)
    assert not w.smoke
    assert 2 in w.visible_enemy_ids("blue")


def test_mark_target_raises_damage_and_hit_chance() -> None:
    w = world_of(roll=0.0)
    before = hit_chance(w, w.units[1], w.units[2], 0.75)
    plan(w, 3, MarkTarget(target_id=2))
    run(w, 1)
    assert "marked" in w.unit_status(w.units[2])
    assert hit_chance(w, w.units[1], w.units[2], 0.75) > before
    plan(w, 1, Attack(target_id=2))
    run(w, 1)
    assert w.units[2].hp == RIFLE_HP - round(25 * 1.5)


def test_distract_costs_the_target_its_action() -> None:
    w = world_of()
    plan(w, 2, MoveTo(x=10, y=1), Wait())
    plan(w, 1, Distract(target_id=2))
    run(w, 1)
    red = w.units[2]
    assert red.pos == (7, 1) and "distracted" in w.unit_status(red)
    run(w, actions.DISTRACT_TICKS)
    assert red.pos == (7, 1)  # the MoveTo was lost
    assert red.active is not None and red.active.step == Wait()
    far = world_of("##############\n#s..........R#\n##############\n")
    assert refusal(far, 1, Distract(target_id=2)) == "target 2 out of distract range 7"


def test_reload_takes_three_ticks() -> None:
    w = world_of()
    assert refusal(w, 1, Reload()) == "ammo already full"
    w.units[1].ammo = 0
    plan(w, 1, Reload())
    run(w, 2)
    assert w.units[1].ammo == 0 and w.units[1].posture == "reloading"
    run(w, 1)
    assert w.units[1].ammo == 8


def test_scan_extends_sight() -> None:
    w = world_of("###############\n#r...........R#\n###############\n")
    assert w.snapshot_of(1).enemies == ()
    plan(w, 1, Scan())
    run(w, 1)
    assert [e.id for e in w.snapshot_of(1).enemies] == [2]
    run(w, actions.SCAN_TICKS + 1)
    assert w.snapshot_of(1).enemies == ()


def test_wait_holds_for_its_duration() -> None:
    w = world_of()
    plan(w, 1, Wait(), MoveTo(x=2, y=1))
    run(w, actions.DURATION["Wait"])
    assert w.units[1].pos == (1, 1)
    run(w, 1)
    assert w.units[1].pos == (2, 1)


def test_block_halves_damage_and_holds_the_corridor_while_it_lasts() -> None:
    corridor = "#######\n#r..R.#\n#######\n"
    w = world_of(corridor, roll=0.0)
    plan(w, 2, Block())
    plan(w, 1, MoveTo(x=3, y=1))
    run(w, 3)
    assert w.units[2].posture == "blocking"
    assert w.units[1].pos == (2, 1)  # (3,1) is next to the blocker: cannot enter
    run(w, 2)  # Block lasts 4 ticks, then the corridor is open again
    assert w.units[2].posture == "idle"
    plan(w, 1, MoveTo(x=3, y=1))
    run(w, 1)
    assert w.units[1].pos == (3, 1)
    shot = world_of(corridor, roll=0.0)
    plan(shot, 2, Block())
    run(shot, 1)
    plan(shot, 1, Attack(target_id=2))
    run(shot, 1)
    assert shot.units[2].hp == RIFLE_HP - round(25 * 0.5)


def test_heal_most_hurt_adjacent_medic_heals_more() -> None:
    # ids: 1 blue rifleman (1,1), 2 blue medic (2,1), 3 red (4,1), 4 blue rifleman (2,2)
    w = world_of("#######\n#rm.R.#\n#.r...#\n#######\n")
    assert refusal(w, 2, Heal()) == "nothing to heal (no hurt unit adjacent or self)"
    w.units[1].hp = RIFLE_HP // 2 + 10
    w.units[4].hp = 30
    plan(w, 2, Heal())
    run(w, 1)
    assert w.units[4].hp == 30 + actions.ROLE_STATS["medic"].heal
    assert w.units[1].hp == RIFLE_HP // 2 + 10
    assert any(isinstance(e, Healed) and e.unit_id == 4 for e in w.effects)
    # A rifleman only dresses its own wounds, and only up to half health.
    assert refusal(w, 1, Heal()) == "only a medic heals others or above half health"
    w.units[1].hp = RIFLE_HP // 2 - 5
    plan(w, 1, Heal())
    run(w, 1)
    assert w.units[1].hp == RIFLE_HP // 2


# ---------------------------------------------------------------- bookkeeping
def test_illegal_step_is_counted_recorded_and_skipped() -> None:
    w = world_of()
    plan(w, 1, Attack(target_id=99), MoveTo(x=5, y=5), MoveTo(x=2, y=1))
    run(w, 1)
    assert w.invalid_steps == 2 and w.invalid_by_squad["blue"] == 2
    assert [(r.unit_id, r.act, r.code, r.reason) for r in w.refusals] == [
        (1, "Attack", "not_visible", "target 99 not visible"),
        (1, "MoveTo", "impassable", "tile (5,5) is wall"),
    ]
    assert w.units[1].pos == (2, 1)  # moved on to the next step in the same tick


def test_assign_plan_replaces_the_queue_mid_walk() -> None:
    w = world_of()
    plan(w, 1, MoveTo(x=10, y=1))
    run(w, 2)
    plan(w, 1, MoveTo(x=3, y=3))
    run(w, 5)
    assert w.units[1].pos == (3, 3)


def test_deaths_resolve_at_tick_end_so_both_shots_land() -> None:
    w = world_of("#######\n#r...R#\n#######\n", roll=0.0)
    w.units[1].hp = w.units[2].hp = 10
    plan(w, 1, Attack(target_id=2))
    plan(w, 2, Attack(target_id=1))
    run(w, 1)
    assert w.units[1].dead and w.units[2].dead
    assert sorted(e.unit_id for e in w.effects if isinstance(e, Died)) == [1, 2]
    assert w.winner == "draw"


def test_effects_are_pruned() -> None:
    w = world_of(roll=0.999)
    plan(w, 1, Attack(target_id=2))
    run(w, 1)
    assert w.effects
    run(w, 10)
    assert w.effects == []


def test_step_that_is_not_a_step_is_refused_not_crashed() -> None:
    w = world_of()
    assert refusal(w, 1, "nonsense") == "unknown action '?'"  # type: ignore[arg-type]
