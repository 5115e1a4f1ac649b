"""Hand-made snapshots for tests: the one factory for a unit's view and one for a snapshot.

Defaults describe a healthy, idle rifleman (hp 100/100, ammo 8/8, no grenades) alone
on a 32x24 map: nobody else in sight, no cover, no smoke, no objective. A test names
only what its assertion depends on.

    me = unit(1, 4, 4, ammo=0)
    snap = snapshot(me, enemies=(unit(9, 7, 4, squad="blue"),), objective=(15, 12))

Snapshots of a real scenario come from tests/planning_helpers.py (`squad_snapshots`).
"""

from __future__ import annotations

from collections.abc import Sequence

from game.rules.snapshot import Role, Snapshot, UnitView

Tile = tuple[int, int]


def unit(
    uid: int,
    x: int,
    y: int,
    *,
    squad: str = "red",
    role: Role = "rifleman",
    hp: int = 100,
    max_hp: int = 100,
    ammo: int = 8,
    max_ammo: int = 8,
    status: str = "idle",
    grenades: int = 0,
) -> UnitView:
    return UnitView(
        id=uid,
        squad=squad,
        role=role,
        x=x,
        y=y,
        hp=hp,
        max_hp=max_hp,
        ammo=ammo,
        max_ammo=max_ammo,
        status=status,
        grenades=grenades,
    )


def snapshot(
    me: UnitView,
    *,
    scenario: str = "t",
    turn: int = 1,
    width: int = 32,
    height: int = 24,
    allies: Sequence[UnitView] = (),
    enemies: Sequence[UnitView] = (),
    cover: Sequence[Tile] = (),
    smoke: Sequence[Tile] = (),
    objective: Tile | None = None,
) -> Snapshot:
    return Snapshot(
        scenario=scenario,
        turn=turn,
        width=width,
        height=height,
        me=me,
        allies=tuple(allies),
        enemies=tuple(enemies),
        cover=tuple(cover),
        smoke=tuple(smoke),
        objective=objective,
    )
