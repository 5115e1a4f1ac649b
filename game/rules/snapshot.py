"""Per-agent snapshot: what one unit knows at the start of a turn.

Immutable, compact and deterministic (every collection sorted), so the same world
always gives byte-identical JSON. This is the only view of the world the planner
ever receives. `take(world, unit_id)` builds one from the live world.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from game.rules.world import World

Role = Literal["rifleman", "scout", "medic", "heavy"]
ROLES: tuple[Role, ...] = ("rifleman", "scout", "medic", "heavy")


class UnitView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    squad: str
    role: Role
    x: int
    y: int
    hp: int
    max_hp: int
    ammo: int
    max_ammo: int
    status: str
    """What the unit is doing: idle, moving, cover, blocking, marked, reloading, ..."""
    grenades: int = 0
    """Throwables left (each ThrowSmoke or ThrowExplosive uses one). Added by the world helper."""


class Snapshot(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    turn: int
    width: int
    height: int
    me: UnitView
    allies: tuple[UnitView, ...]
    """Living squad-mates, sorted by id (not including `me`)."""
    enemies: tuple[UnitView, ...]
    """Enemies the squad can see now, sorted by id."""
    cover: tuple[tuple[int, int], ...]
    """Free low-cover tiles within a few tiles of `me`, sorted by distance then (y, x)."""
    smoke: tuple[tuple[int, int], ...]
    """Tiles currently filled with smoke that `me` knows of, sorted by (y, x)."""
    objective: tuple[int, int] | None
    """Centre of the objective zone, if the scenario has one."""


COVER_RADIUS = 6
"""Cover tiles within this Chebyshev distance are listed in a snapshot."""
MAX_COVER_LISTED = 6


def take(world: World, unit_id: int) -> Snapshot:
    """What unit `unit_id` knows now. Deterministic: same world, byte-identical JSON."""
    u = world.units[unit_id]
    mx, my = u.x, u.y
    allies = tuple(world.unit_view(a) for a in world.living(u.squad) if a.id != unit_id)
    enemies = tuple(world.unit_view(e) for e in world.visible_enemies(u.squad))
    taken = {(v.x, v.y) for v in (*allies, *enemies)}
    near = [
        (max(abs(x - mx), abs(y - my)), y, x)
        for x, y in world.cover_tiles
        if abs(x - mx) <= COVER_RADIUS and abs(y - my) <= COVER_RADIUS and (x, y) not in taken
    ]
    near.sort()
    cover = tuple((x, y) for _, y, x in near[:MAX_COVER_LISTED])
    smoke = tuple(sorted(world.smoke, key=lambda t: (t[1], t[0])))
    # Built from trusted world state, so skip re-validation (this runs every step start).
    return Snapshot.model_construct(
        scenario=world.scenario.name,
        turn=world.turn,
        width=world.grid.width,
        height=world.grid.height,
        me=world.unit_view(u),
        allies=allies,
        enemies=enemies,
        cover=cover,
        smoke=smoke,
        objective=world.scenario.objective_centre,
    )
