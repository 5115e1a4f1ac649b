"""Map loading: the shipped scenarios, the text format, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from game.match.maps import load, load_file, names
from game.rules.grid import COVER, FLOOR, OBJECTIVE, WALL, WATER
from game.rules.scenarios import MapError, parse

SMALL = """\
# name: tiny
# hold_turns: 2
# turn_limit: 9
######
#r.+~#
#.O.R#
######
"""


def test_shipped_scenarios_have_the_required_sizes() -> None:
    assert names() == ["siege", "skirmish", "village"]
    sizes = {}
    for name in names():
        sc = load(name)
        blue = sum(1 for s in sc.spawns if s.squad == "blue")
        red = sum(1 for s in sc.spawns if s.squad == "red")
        sizes[name] = (blue, red)
        assert sc.objective, name
        assert sc.objective_centre in sc.objective
    assert sizes["skirmish"] == (4, 4)
    assert sizes["village"] == (6, 6)
    assert min(sizes["siege"]) >= 16
    village = load("village")
    assert abs(village.grid.width - 32) <= 2 and village.grid.height == 24


def test_parse_header_terrain_and_spawns() -> None:
    sc = parse(SMALL, "tiny.txt")
    assert (sc.name, sc.hold_turns, sc.turn_limit) == ("tiny", 2, 9)
    g = sc.grid
    assert (g.width, g.height) == (6, 4)
    assert g.tile(0, 0) == WALL
    assert g.tile(1, 1) == FLOOR  # spawn letters stand on floor
    assert g.tile(3, 1) == COVER
    assert g.tile(4, 1) == WATER
    assert g.tile(2, 2) == OBJECTIVE
    assert [(s.x, s.y, s.squad, s.role) for s in sc.spawns] == [
        (1, 1, "blue", "rifleman"),
        (4, 2, "red", "rifleman"),
    ]
    assert sc.objective == ((2, 2),)


def test_role_letters_and_reading_order() -> None:
    text = "#######\n#rsmh.#\n#RSMH.#\n#######\n"
    sc = parse(text)
    assert [(s.squad, s.role) for s in sc.spawns] == [
        ("blue", "rifleman"),
        ("blue", "scout"),
        ("blue", "medic"),
        ("blue", "heavy"),
        ("red", "rifleman"),
        ("red", "scout"),
        ("red", "medic"),
        ("red", "heavy"),
    ]


def test_grid_queries() -> None:
    g = parse(SMALL).grid
    assert g.walkable(1, 1) and g.walkable(3, 1) and g.walkable(2, 2)
    assert not g.walkable(0, 0) and not g.walkable(4, 1) and not g.walkable(-1, 0)
    assert g.blocks_sight(0, 0) and not g.blocks_sight(4, 1)
    assert g.is_cover(3, 1) and not g.is_cover(1, 1)
    assert not g.in_bounds(6, 0)
    with pytest.raises(IndexError):
        g.tile(6, 0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#####\n#r.R#\n#.Q.#\n#####\n", "m.txt:3: unknown map character 'Q' at column 3"),
        ("#####\n#r.R#\n#..#\n#####\n", "m.txt:3: row has 4 characters, expected 5"),
        ("#####\n#r..#\n#####\n", "m.txt:3: no spawn points for squad 'red'"),
        ("#####\n#..R#\n#####\n", "m.txt:3: no spawn points for squad 'blue'"),
        ("# hold_turns: zero\n#####\n#r.R#\n#####\n", "m.txt:1: bad header 'hold_turns'"),
        ("# turn_limit: -4\n#####\n#r.R#\n#####\n", "m.txt:1: bad header 'turn_limit'"),
        ("# colour: red\n#####\n#r.R#\n#####\n", "m.txt:1: unknown header key 'colour'"),
        ("# name: x\n", "m.txt: map has no grid rows"),
        ("#####\n#r.R#\n# late: header\n", "m.txt:3: header line after the grid"),
    ],
)
def test_map_errors_are_one_line_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(MapError) as exc:
        parse(text, "m.txt")
    assert str(exc.value).startswith(message)
    assert "\n" not in str(exc.value)


def test_load_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("#####\n#r.R#\n#.Z.#\n#####\n", encoding="utf-8")
    with pytest.raises(MapError, match=r"bad\.txt:3: unknown map character 'Z'"):
        load_file(bad)
    with pytest.raises(MapError, match="cannot read map file"):
        load_file(tmp_path / "missing.txt")
    good = tmp_path / "arena.txt"
    good.write_text("#####\n#r.R#\n#####\n", encoding="utf-8")
    assert load_file(good).name == "arena"  # defaults to the file name


def test_unknown_scenario_lists_choices() -> None:
    with pytest.raises(MapError, match=r"unknown scenario 'moon' \(choose from: siege, skirmish"):
        load("moon")
