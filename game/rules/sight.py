"""Line of sight: Bresenham lines blocked by walls and smoke.

Pure functions over a Grid and a set of smoke tiles, so the world (live state)
and `check_step` (a Snapshot) use exactly the same rule.
"""

from __future__ import annotations

from collections.abc import Collection

from game.rules.grid import Grid

Tile = tuple[int, int]


def bresenham(a: Tile, b: Tile) -> list[Tile]:
    """Every tile on the line from a to b, both ends included (deterministic order)."""
    x0, y0 = a
    x1, y1 = b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx = 1 if x0 < x1 else -1
    sy = 1 if y0 < y1 else -1
    err = dx + dy
    out = [(x0, y0)]
    while (x0, y0) != (x1, y1):
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy
        out.append((x0, y0))
    return out


def dist2(a: Tile, b: Tile) -> int:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2


def in_range(a: Tile, b: Tile, reach: int) -> bool:
    """Euclidean distance <= reach (integer maths, no float drift)."""
    return dist2(a, b) <= reach * reach


def line_of_sight(grid: Grid, smoke: Collection[Tile], a: Tile, b: Tile) -> bool:
    """Can a unit at `a` see tile `b`?

    Walls between them block, and so does a diagonal step squeezing between two
    walls (a gap no unit can walk through). Smoke on any tile of the line, the
    viewer's own included, blocks unless the two are adjacent: a unit inside smoke is
    hidden and sees no further out than it is seen (never one way). The target tile
    itself being a wall does not block seeing that wall. Bresenham lines are not
    symmetric, so the line is traced both ways and either clear one counts: if a sees
    b, b sees a, and no side of a mirrored map is favoured.
    """
    return _clear(grid, smoke, bresenham(a, b)) or _clear(grid, smoke, bresenham(b, a)[::-1])


def _clear(grid: Grid, smoke: Collection[Tile], line: list[Tile]) -> bool:
    last = len(line) - 1
    near = last <= 1  # the same or an adjacent tile: close enough to see through smoke
    if not near and line[0] in smoke:
        return False
    for i in range(1, last + 1):
        x, y = line[i]
        px, py = line[i - 1]
        if not near and (x, y) in smoke:
            return False
        if x != px and y != py and grid.blocks_sight(px, y) and grid.blocks_sight(x, py):
            return False  # squeezing between two walls
        if i < last and grid.blocks_sight(x, y):
            return False
    return True


def can_see(grid: Grid, smoke: Collection[Tile], a: Tile, b: Tile, sight: int) -> bool:
    """Within sight range and an unobstructed line."""
    return in_range(a, b, sight) and line_of_sight(grid, smoke, a, b)
