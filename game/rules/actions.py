"""The action vocabulary's rules: role stats, durations, and THE legality rule.

`check_step(step, snap, grid)` needs only a Snapshot and the Grid, so the planner
validates LLM plans with exactly the rule the world applies when a step starts (the
world builds the unit's snapshot and calls it too; `game.rules.effects` says what each
action then does). It answers with a machine-readable code and a message for people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from game.rules.grid import WALL, WATER, Grid
from game.rules.pathfinding import reachable
from game.rules.sight import in_range, line_of_sight
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


# Hit points are 2.5x the first release's: fights last long enough for
# cover, healing and the objective to count (a village match runs about 12 turns).
ROLE_STATS: Final[dict[Role, RoleStats]] = {
    "rifleman": RoleStats(
        hp=250, ammo=8, sight=9, range=7, damage=25, accuracy=0.75, grenades=1, heal=10
    ),
    "scout": RoleStats(
        hp=175, ammo=6, sight=12, range=6, damage=18, accuracy=0.7, grenades=2, heal=10
    ),
    "medic": RoleStats(
        hp=200, ammo=5, sight=8, range=5, damage=15, accuracy=0.6, grenades=1, heal=20
    ),
    "heavy": RoleStats(
        hp=375, ammo=10, sight=8, range=6, damage=35, accuracy=0.6, grenades=2, heal=10
    ),
}

THROW_RANGE: Final = 6
"""Euclidean reach of ThrowSmoke / ThrowExplosive."""
DISTRACT_RANGE: Final = 7
MARK_RANGE: Final = 9
"""Euclidean reach of MarkTarget (the actor must see the target too)."""
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
    "Heal": 3,
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
IllegalCode = Literal[
    "out_of_bounds",
    "impassable",
    "not_cover",
    "occupied",
    "already_there",
    "no_path",
    "no_grenades",
    "no_ammo",
    "ammo_full",
    "out_of_range",
    "no_line_of_sight",
    "self_target",
    "ally_target",
    "not_visible",
    "unknown_target",
    "nothing_to_heal",
    "tool_not_allowed",
    "unknown_action",
    "too_close",
    "not_a_medic",
]
"""Why a step is illegal, for machines (counts, keys); `Illegal.message` is for people."""


@dataclass(frozen=True)
class Illegal:
    code: IllegalCode
    message: str


def check_step(step: Step, snap: Snapshot, grid: Grid) -> Illegal | None:
    """None if `step` is legal for `snap.me` now, else why not (a code and a message)."""
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
                return Illegal("not_cover", f"tile ({x},{y}) is not cover")
            holder = _known_at(snap, (x, y))
            if holder is not None and holder.id != me.id:
                return Illegal("occupied", f"cover ({x},{y}) occupied by unit {holder.id}")
            return _check_reach(grid, here, (x, y), same_ok=True)
        case ThrowSmoke(x=x, y=y) | ThrowExplosive(x=x, y=y):
            if me.grenades <= 0:
                return Illegal("no_grenades", "no grenades left")
            if not grid.in_bounds(x, y):
                return Illegal("out_of_bounds", f"tile ({x},{y}) out of bounds")
            if grid.tile(x, y) == WALL:
                return Illegal("impassable", f"tile ({x},{y}) is a wall")
            if not in_range(here, (x, y), THROW_RANGE):
                return Illegal("out_of_range", f"tile ({x},{y}) out of throw range {THROW_RANGE}")
            if isinstance(step, ThrowExplosive) and max(abs(x - me.x), abs(y - me.y)) <= (
                EXPLOSIVE_RADIUS
            ):
                return Illegal("too_close", f"tile ({x},{y}) is within the blast of the thrower")
            if not line_of_sight(grid, (), here, (x, y)):
                return Illegal("no_line_of_sight", f"no line of sight to ({x},{y}) for a throw")
            return None
        case AoEAttack(x=x, y=y):
            if not grid.in_bounds(x, y):
                return Illegal("out_of_bounds", f"tile ({x},{y}) out of bounds")
            if me.ammo < AOE_AMMO:
                return Illegal("no_ammo", f"not enough ammo (need {AOE_AMMO}, have {me.ammo})")
            if not in_range(here, (x, y), st.range):
                return Illegal("out_of_range", f"tile ({x},{y}) out of range {st.range}")
            if not line_of_sight(grid, snap.smoke, here, (x, y)):
                return Illegal("no_line_of_sight", f"no line of sight to ({x},{y})")
            return None
        case Attack(target_id=tid):
            bad = _check_enemy(snap, tid)
            if bad:
                return bad
            if me.ammo <= 0:
                return Illegal("no_ammo", "no ammo")
            t = _enemy(snap, tid)
            if not in_range(here, (t.x, t.y), st.range):
                return Illegal("out_of_range", f"target {tid} out of range {st.range}")
            if not line_of_sight(grid, snap.smoke, here, (t.x, t.y)):
                return Illegal("no_line_of_sight", f"no line of sight to target {tid}")
            return None
        case Approach(target_id=tid):
            if tid == me.id:
                return Illegal("self_target", "cannot target self")
            if any(a.id == tid for a in snap.allies):
                return None
            return _check_enemy(snap, tid)
        case Retreat(target_id=tid):
            return _check_enemy(snap, tid)
        case MarkTarget(target_id=tid) | Distract(target_id=tid):
            bad = _check_enemy(snap, tid)
            if bad:
                return bad
            t = _enemy(snap, tid)
            reach, what = (
                (MARK_RANGE, "mark")
                if isinstance(step, MarkTarget)
                else (DISTRACT_RANGE, "distract")
            )
            if not in_range(here, (t.x, t.y), reach):
                return Illegal("out_of_range", f"target {tid} out of {what} range {reach}")
            if not line_of_sight(grid, snap.smoke, here, (t.x, t.y)):
                return Illegal("no_line_of_sight", f"no line of sight to target {tid}")
            return None
        case Reload():
            return Illegal("ammo_full", "ammo already full") if me.ammo >= me.max_ammo else None
        case Heal():
            if me.role != "medic":
                # A field dressing: on oneself, and only up to half health.
                if me.hp * 2 < me.max_hp:
                    return None
                return Illegal("not_a_medic", "only a medic heals others or above half health")
            hurt = [u for u in (me, *snap.allies) if adjacent(here, (u.x, u.y)) and u.hp < u.max_hp]
            why = "nothing to heal (no hurt unit adjacent or self)"
            return None if hurt else Illegal("nothing_to_heal", why)
        case Scan() | Wait() | Block():
            return None
        case _:  # not a Step at all (e.g. built without validation): refuse, never crash
            return Illegal("unknown_action", f"unknown action {getattr(step, 'act', '?')!r}")  # type: ignore[unreachable]


def _check_tile(grid: Grid, x: int, y: int) -> Illegal | None:
    if not grid.in_bounds(x, y):
        return Illegal("out_of_bounds", f"tile ({x},{y}) out of bounds")
    terrain = grid.tile(x, y)
    if terrain in (WALL, WATER):
        return Illegal("impassable", f"tile ({x},{y}) is {terrain}")
    return None


def _check_reach(grid: Grid, here: Tile, goal: Tile, *, same_ok: bool) -> Illegal | None:
    if here == goal:
        return None if same_ok else Illegal("already_there", f"already at ({goal[0]},{goal[1]})")
    if reachable(grid, here, goal):
        return None
    return Illegal("no_path", f"no path to ({goal[0]},{goal[1]})")


def _check_enemy(snap: Snapshot, tid: int) -> Illegal | None:
    if tid == snap.me.id:
        return Illegal("self_target", "cannot target self")
    if any(a.id == tid for a in snap.allies):
        return Illegal("ally_target", f"target {tid} is an ally")
    if not any(e.id == tid for e in snap.enemies):
        return Illegal("not_visible", f"target {tid} not visible")
    return None


def _enemy(snap: Snapshot, tid: int) -> UnitView:
    return next(e for e in snap.enemies if e.id == tid)


def _known_at(snap: Snapshot, tile: Tile) -> UnitView | None:
    for u in (snap.me, *snap.allies, *snap.enemies):
        if (u.x, u.y) == tile:
            return u
    return None


def adjacent(a: Tile, b: Tile) -> bool:
    return max(abs(a[0] - b[0]), abs(a[1] - b[1])) <= 1
