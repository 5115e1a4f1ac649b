"""Line of sight and A* pathfinding."""

from __future__ import annotations

import itertools

from game.rules.grid import Grid
from game.rules.pathfinding import (
    UNREACHABLE,
    distance_field,
    downhill_step,
    find_path,
    octile,
    reachable,
)
from game.rules.sight import bresenham, can_see, line_of_sight

OPEN = Grid.from_strings(
    [
        "#########",
        "#.......#",
        "#...#...#",
        "#...#...#",
        "#..~~~..#",
        "#########",
    ]
)


def test_bresenham_endpoints_and_continuity() -> None:
    line = bresenham((1, 1), (6, 3))
    assert line[0] == (1, 1) and line[-1] == (6, 3)
    for (ax, ay), (bx, by) in itertools.pairwise(line):
        assert max(abs(ax - bx), abs(ay - by)) == 1


def test_walls_block_sight_water_does_not() -> None:
    assert not line_of_sight(OPEN, (), (3, 2), (5, 2))  # wall at (4,2) in between
    assert line_of_sight(OPEN, (), (2, 4), (6, 4))  # across water
    assert line_of_sight(OPEN, (), (1, 1), (7, 1))


def test_smoke_blocks_sight_and_hides_units_inside() -> None:
    assert not line_of_sight(OPEN, {(4, 1)}, (1, 1), (7, 1))
    assert not line_of_sight(OPEN, {(7, 1)}, (1, 1), (7, 1))  # target inside smoke
    # Never one way: a viewer inside smoke sees out no further than it is seen...
    assert not line_of_sight(OPEN, {(1, 1)}, (1, 1), (7, 1))
    assert not line_of_sight(OPEN, {(1, 1)}, (7, 1), (1, 1))
    # ...and units side by side see each other through it.
    assert line_of_sight(OPEN, {(1, 1), (2, 1)}, (1, 1), (2, 1))


def test_sight_is_symmetric_and_ranged() -> None:
    for a in [(1, 1), (2, 3), (3, 4)]:
        for b in [(5, 1), (6, 3), (7, 2)]:
            assert line_of_sight(OPEN, (), a, b) == line_of_sight(OPEN, (), b, a)
    assert can_see(OPEN, (), (1, 1), (7, 1), 6)
    assert not can_see(OPEN, (), (1, 1), (7, 1), 5)


def test_astar_goes_around_walls_with_optimal_cost() -> None:
    path = find_path(OPEN, (3, 3), (5, 3))
    assert path is not None and path[-1] == (5, 3)
    assert all(OPEN.walkable(*t) for t in path)
    assert (4, 2) not in path and (4, 3) not in path
    steps = [(3, 3), *path]
    cost = sum(octile(a, b) for a, b in itertools.pairwise(steps))
    # Corners of the wall cannot be cut: up 2, across 2, down 2, all orthogonal.
    assert cost == 60
    assert len(path) == 6


def test_astar_is_deterministic_and_avoids_blocked_tiles() -> None:
    a = find_path(OPEN, (1, 1), (7, 3))
    assert a == find_path(OPEN, (1, 1), (7, 3))
    assert a is not None
    detour = find_path(OPEN, (1, 1), (7, 3), blocked={a[0]})
    assert detour is not None and a[0] not in detour
    assert find_path(OPEN, (1, 1), (1, 1)) == []


def test_no_path_cases() -> None:
    grid = Grid.from_strings(["#####", "#.#.#", "#####"])
    assert find_path(grid, (1, 1), (3, 1)) is None
    assert not reachable(grid, (1, 1), (3, 1))
    assert find_path(OPEN, (1, 1), (4, 2)) is None  # goal is a wall
    assert find_path(OPEN, (1, 1), (4, 4)) is None  # goal is water


def test_diagonal_moves_do_not_cut_corners() -> None:
    grid = Grid.from_strings(["####", "#..#", "#.##", "####"])
    # (1,2) -> (2,1) diagonally would cut the wall corner at (2,2): go via (1,1).
    assert find_path(grid, (1, 2), (2, 1)) == [(1, 1), (2, 1)]


def test_distance_field_agrees_with_astar() -> None:
    field = distance_field(OPEN, (7, 3))
    w = OPEN.width
    path = find_path(OPEN, (1, 1), (7, 3))
    assert path is not None
    steps = [(1, 1), *path]
    cost = sum(octile(a, b) for a, b in itertools.pairwise(steps))
    assert field[1 * w + 1] == cost
    assert field[2 * w + 4] == UNREACHABLE  # wall
    nxt = downhill_step(OPEN, field, (1, 1), blocked=())
    assert nxt is not None and field[nxt[1] * w + nxt[0]] < field[1 * w + 1]
