"""The static terrain of a map: what each tile is, and what it allows.

Terrain never changes during a match (smoke and units live in the world), so the
grid is a frozen value that precomputes everything the hot paths ask for:
walkability, sight blocking and connected regions (for cheap "no path" checks).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

FLOOR: Final = "floor"
WALL: Final = "wall"
COVER: Final = "cover"
WATER: Final = "water"
OBJECTIVE: Final = "objective"

TERRAIN_CHARS: Final[dict[str, str]] = {
    ".": FLOOR,
    "#": WALL,
    "+": COVER,
    "~": WATER,
    "O": OBJECTIVE,
}
"""Map character -> terrain name (spawn letters are floor underneath)."""

_WALKABLE: Final = frozenset({FLOOR, COVER, OBJECTIVE})

NEIGHBOURS_8: Final[tuple[tuple[int, int], ...]] = (
    (0, -1),
    (-1, 0),
    (1, 0),
    (0, 1),
    (-1, -1),
    (1, -1),
    (-1, 1),
    (1, 1),
)
"""Fixed neighbour order (orthogonal first) so every search tie-breaks the same way."""


def mirror_tie(x: int, y: int, width: int, squad: str | None = None) -> tuple[int, int, int]:
    """A tie-break key for tiles that a left-right mirror of the map keeps in order.

    Maps are mirrored left to right (colours swapped), so a raw (y, x) order would
    favour one side: the tile nearer the vertical centre line comes first instead. Only
    a tile and its own mirror image are left tied; then the first squad takes the
    left one and the second the right one (a mirror swaps both), or the left one when
    no squad is asking.
    """
    side = -x if squad is not None and squad != "blue" else x
    return (y, abs(2 * x - (width - 1)), side)


@dataclass(frozen=True)
class Grid:
    """A rectangular tile map. `rows[y][x]` is a terrain name."""

    width: int
    height: int
    rows: tuple[tuple[str, ...], ...]
    _walk: tuple[bool, ...] = field(init=False, repr=False, compare=False)
    _sight: tuple[bool, ...] = field(init=False, repr=False, compare=False)
    _region: tuple[int, ...] = field(init=False, repr=False, compare=False)
    adjacency: tuple[tuple[tuple[int, bool], ...], ...] = field(
        init=False, repr=False, compare=False
    )
    """Per flat index y*width+x: the walkable neighbours as (index, is_diagonal), in
    NEIGHBOURS_8 order, corner cutting excluded. Precomputed for A*."""

    def __post_init__(self) -> None:
        if len(self.rows) != self.height or any(len(r) != self.width for r in self.rows):
            raise ValueError("grid rows do not match width x height")
        flat = [t for row in self.rows for t in row]
        object.__setattr__(self, "_walk", tuple(t in _WALKABLE for t in flat))
        object.__setattr__(self, "_sight", tuple(t == WALL for t in flat))
        object.__setattr__(self, "adjacency", self._build_adjacency())
        object.__setattr__(self, "_region", self._label_regions())

    @classmethod
    def from_strings(cls, lines: list[str] | tuple[str, ...]) -> Grid:
        """Build from map characters (spawn letters count as floor); for tests and tools."""
        rows = tuple(tuple(TERRAIN_CHARS.get(c, FLOOR) for c in line) for line in lines)
        return cls(width=len(lines[0]) if lines else 0, height=len(lines), rows=rows)

    def in_bounds(self, x: int, y: int) -> bool:
        return 0 <= x < self.width and 0 <= y < self.height

    def tile(self, x: int, y: int) -> str:
        """Terrain name at (x, y): floor, wall, cover, water or objective."""
        if not self.in_bounds(x, y):
            raise IndexError(f"tile ({x},{y}) outside {self.width}x{self.height} grid")
        return self.rows[y][x]

    def walkable(self, x: int, y: int) -> bool:
        """Floor, cover and objective tiles can be stood on; walls and water cannot."""
        return self.in_bounds(x, y) and self._walk[y * self.width + x]

    def blocks_sight(self, x: int, y: int) -> bool:
        """Walls block sight (water does not). Outside the map counts as blocking."""
        return not self.in_bounds(x, y) or self._sight[y * self.width + x]

    def is_cover(self, x: int, y: int) -> bool:
        return self.in_bounds(x, y) and self.rows[y][x] == COVER

    def region(self, x: int, y: int) -> int:
        """Connected-walkable-region label (-1 if not walkable); equal labels = a path exists."""
        if not self.in_bounds(x, y):
            return -1
        return self._region[y * self.width + x]

    def tiles_of(self, terrain: str) -> tuple[tuple[int, int], ...]:
        """All (x, y) of one terrain kind, in reading order."""
        return tuple(
            (x, y)
            for y in range(self.height)
            for x in range(self.width)
            if self.rows[y][x] == terrain
        )

    def diagonal_ok(self, x: int, y: int, dx: int, dy: int) -> bool:
        """A diagonal step may not cut a corner of a wall or water tile."""
        return dx == 0 or dy == 0 or (self.walkable(x + dx, y) and self.walkable(x, y + dy))

    def _build_adjacency(self) -> tuple[tuple[tuple[int, bool], ...], ...]:
        w = self.width
        adj: list[tuple[tuple[int, bool], ...]] = []
        for i in range(w * self.height):
            x, y = i % w, i // w
            if not self._walk[i]:
                adj.append(())
                continue
            adj.append(
                tuple(
                    ((y + dy) * w + x + dx, dx != 0 and dy != 0)
                    for dx, dy in NEIGHBOURS_8
                    if self.walkable(x + dx, y + dy) and self.diagonal_ok(x, y, dx, dy)
                )
            )
        return tuple(adj)

    def _label_regions(self) -> tuple[int, ...]:
        labels = [-1] * (self.width * self.height)
        next_label = 0
        for start in range(len(labels)):
            if not self._walk[start] or labels[start] != -1:
                continue
            labels[start] = next_label
            todo = deque([start])
            while todo:
                for j, _ in self.adjacency[todo.popleft()]:
                    if labels[j] == -1:
                        labels[j] = next_label
                        todo.append(j)
            next_label += 1
        return tuple(labels)
