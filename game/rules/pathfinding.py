"""A* on the 8-connected grid with deterministic tie-breaks.

Orthogonal steps cost 10, diagonal 14 (octile distance), corners of walls and
water cannot be cut. Ties are broken by the heap key (f, h, then `mirror_tie`), never
by insertion luck, so the same query always returns the same path, and the mirror
image of a query returns the mirror image of its path (no side of a mirrored map walks
a better path).
"""

from __future__ import annotations

import heapq
from collections.abc import Collection

from game.rules.grid import Grid, mirror_tie

Tile = tuple[int, int]

ORTHO_COST = 10
DIAG_COST = 14


def octile(a: Tile, b: Tile) -> int:
    dx, dy = abs(a[0] - b[0]), abs(a[1] - b[1])
    return ORTHO_COST * max(dx, dy) + (DIAG_COST - ORTHO_COST) * min(dx, dy)


def find_path(
    grid: Grid,
    start: Tile,
    goal: Tile,
    blocked: Collection[Tile] = (),
    max_expansions: int = 20_000,
    squad: str | None = None,
) -> list[Tile] | None:
    """Tiles to walk from `start` to `goal` (start excluded, goal included).

    `blocked` tiles (other units) cannot be entered, except the goal itself so a
    caller can detect "destination occupied" on the last step. Returns [] when
    already there and None when no path exists (or the search budget ran out).
    `squad` breaks the last tie, between a tile and its mirror image (`mirror_tie`).
    """
    if start == goal:
        return []
    if not grid.walkable(*goal) or grid.region(*start) != grid.region(*goal):
        return None
    w = grid.width
    gx, gy = goal
    s_i, g_i = start[1] * w + start[0], gy * w + gx
    blocked_i = {y * w + x for x, y in blocked if grid.in_bounds(x, y)}
    blocked_i.discard(g_i)
    adjacency = grid.adjacency
    # Heap key (f, h, tie, index): tie = mirror_tie as one int; the index is unique.
    sign = -1 if squad is not None and squad != "blue" else 1
    h0 = octile(start, goal)
    open_heap: list[tuple[int, int, int, int]] = [(h0, h0, _tie(s_i, w, sign), s_i)]
    g_cost: dict[int, int] = {s_i: 0}
    came_from: dict[int, int] = {}
    closed: set[int] = set()
    while open_heap:
        _, _, _, cur = heapq.heappop(open_heap)
        if cur == g_i:
            return _rebuild(came_from, s_i, g_i, w)
        if cur in closed:
            continue
        closed.add(cur)
        if len(closed) > max_expansions:
            return None
        base = g_cost[cur]
        for nxt, diagonal in adjacency[cur]:
            if nxt in closed or nxt in blocked_i:
                continue
            cost = base + (DIAG_COST if diagonal else ORTHO_COST)
            if cost < g_cost.get(nxt, 1 << 30):
                g_cost[nxt] = cost
                came_from[nxt] = cur
                dx, dy = abs(nxt % w - gx), abs(nxt // w - gy)
                h = ORTHO_COST * max(dx, dy) + (DIAG_COST - ORTHO_COST) * min(dx, dy)
                heapq.heappush(open_heap, (cost + h, h, _tie(nxt, w, sign), nxt))
    return None


def _tie(i: int, w: int, sign: int) -> int:
    """`mirror_tie` of tile index i packed in one int (x signed by the squad's side)."""
    x, y = i % w, i // w
    return (y * w + abs(2 * x - (w - 1))) * 2 * w + (sign * x + w)


def _rebuild(came_from: dict[int, int], s_i: int, g_i: int, w: int) -> list[Tile]:
    path = [g_i]
    while came_from[path[-1]] != s_i:
        path.append(came_from[path[-1]])
    path.reverse()
    return [(i % w, i // w) for i in path]


def reachable(grid: Grid, start: Tile, goal: Tile) -> bool:
    """A terrain-only path exists (ignores units); O(1) via region labels."""
    return grid.walkable(*goal) and grid.region(*start) == grid.region(*goal)


UNREACHABLE = 1 << 30


def distance_field(grid: Grid, goal: Tile) -> tuple[int, ...]:
    """Path cost from every tile to `goal` (terrain only; UNREACHABLE where none).

    Dijkstra from the goal, once per goal: walkers to a fixed destination then pick
    the neighbour that lowers this cost, which is O(8) per step instead of an A*.
    """
    w = grid.width
    dist = [UNREACHABLE] * (w * grid.height)
    if not grid.walkable(*goal):
        return tuple(dist)
    g_i = goal[1] * w + goal[0]
    dist[g_i] = 0
    heap = [(0, g_i)]
    adjacency = grid.adjacency
    while heap:
        d, cur = heapq.heappop(heap)
        if d != dist[cur]:
            continue
        for nxt, diagonal in adjacency[cur]:
            nd = d + (DIAG_COST if diagonal else ORTHO_COST)
            if nd < dist[nxt]:
                dist[nxt] = nd
                heapq.heappush(heap, (nd, nxt))
    return tuple(dist)


def downhill_step(
    grid: Grid,
    field: tuple[int, ...],
    here: Tile,
    blocked: Collection[Tile],
    squad: str | None = None,
) -> Tile | None:
    """The free neighbour that gets closest to the field's goal (ties: `mirror_tie`).

    None when every neighbour that would make progress is blocked.
    """
    w = grid.width
    cur = here[1] * w + here[0]
    best: int | None = None
    best_key = (field[cur], (0, 0, 0))
    for nxt, diagonal in grid.adjacency[cur]:
        if field[nxt] >= field[cur] or (nxt % w, nxt // w) in blocked:
            continue
        key = (
            field[nxt] + (DIAG_COST if diagonal else ORTHO_COST),
            mirror_tie(nxt % w, nxt // w, w, squad),
        )
        if best is None or key < best_key:
            best, best_key = nxt, key
    return None if best is None else (best % w, best // w)
