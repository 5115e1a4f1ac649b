"""The seed-targets bench: its figures add up, and the cold ceiling bounds a cold cache."""

from __future__ import annotations

import pytest

from planner.bench.targets import main, play_map


def test_a_cold_cache_hits_no_more_than_its_situations_repeat() -> None:
    figures = play_map("village", range(2), [], warm=False)
    lookups = figures.hits + figures.misses
    assert lookups > 0 and 0 < figures.new_situations <= lookups
    # every hit is a situation met before in the match (an agent asked afresh may be
    # served a teammate's plan of its situation in the same round, hence + refreshed)
    assert figures.hits <= lookups - figures.new_situations + figures.refreshed
    assert figures.adapted <= figures.hits


def test_the_table_sets_each_figure_beside_its_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--seeds", "1", "--scenarios", "skirmish"]) == 0
    out = capsys.readouterr().out
    assert "cache hit rate (>= 30%)" in out and "new situations (cold ceiling)" in out
    (row,) = [line for line in out.splitlines() if line.startswith("| skirmish")]
    assert row.count("|") == out.splitlines()[1].count("|")
