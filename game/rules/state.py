"""What the world is made of: units, steps in progress, the effects and refusals it
reports, and `Arena`, the world as the action effects see it.

Split from `game.rules.world` so that the effects of actions (`game.rules.effects`) and
the world that runs them depend on these types, never on each other.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from game.rules.actions import ROLE_STATS, IllegalCode, RoleStats
from game.rules.grid import Grid
from game.rules.snapshot import Role, Snapshot
from game.rules.steps import Step

Tile = tuple[int, int]


# ---------------------------------------------------------------- visual effects
@dataclass(frozen=True)
class Shot:
    tick: int
    shooter_id: int
    target_id: int
    src: Tile
    dst: Tile
    hit: bool
    damage: int


@dataclass(frozen=True)
class AreaFire:
    tick: int
    shooter_id: int
    src: Tile
    centre: Tile
    radius: int


@dataclass(frozen=True)
class SmokePlaced:
    tick: int
    unit_id: int
    centre: Tile
    tiles: tuple[Tile, ...]


@dataclass(frozen=True)
class Explosion:
    tick: int
    unit_id: int
    centre: Tile
    radius: int


@dataclass(frozen=True)
class Healed:
    tick: int
    healer_id: int
    unit_id: int
    at: Tile
    amount: int


@dataclass(frozen=True)
class Died:
    tick: int
    unit_id: int
    at: Tile


Effect = Shot | AreaFire | SmokePlaced | Explosion | Healed | Died


@dataclass(frozen=True)
class Refusal:
    """An illegal step the world refused (it never runs; the unit moves on)."""

    tick: int
    unit_id: int
    squad: str
    act: str
    code: str
    """Machine-readable (`IllegalCode`); `reason` is for people."""
    reason: str
    stale: bool = False
    """Made stale by the world (its target fell or moved since the plan was given), not
    illegal as planned."""


# ---------------------------------------------------------------- units
@dataclass
class ActiveStep:
    """A step in progress: elapsed ticks and, for walking steps, the cached path."""

    step: Step
    elapsed: int = 0
    walked: int = 0
    path: list[Tile] = field(default_factory=list)
    path_goal: Tile | None = None
    stuck: int = 0


@dataclass
class Unit:
    id: int
    squad: str
    role: Role
    x: int
    y: int
    hp: int
    ammo: int
    grenades: int
    posture: str = "idle"
    """idle, moving, cover, blocking, reloading, attacking, healing, ... (kept after a step)."""
    queue: deque[Step] = field(default_factory=deque)
    active: ActiveStep | None = None
    marked_until: int = -1
    stunned: int = 0
    scan_until: int = -1
    dead: bool = False
    """Set at the end of the tick in which hp reached 0 (deaths resolve simultaneously)."""
    planned_at: dict[int, Tile] = field(default_factory=dict)
    """Where each unit this unit's queued steps name stood when the plan was given (to
    tell a step the world made stale from one that was illegal as planned)."""

    @property
    def alive(self) -> bool:
        """Still on the board this tick (a unit brought to 0 hp finishes the tick)."""
        return not self.dead

    @property
    def pos(self) -> Tile:
        return (self.x, self.y)

    @property
    def stats(self) -> RoleStats:
        return ROLE_STATS[self.role]


class Arena(Protocol):
    """The world as the action effects use it (implemented by `game.rules.world.World`)."""

    grid: Grid
    rng: random.Random
    tick: int
    units: dict[int, Unit]
    smoke: dict[Tile, int]

    def living(self, squad: str | None = None) -> Iterator[Unit]: ...
    def snapshot_of(self, unit_id: int) -> Snapshot: ...
    def refuse(
        self, u: Unit, step: Step, code: IllegalCode, reason: str, *, stale: bool = False
    ) -> None: ...
    def count_start(self, u: Unit, step: Step, *, retargeted: bool = False) -> None: ...
    def add_effect(self, effect: Effect) -> None: ...
    def move_unit(self, u: Unit, tile: Tile) -> None: ...
    def damage(self, u: Unit, amount: int) -> None: ...
    def place_smoke(self, tiles: tuple[Tile, ...]) -> None: ...
    def refresh_sight(self) -> None: ...
    def occupied(self, exclude: int | None = None) -> set[Tile]: ...
    def zone_of_control(self, squad: str) -> set[Tile]: ...
    def shared_field(self, goal: Tile) -> tuple[int, ...] | None: ...
