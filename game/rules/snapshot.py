"""Per-agent snapshot: what one unit knows at the start of a turn.

Immutable, compact and deterministic (every collection sorted), so the same world
always gives byte-identical JSON. This is the only view of the world the planner
ever receives. `World.snapshot_of(unit_id)` builds one from the live world.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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
