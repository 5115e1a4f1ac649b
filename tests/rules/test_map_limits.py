"""Map sizes are bounded while the text is read; a UTF-8 BOM is not a map character."""

from __future__ import annotations

import pytest

from game.rules.scenarios import MAX_MAP_HEIGHT, MAX_MAP_WIDTH, MapError, parse


def grid(width: int, height: int) -> str:
    row = "R" + "." * (width - 2) + "r"
    return "\n".join([row] * height) + "\n"


@pytest.mark.parametrize(
    ("width", "height"), [(257, 3), (3, 257), (300, 300), (1000, 1000), (10_000, 10_000)]
)
def test_a_map_too_large_is_one_line(width: int, height: int) -> None:
    with pytest.raises(MapError) as info:
        parse(grid(width, height), "big.txt")
    message = str(info.value)
    assert message.endswith(f"map is {width}x{height}, the largest is 256x256")
    assert message.startswith("big.txt:") and "\n" not in message


def test_the_largest_map_parses() -> None:
    scenario = parse(grid(MAX_MAP_WIDTH, MAX_MAP_HEIGHT), "max.txt")
    assert (scenario.grid.width, scenario.grid.height) == (256, 256)


def test_a_utf8_bom_at_the_start_is_ignored() -> None:
    text = "# name: bom\n#####\n#r.R#\n#####\n"
    assert parse("\ufeff" + text).name == "bom"
    assert parse("\ufeff" + grid(5, 3)).grid.width == 5
    assert parse(grid(5, 3).replace("\n", "\r\n")).grid.height == 3
    with pytest.raises(MapError, match="unknown map character"):
        parse("#####\n#r\ufeffR#\n#####\n")  # only at the very start
