"""The terrain near an agent, as few rectangles as a prompt can carry.

A plan that moves onto a wall or water tile is "repaired" by validation; a model that is
shown where they are can avoid them. `near(grid, x, y, radius)` gives the walls and the
water in a square window around a tile as inclusive rectangles `[x0,y0,x1,y1]`, merged
greedily (runs along a row, then grown down while the run repeats), so a map's border or
a house wall costs one rectangle, not a tile each. Pure: the grid is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from game.rules.grid import WALL, WATER, Grid

Rect = tuple[int, int, int, int]
"""Inclusive corners: x0, y0, x1, y1."""


@dataclass(frozen=True)
class Terrain:
    """What blocks a walk near one agent (walls also block sight; water does not)."""

    walls: tuple[Rect, ...] = ()
    water: tuple[Rect, ...] = ()

    def blocked(self, x: int, y: int) -> bool:
        return any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in (*self.walls, *self.water))


NO_TERRAIN = Terrain()


def _rects(grid: Grid, kind: str, x0: int, y0: int, x1: int, y1: int) -> tuple[Rect, ...]:
    taken: set[tuple[int, int]] = set()
    out: list[Rect] = []

    def free(x: int, y: int) -> bool:
        return grid.tile(x, y) == kind and (x, y) not in taken

    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            if not free(x, y):
                continue
            right = x
            while right + 1 <= x1 and free(right + 1, y):
                right += 1
            bottom = y
            while bottom + 1 <= y1 and all(free(i, bottom + 1) for i in range(x, right + 1)):
                bottom += 1
            taken.update((i, j) for i in range(x, right + 1) for j in range(y, bottom + 1))
            out.append((x, y, right, bottom))
    return tuple(out)


def near(grid: Grid, x: int, y: int, radius: int) -> Terrain:
    """Walls and water within `radius` tiles (Chebyshev) of (x, y), clipped to the map."""
    x0, y0 = max(0, x - radius), max(0, y - radius)
    x1, y1 = min(grid.width - 1, x + radius), min(grid.height - 1, y + radius)
    if x0 > x1 or y0 > y1:
        return NO_TERRAIN
    return Terrain(_rects(grid, WALL, x0, y0, x1, y1), _rects(grid, WATER, x0, y0, x1, y1))
