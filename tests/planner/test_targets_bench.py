"""The seed-targets bench: its figures add up, and the cold ceiling bounds a cold cache."""

from __future__ import annotations

import pytest

from planner.bench.targets import main, play_map


@pytest.mark.parametrize(("scenario", "seeds"), [("village", range(2)), ("skirmish", [6])])
def test_a_cold_cache_hits_no_more_than_its_situations_repeat(
    scenario: str, seeds: range | list[int]
) -> None:
    # skirmish seed 6 ends with a round the game never hears: its lookups count in
    # neither figure (both come from the rounds reported)
    figures = play_map(scenario, seeds, [], warm=False)
    lookups = figures.hits + figures.misses
    assert lookups > 0 and 0 < figures.new_situations <= lookups
    # every hit is of a situation met before in the match: a first sighting always misses
    assert figures.hits <= lookups - figures.new_situations
    assert figures.adapted <= figures.hits
    assert figures.hit_ceiling == 1 - figures.new_situations / lookups


def test_the_table_sets_each_figure_beside_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "1", "--scenarios", "skirmish"]) == 0
    out = capsys.readouterr().out
    assert "cache hit rate (>= 30%)" in out and "new situations (cold ceiling)" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| skirmish")]
    assert row.count("|") == out.splitlines()[1].count("|")
