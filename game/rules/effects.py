"""What each of the 15 actions does to the world, one tick at a time.

Timing: a step starts when it reaches the head of a unit's queue, is checked with
`check_step` (the same rule the planner validates with), then runs one tick at a time.
Walking steps (MoveTo, TakeCover, Approach, Retreat) move one tile per tick; the rest
last `DURATION[act]` ticks with their effect on the first tick (Reload's on the last).
A step that has nothing left to do (Approach already in range) ends without using the
tick, so the next step starts at once.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Final

from game.rules.actions import (
    AOE_AMMO,
    AOE_RADIUS,
    APPROACH_MAX_TILES,
    DETOUR_BUDGET,
    DISTRACT_TICKS,
    DURATION,
    EXPLOSIVE_DAMAGE,
    EXPLOSIVE_RADIUS,
    MARK_TICKS,
    PATH_BUDGET,
    POSTURE,
    RETREAT_MAX_TILES,
    SCAN_TICKS,
    SMOKE_RADIUS,
    STUCK_GIVE_UP_TICKS,
    adjacent,
    check_step,
)
from game.rules.grid import COVER, NEIGHBOURS_8, WALL, mirror_tie
from game.rules.pathfinding import downhill_step, find_path
from game.rules.sight import dist2, in_range, line_of_sight
from game.rules.state import (
    ActiveStep,
    AreaFire,
    Arena,
    Explosion,
    Healed,
    Shot,
    SmokePlaced,
    Tile,
    Unit,
)
from game.rules.steps import (
    AoEAttack,
    Approach,
    Attack,
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
)


def act(world: Arena, u: Unit) -> None:
    """Spend this unit's tick: start queued steps (checking each) and advance one."""
    if u.stunned > 0:
        u.stunned -= 1
        return
    # Each started step either uses the tick or ends at once; bounded by the queue.
    for _ in range(len(u.queue) + 1):
        if u.active is None:
            if not u.queue:
                if u.posture in _TRANSIENT:
                    u.posture = "idle"
                return
            step = u.queue.popleft()
            illegal = check_step(step, world.snapshot_of(u.id), world.grid)
            retargeted = False
            if illegal is not None and _target_fell(world, step):
                # Its target fell since the plan: turn on the next enemy at once rather
                # than idle until the next plan (the new step is checked like any other).
                replacement = _retarget(world, u, step)
                if replacement is not None:
                    step, illegal, retargeted = replacement, None, True
            if illegal is not None:
                stale = _made_stale(world, u, step, illegal.code)
                world.refuse(u, step, illegal.code, illegal.message, stale=stale)
                continue
            world.count_start(u, step, retargeted=retargeted)
            u.active = ActiveStep(step)
            if not (u.posture == "cover" and step.act in HOLDS_COVER):
                u.posture = POSTURE[step.act]
        done, used_tick = _advance(world, u, u.active)
        if done:
            u.active = None
            if u.posture in _TRANSIENT:
                u.posture = "idle"
        if used_tick:
            return


RETARGETED: Final = frozenset({"Attack", "Approach"})
"""Steps that turn on the next enemy when theirs falls."""
_MOVED_CODES: Final = frozenset({"out_of_range", "no_line_of_sight", "not_visible"})


def _target_fell(world: Arena, step: Step) -> bool:
    tid = getattr(step, "target_id", None)
    return tid is not None and tid in world.units and world.units[tid].hp <= 0


def _made_stale(world: Arena, u: Unit, step: Step, code: str) -> bool:
    """The world, not the plan, made this step fail: the unit it names fell, or moved
    away since the plan was given, or someone took the cover tile meanwhile."""
    if code == "occupied":
        return True
    tid = getattr(step, "target_id", None)
    if tid is None or tid not in world.units:
        return False
    t = world.units[tid]
    if t.hp <= 0:
        return True
    return code in _MOVED_CODES and u.planned_at.get(tid) != t.pos


def _retarget(world: Arena, u: Unit, step: Step) -> Step | None:
    """The same step on the next enemy, if the fallen target was an enemy: the weakest
    that the step can legally reach, then the nearest (ties mirror-symmetric). Queued
    steps naming the fallen unit follow to the new target."""
    old = getattr(step, "target_id", None)
    if step.act not in RETARGETED or old is None or world.units[old].squad == u.squad:
        return None
    snap = world.snapshot_of(u.id)
    w = world.grid.width
    best: tuple[tuple[int, int, tuple[int, int, int]], int, Step] | None = None
    for e in snap.enemies:
        candidate = step.model_copy(update={"target_id": e.id})
        if check_step(candidate, snap, world.grid) is not None:
            continue
        key = (e.hp, dist2(u.pos, (e.x, e.y)), mirror_tie(e.x, e.y, w, u.squad))
        if best is None or key < best[0]:
            best = (key, e.id, candidate)
    if best is None:
        return None
    _, new_id, new = best
    u.queue = deque(
        s.model_copy(update={"target_id": new_id}) if getattr(s, "target_id", None) == old else s
        for s in u.queue
    )
    u.planned_at[new_id] = world.units[new_id].pos
    return new


_TRANSIENT: Final = frozenset(
    {"moving", "attacking", "throwing", "marking", "distracting", "reloading", "scanning",
     "waiting", "healing", "blocking"}
)  # fmt: skip
"""Postures that end with their step; cover persists until the unit moves."""
HOLDS_COVER: Final = frozenset(
    {"Attack", "AoEAttack", "Reload", "Scan", "Wait", "MarkTarget", "Distract", "Heal",
     "ThrowSmoke", "ThrowExplosive", "Approach"}
)  # fmt: skip
"""Steps done from where the unit stands: a unit in cover stays in cover doing them (an
Approach already in range and sight ends where it stands; its first move leaves cover)."""


def _advance(world: Arena, u: Unit, a: ActiveStep) -> tuple[bool, bool]:
    """Advance one tick. Returns (step finished, tick used)."""
    step = a.step
    match step:
        case MoveTo(x=x, y=y):
            return _walk_to(world, u, a, (x, y), arrive_posture="idle")
        case TakeCover(x=x, y=y):
            return _walk_to(world, u, a, (x, y), arrive_posture="cover")
        case Approach(target_id=tid):
            return _approach(world, u, a, tid)
        case Retreat(target_id=tid):
            return _retreat(world, u, a, tid)
    duration = DURATION[step.act]
    if a.elapsed == 0:
        _apply_instant(world, u, step)
    a.elapsed += 1
    if isinstance(step, Reload) and a.elapsed >= duration:
        u.ammo = u.stats.ammo
    return a.elapsed >= duration, True


def _apply_instant(world: Arena, u: Unit, step: Step) -> None:
    match step:
        case Attack(target_id=tid):
            _attack(world, u, world.units[tid])
        case AoEAttack(x=x, y=y):
            _area_fire(world, u, (x, y))
        case ThrowSmoke(x=x, y=y):
            _smoke(world, u, (x, y))
        case ThrowExplosive(x=x, y=y):
            _explode(world, u, (x, y))
        case MarkTarget(target_id=tid):
            world.units[tid].marked_until = world.tick + MARK_TICKS
        case Distract(target_id=tid):
            t = world.units[tid]
            t.stunned = DISTRACT_TICKS
            # It loses the action it was doing, or else the next one it would start.
            if t.active is not None:
                t.active = None
            elif t.queue:
                t.queue.popleft()
        case Scan():
            u.scan_until = world.tick + SCAN_TICKS
            world.refresh_sight()
        case Heal():
            _heal(world, u)
        case _:
            pass  # Wait, Block, Reload: the posture / duration is the effect


# ---------------------------------------------------------------- combat
def hit_chance(world: Arena, shooter: Unit, target: Unit, base: float) -> float:
    """Base accuracy, minus range falloff, halved-ish by cover, raised by a mark. Cover
    faces away from its own tile: an enemy next to the target has flanked it."""
    d = math.sqrt(dist2(shooter.pos, target.pos))
    p = base - 0.03 * d
    flanked = adjacent(shooter.pos, target.pos)
    if target.posture == "cover" and not flanked:
        p *= 0.45
    elif world.grid.is_cover(*target.pos) and not flanked:
        p *= 0.65
    if world.tick < target.marked_until:
        p += 0.15
    return min(0.95, max(0.05, p))


def damage_taken(world: Arena, target: Unit, base: int) -> int:
    dmg = float(base)
    if world.tick < target.marked_until:
        dmg *= 1.5
    if target.posture == "blocking":
        dmg *= 0.5
    return round(dmg)


def _attack(world: Arena, u: Unit, t: Unit) -> None:
    u.ammo -= 1
    hit = world.rng.random() < hit_chance(world, u, t, u.stats.accuracy)
    dmg = damage_taken(world, t, u.stats.damage) if hit else 0
    world.add_effect(Shot(world.tick, u.id, t.id, u.pos, t.pos, hit, dmg))
    world.damage(t, dmg)


def _area_fire(world: Arena, u: Unit, centre: Tile) -> None:
    u.ammo -= AOE_AMMO
    world.add_effect(AreaFire(world.tick, u.id, u.pos, centre, AOE_RADIUS))
    w = world.grid.width
    # One roll per unit, in mirror_tie order (not id order): a mirrored volley rolls the same.
    near = sorted(
        _units_near(world, centre, AOE_RADIUS), key=lambda t: mirror_tie(t.x, t.y, w, u.squad)
    )
    for t in near:
        if t.squad == u.squad:
            continue  # suppressing fire is aimed: it spares the shooter's own squad
        if world.rng.random() < hit_chance(world, u, t, 0.55):
            world.damage(t, damage_taken(world, t, round(u.stats.damage * 0.6)))


def _explode(world: Arena, u: Unit, centre: Tile) -> None:
    u.grenades -= 1
    world.add_effect(Explosion(world.tick, u.id, centre, EXPLOSIVE_RADIUS))
    for t in _units_near(world, centre, EXPLOSIVE_RADIUS):
        if t.pos != centre and not line_of_sight(world.grid, (), centre, t.pos):
            continue  # walls shield the blast
        base = EXPLOSIVE_DAMAGE if t.pos == centre else EXPLOSIVE_DAMAGE * 2 // 3
        world.damage(t, damage_taken(world, t, base))


def _smoke(world: Arena, u: Unit, centre: Tile) -> None:
    u.grenades -= 1
    cx, cy = centre
    tiles = tuple(
        (x, y)
        for y in range(cy - SMOKE_RADIUS, cy + SMOKE_RADIUS + 1)
        for x in range(cx - SMOKE_RADIUS, cx + SMOKE_RADIUS + 1)
        if world.grid.in_bounds(x, y) and world.grid.tile(x, y) != WALL
    )
    world.place_smoke(tiles)
    world.add_effect(SmokePlaced(world.tick, u.id, centre, tiles))


def _heal(world: Arena, u: Unit) -> None:
    if u.role != "medic":
        # A field dressing: oneself, and never above half health.
        amount = min(u.stats.heal, u.stats.hp // 2 - u.hp)
        if amount > 0:
            u.hp += amount
            world.add_effect(Healed(world.tick, u.id, u.id, u.pos, amount))
        return
    hurt = [t for t in world.living(u.squad) if adjacent(u.pos, t.pos) and t.hp < t.stats.hp]
    if not hurt:
        return
    # Most hurt = most hp missing; ties by mirror_tie (never by id).
    w = world.grid.width
    t = min(hurt, key=lambda v: (v.hp - v.stats.hp, mirror_tie(v.x, v.y, w, u.squad)))
    amount = min(u.stats.heal, t.stats.hp - t.hp)
    t.hp += amount
    world.add_effect(Healed(world.tick, u.id, t.id, t.pos, amount))


def _units_near(world: Arena, centre: Tile, radius: int) -> list[Unit]:
    cx, cy = centre
    return [t for t in world.living() if max(abs(t.x - cx), abs(t.y - cy)) <= radius]


# ---------------------------------------------------------------- walking
def _blocked_for(world: Arena, u: Unit) -> set[Tile]:
    return world.occupied(exclude=u.id) | world.zone_of_control(u.squad)


def _walk_to(
    world: Arena, u: Unit, a: ActiveStep, goal: Tile, arrive_posture: str
) -> tuple[bool, bool]:
    if u.pos == goal:
        u.posture = arrive_posture
        return True, a.walked == 0 and arrive_posture == "cover"
    blocked = _blocked_for(world, u)
    if goal in blocked and adjacent(u.pos, goal):
        return True, False  # destination taken: this is as close as we get
    nxt: Tile | None = None
    if a.path_goal != goal:
        # Shared goals (the objective) have a cached distance field: walk downhill.
        field = world.shared_field(goal)
        if field is not None:
            nxt = downhill_step(world.grid, field, u.pos, blocked, u.squad)
    elif a.path and a.path[0] not in blocked:
        nxt = a.path.pop(0)  # following this step's own A* path
    if nxt is None:
        # One-off goal, or someone stands in the way: A* around the units.
        detour = a.walked > 0 or a.stuck > 0
        budget = DETOUR_BUDGET if detour else PATH_BUDGET
        path = find_path(world.grid, u.pos, goal, blocked, budget, u.squad)
        if path and path[0] not in blocked:
            nxt = path.pop(0)
            a.path, a.path_goal = path, goal
    if nxt is None:
        a.stuck += 1
        return a.stuck >= STUCK_GIVE_UP_TICKS, True
    world.move_unit(u, nxt)
    a.walked += 1
    a.stuck = 0
    if u.pos == goal:
        u.posture = arrive_posture
        return True, True
    return False, True


def _approach(world: Arena, u: Unit, a: ActiveStep, tid: int) -> tuple[bool, bool]:
    t = world.units[tid]
    if t.hp <= 0 or adjacent(u.pos, t.pos) or a.walked >= APPROACH_MAX_TILES:
        return True, False
    if (
        t.squad != u.squad
        and in_range(u.pos, t.pos, u.stats.range)
        and line_of_sight(world.grid, world.smoke, u.pos, t.pos)
    ):
        return True, False  # close enough to shoot
    blocked = _blocked_for(world, u)
    if not a.path or a.path_goal != t.pos or a.path[0] in blocked:
        budget = DETOUR_BUDGET if a.walked else PATH_BUDGET
        path = find_path(world.grid, u.pos, t.pos, blocked, budget, u.squad)
        if not path or path[0] in blocked or path[0] == t.pos:
            a.stuck += 1
            return a.stuck >= STUCK_GIVE_UP_TICKS, True
        a.path, a.path_goal = path, t.pos
    u.posture = "moving"
    world.move_unit(u, a.path.pop(0))
    a.walked += 1
    a.stuck = 0
    return False, True


def _retreat(world: Arena, u: Unit, a: ActiveStep, tid: int) -> tuple[bool, bool]:
    t = world.units[tid]
    if t.hp <= 0 or a.walked >= RETREAT_MAX_TILES:
        return True, False
    blocked = _blocked_for(world, u)
    best: Tile | None = None
    best_key: tuple[int, int, tuple[int, int, int]] | None = None
    w = world.grid.width
    for dx, dy in NEIGHBOURS_8:
        n = (u.x + dx, u.y + dy)
        if (
            n in blocked
            or not world.grid.walkable(*n)
            or not world.grid.diagonal_ok(u.x, u.y, dx, dy)
            or dist2(n, t.pos) <= dist2(u.pos, t.pos)  # must get strictly farther away
        ):
            continue
        # Farthest, then cover; ties by mirror_tie (smallest first) so neither side of a
        # mirrored map retreats better.
        key = (
            -dist2(n, t.pos),
            0 if world.grid.tile(*n) == COVER else 1,
            mirror_tie(*n, w, u.squad),
        )
        if best_key is None or key < best_key:
            best, best_key = n, key
    if best is None:
        return True, False
    world.move_unit(u, best)
    a.walked += 1
    return False, True
