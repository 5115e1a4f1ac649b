"""The rules of the 15 actions: one legality check, and what each does to the world.

`check_step(step, snap, grid)` is THE legality rule. It needs only a Snapshot and
the Grid, so the planner validates LLM plans with exactly the rule the world
applies when the step starts (the world builds the unit's snapshot with
`snapshot.take` and calls it too).

Timing: a step starts when it reaches the head of a unit's queue, is checked,
then runs one tick at a time. Walking steps (MoveTo, TakeCover, Approach,
Retreat) move one tile per tick; the rest last `DURATION[act]` ticks with their
effect on the first tick (Reload's on the last). A step that has nothing left
to do (Approach already in range) ends without using the tick, so the next step
starts at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from game.rules import snapshot as snapshot_mod
from game.rules.grid import COVER, NEIGHBOURS_8, WALL, WATER, Grid
from game.rules.pathfinding import downhill_step, find_path, reachable
from game.rules.sight import dist2, in_range, line_of_sight
from game.rules.snapshot import Role, Snapshot, UnitView
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

if TYPE_CHECKING:
    from game.rules.world import ActiveStep, Unit, World

Tile = tuple[int, int]


@dataclass(frozen=True)
class RoleStats:
    hp: int
    ammo: int
    sight: int
    range: int
    damage: int
    accuracy: float
    grenades: int
    heal: int


ROLE_STATS: Final[dict[Role, RoleStats]] = {
    "rifleman": RoleStats(
        hp=100, ammo=8, sight=9, range=7, damage=25, accuracy=0.75, grenades=1, heal=10
    ),
    "scout": RoleStats(
        hp=70, ammo=6, sight=12, range=6, damage=18, accuracy=0.7, grenades=2, heal=10
    ),
    "medic": RoleStats(
        hp=80, ammo=5, sight=8, range=5, damage=15, accuracy=0.6, grenades=1, heal=35
    ),
    "heavy": RoleStats(
        hp=150, ammo=10, sight=8, range=6, damage=35, accuracy=0.6, grenades=2, heal=10
    ),
}

THROW_RANGE: Final = 6
"""Euclidean reach of ThrowSmoke / ThrowExplosive."""
DISTRACT_RANGE: Final = 7
AOE_AMMO: Final = 3
AOE_RADIUS: Final = 1
EXPLOSIVE_RADIUS: Final = 1
EXPLOSIVE_DAMAGE: Final = 36
"""At the centre tile; the ring around it takes two thirds."""
SMOKE_RADIUS: Final = 1
SMOKE_TICKS: Final = 24
MARK_TICKS: Final = 12
DISTRACT_TICKS: Final = 3
SCAN_TICKS: Final = 4
SCAN_SIGHT_BONUS: Final = 4
APPROACH_MAX_TILES: Final = 6
RETREAT_MAX_TILES: Final = 4
STUCK_GIVE_UP_TICKS: Final = 3
PATH_BUDGET: Final = 3000
"""A* expansions allowed when planning a walk (bounds the cost of a hopeless search)."""
DETOUR_BUDGET: Final = 150
"""A* expansions allowed to step around units mid-walk (a detour is local or not worth it)."""

DURATION: Final[dict[str, int]] = {
    "Attack": 2,
    "AoEAttack": 3,
    "ThrowSmoke": 2,
    "ThrowExplosive": 2,
    "MarkTarget": 1,
    "Distract": 2,
    "Reload": 3,
    "Scan": 1,
    "Wait": 4,
    "Block": 4,
    "Heal": 2,
}
"""Ticks each non-walking step lasts."""

POSTURE: Final[dict[str, str]] = {
    "MoveTo": "moving",
    "TakeCover": "moving",
    "Approach": "moving",
    "Retreat": "moving",
    "Attack": "attacking",
    "AoEAttack": "attacking",
    "ThrowSmoke": "throwing",
    "ThrowExplosive": "throwing",
    "MarkTarget": "marking",
    "Distract": "distracting",
    "Reload": "reloading",
    "Scan": "scanning",
    "Wait": "waiting",
    "Block": "blocking",
    "Heal": "healing",
}


# ====================================================================== legality
def check_step(step: Step, snap: Snapshot, grid: Grid) -> str | None:
    """None if `step` is legal for `snap.me` now, else a short reason."""
    me = snap.me
    st = ROLE_STATS[me.role]
    here = (me.x, me.y)
    match step:
        case MoveTo(x=x, y=y):
            return _check_tile(grid, x, y) or _check_reach(grid, here, (x, y), same_ok=False)
        case TakeCover(x=x, y=y):
            bad = _check_tile(grid, x, y)
            if bad:
                return bad
            if not grid.is_cover(x, y):
                return f"tile ({x},{y}) is not cover"
            holder = _known_at(snap, (x, y))
            if holder is not None and holder.id != me.id:
                return f"cover ({x},{y}) occupied by unit {holder.id}"
            return _check_reach(grid, here, (x, y), same_ok=True)
        case ThrowSmoke(x=x, y=y) | ThrowExplosive(x=x, y=y):
            if me.grenades <= 0:
                return "no grenades left"
            if not grid.in_bounds(x, y):
                return f"tile ({x},{y}) out of bounds"
            if grid.tile(x, y) == WALL:
                return f"tile ({x},{y}) is a wall"
            if not in_range(here, (x, y), THROW_RANGE):
                return f"tile ({x},{y}) out of throw range {THROW_RANGE}"
            return None
        case AoEAttack(x=x, y=y):
            if not grid.in_bounds(x, y):
                return f"tile ({x},{y}) out of bounds"
            if me.ammo < AOE_AMMO:
                return f"not enough ammo (need {AOE_AMMO}, have {me.ammo})"
            if not in_range(here, (x, y), st.range):
                return f"tile ({x},{y}) out of range {st.range}"
            if not line_of_sight(grid, snap.smoke, here, (x, y)):
                return f"no line of sight to ({x},{y})"
            return None
        case Attack(target_id=tid):
            bad = _check_enemy(snap, tid)
            if bad:
                return bad
            if me.ammo <= 0:
                return "no ammo"
            t = _enemy(snap, tid)
            if not in_range(here, (t.x, t.y), st.range):
                return f"target {tid} out of range {st.range}"
            if not line_of_sight(grid, snap.smoke, here, (t.x, t.y)):
                return f"no line of sight to target {tid}"
            return None
        case Approach(target_id=tid):
            if tid == me.id:
                return "cannot target self"
            if any(a.id == tid for a in snap.allies):
                return None
            return _check_enemy(snap, tid)
        case Retreat(target_id=tid) | MarkTarget(target_id=tid):
            return _check_enemy(snap, tid)
        case Distract(target_id=tid):
            bad = _check_enemy(snap, tid)
            if bad:
                return bad
            t = _enemy(snap, tid)
            if not in_range(here, (t.x, t.y), DISTRACT_RANGE):
                return f"target {tid} out of distract range {DISTRACT_RANGE}"
            return None
        case Reload():
            return "ammo already full" if me.ammo >= me.max_ammo else None
        case Heal():
            hurt = [
                u for u in (me, *snap.allies) if _adjacent(here, (u.x, u.y)) and u.hp < u.max_hp
            ]
            return None if hurt else "nothing to heal (no hurt unit adjacent or self)"
        case Scan() | Wait() | Block():
            return None
        case _:  # not a Step at all (e.g. built without validation): refuse, never crash
            return f"unknown action {getattr(step, 'act', '?')!r}"  # type: ignore[unreachable]


def _check_tile(grid: Grid, x: int, y: int) -> str | None:
    if not grid.in_bounds(x, y):
        return f"tile ({x},{y}) out of bounds"
    terrain = grid.tile(x, y)
    if terrain in (WALL, WATER):
        return f"tile ({x},{y}) is {terrain}"
    return None


def _check_reach(grid: Grid, here: Tile, goal: Tile, *, same_ok: bool) -> str | None:
    if here == goal:
        return None if same_ok else f"already at ({goal[0]},{goal[1]})"
    return None if reachable(grid, here, goal) else f"no path to ({goal[0]},{goal[1]})"


def _check_enemy(snap: Snapshot, tid: int) -> str | None:
    if tid == snap.me.id:
        return "cannot target self"
    if any(a.id == tid for a in snap.allies):
        return f"target {tid} is an ally"
    if not any(e.id == tid for e in snap.enemies):
        return f"target {tid} not visible"
    return None


def _enemy(snap: Snapshot, tid: int) -> UnitView:
    return next(e for e in snap.enemies if e.id == tid)


def _known_at(snap: Snapshot, tile: Tile) -> UnitView | None:
    for u in (snap.me, *snap.allies, *snap.enemies):
        if (u.x, u.y) == tile:
            return u
    return None


def _adjacent(a: Tile, b: Tile) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= 1


# ====================================================================== effects
def act(world: World, u: Unit) -> None:
    """Spend this unit's tick: start queued steps (checking each) and advance one."""
    from game.rules.world import ActiveStep

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
            reason = check_step(step, snapshot_mod.take(world, u.id), world.grid)
            if reason is not None:
                world.refuse(u, step, reason)
                continue
            u.active = ActiveStep(step)
            u.posture = POSTURE[step.act]
        done, used_tick = _advance(world, u, u.active)
        if done:
            u.active = None
            if u.posture in _TRANSIENT:
                u.posture = "idle"
        if used_tick:
            return


_TRANSIENT: Final = frozenset(
    {"moving", "attacking", "throwing", "marking", "distracting", "reloading", "scanning",
     "waiting", "healing"}
)  # fmt: skip
"""Postures that end with their step; cover and blocking persist until the next step."""


def _advance(world: World, u: Unit, a: ActiveStep) -> tuple[bool, bool]:
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


def _apply_instant(world: World, u: Unit, step: Step) -> None:
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
def hit_chance(world: World, shooter: Unit, target: Unit, base: float) -> float:
    """Base accuracy, minus range falloff, halved-ish by cover, raised by a mark."""
    d = math.sqrt(dist2(shooter.pos, target.pos))
    p = base - 0.03 * d
    if target.posture == "cover":
        p *= 0.45
    elif world.grid.is_cover(*target.pos):
        p *= 0.65
    if world.tick < target.marked_until:
        p += 0.15
    return min(0.95, max(0.05, p))


def damage_taken(world: World, target: Unit, base: int) -> int:
    dmg = float(base)
    if world.tick < target.marked_until:
        dmg *= 1.5
    if target.posture == "blocking":
        dmg *= 0.5
    return round(dmg)


def _attack(world: World, u: Unit, t: Unit) -> None:
    u.ammo -= 1
    hit = world.rng.random() < hit_chance(world, u, t, u.stats.accuracy)
    dmg = damage_taken(world, t, u.stats.damage) if hit else 0
    from game.rules.world import Shot

    world.add_effect(Shot(world.tick, u.id, t.id, u.pos, t.pos, hit, dmg))
    world.damage(t, dmg)


def _area_fire(world: World, u: Unit, centre: Tile) -> None:
    from game.rules.world import AreaFire

    u.ammo -= AOE_AMMO
    world.add_effect(AreaFire(world.tick, u.id, u.pos, centre, AOE_RADIUS))
    for t in _units_near(world, centre, AOE_RADIUS):
        if t.id == u.id:
            continue
        if world.rng.random() < hit_chance(world, u, t, 0.55):
            world.damage(t, damage_taken(world, t, round(u.stats.damage * 0.6)))


def _explode(world: World, u: Unit, centre: Tile) -> None:
    from game.rules.world import Explosion

    u.grenades -= 1
    world.add_effect(Explosion(world.tick, u.id, centre, EXPLOSIVE_RADIUS))
    for t in _units_near(world, centre, EXPLOSIVE_RADIUS):
        if t.pos != centre and not line_of_sight(world.grid, (), centre, t.pos):
            continue  # walls shield the blast
        base = EXPLOSIVE_DAMAGE if t.pos == centre else EXPLOSIVE_DAMAGE * 2 // 3
        world.damage(t, damage_taken(world, t, base))


def _smoke(world: World, u: Unit, centre: Tile) -> None:
    from game.rules.world import SmokePlaced

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


def _heal(world: World, u: Unit) -> None:
    from game.rules.world import Healed

    hurt = [t for t in world.living(u.squad) if _adjacent(u.pos, t.pos) and t.hp < t.stats.hp]
    if not hurt:
        return
    # Most hurt = most hp missing; ties to the lowest id (living() is id-ordered).
    t = max(hurt, key=lambda v: (v.stats.hp - v.hp, -v.id))
    amount = min(u.stats.heal, t.stats.hp - t.hp)
    t.hp += amount
    world.add_effect(Healed(world.tick, u.id, t.id, t.pos, amount))


def _units_near(world: World, centre: Tile, radius: int) -> list[Unit]:
    cx, cy = centre
    return [t for t in world.living() if max(abs(t.x - cx), abs(t.y - cy)) <= radius]


# ---------------------------------------------------------------- walking
def _blocked_for(world: World, u: Unit) -> set[Tile]:
    return world.occupied(exclude=u.id) | world.zone_of_control(u.squad)


def _walk_to(
    world: World, u: Unit, a: ActiveStep, goal: Tile, arrive_posture: str
) -> tuple[bool, bool]:
    if u.pos == goal:
        u.posture = arrive_posture
        return True, a.walked == 0 and arrive_posture == "cover"
    blocked = _blocked_for(world, u)
    if goal in blocked and _adjacent(u.pos, goal):
        return True, False  # destination taken: this is as close as we get
    nxt: Tile | None = None
    if a.path_goal != goal:
        # Shared goals (the objective) have a cached distance field: walk downhill.
        field = world.shared_field(goal)
        if field is not None:
            nxt = downhill_step(world.grid, field, u.pos, blocked)
    elif a.path and a.path[0] not in blocked:
        nxt = a.path.pop(0)  # following this step's own A* path
    if nxt is None:
        # One-off goal, or someone stands in the way: A* around the units.
        detour = a.walked > 0 or a.stuck > 0
        path = find_path(world.grid, u.pos, goal, blocked, DETOUR_BUDGET if detour else PATH_BUDGET)
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


def _approach(world: World, u: Unit, a: ActiveStep, tid: int) -> tuple[bool, bool]:
    t = world.units[tid]
    if t.hp <= 0 or _adjacent(u.pos, t.pos) or a.walked >= APPROACH_MAX_TILES:
        return True, False
    if (
        t.squad != u.squad
        and in_range(u.pos, t.pos, u.stats.range)
        and line_of_sight(world.grid, world.smoke, u.pos, t.pos)
    ):
        return True, False  # close enough to shoot
    blocked = _blocked_for(world, u)
    if not a.path or a.path_goal != t.pos or a.path[0] in blocked:
        path = find_path(
            world.grid, u.pos, t.pos, blocked, DETOUR_BUDGET if a.walked else PATH_BUDGET
        )
        if not path or path[0] in blocked or path[0] == t.pos:
            a.stuck += 1
            return a.stuck >= STUCK_GIVE_UP_TICKS, True
        a.path, a.path_goal = path, t.pos
    world.move_unit(u, a.path.pop(0))
    a.walked += 1
    a.stuck = 0
    return False, True


def _retreat(world: World, u: Unit, a: ActiveStep, tid: int) -> tuple[bool, bool]:
    t = world.units[tid]
    if t.hp <= 0 or a.walked >= RETREAT_MAX_TILES:
        return True, False
    blocked = _blocked_for(world, u)
    best: Tile | None = None
    best_key = (dist2(u.pos, t.pos), 1)  # must get strictly farther away
    for dx, dy in NEIGHBOURS_8:
        n = (u.x + dx, u.y + dy)
        if (
            n in blocked
            or not world.grid.walkable(*n)
            or not world.grid.diagonal_ok(u.x, u.y, dx, dy)
        ):
            continue
        key = (dist2(n, t.pos), 1 if world.grid.tile(*n) == COVER else 0)
        if key > best_key:
            best, best_key = n, key
    if best is None:
        return True, False
    world.move_unit(u, best)
    a.walked += 1
    return False, True
