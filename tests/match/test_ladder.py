"""`python -m game.ladder`: Wilson intervals, the matrix, resuming, outputs, bad input;
and the headless report's stale/illegal split for every controller."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from game.ladder import __main__ as ladder
from game.ladder import store
from game.ladder.cells import Cell, matrix, parse_matchup, play
from game.ladder.stats import groups, wilson
from game.match.controllers import HeuristicController, RandomController, controller_rng
from game.match.headless import run_match
from game.match.maps import load


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 8 of 10: the Wilson 95% interval is [0.490, 0.943] (z = 1.96).
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson(40, 80)
    assert lo < 0.5 < hi and lo == pytest.approx(0.3930, abs=1e-4)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)


def test_the_matrix_swaps_sides_and_flips_odd_seeds() -> None:
    cells = matrix([("full", "heuristic"), ("heuristic", "heuristic")], ["skirmish"],
                   ["instant", "gpu"], range(2))  # fmt: skip
    llm = [c for c in cells if c.a == "full"]
    assert {(c.preset, c.seed, c.swap) for c in llm} == {
        (p, s, w) for p in ("instant", "gpu") for s in (0, 1) for w in (0, 1)
    }
    rule = [c for c in cells if c.a == "heuristic"]
    assert {c.preset for c in rule} == {"-"} and len(rule) == 4
    assert len({c.match_seed for c in rule}) == 4  # A == B: both sides are distinct matches
    assert [c.flipped for c in rule] == [False, False, True, True]


def test_a_flipped_cell_puts_blue_on_the_right() -> None:
    row = play(Cell("heuristic", "random", "skirmish", "-", 1, 1, turns=2))
    assert row["flipped"] and row["left_squad"] == "red" and row["a_squad"] == "red"
    assert row == play(Cell("heuristic", "random", "skirmish", "-", 1, 1, turns=2))


def test_matchups_are_checked() -> None:
    assert parse_matchup("full:heuristic") == ("full", "heuristic")
    for bad in ("full", "full:nobody", "full:simplified"):
        with pytest.raises(ValueError):
            parse_matchup(bad)


def test_an_interrupted_run_resumes_where_it_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "l"
    argv = ["--matchups", "heuristic:random", "--scenarios", "skirmish", "--seeds", "2",
            "--turns", "2", "--jobs", "1", "--out", str(out)]  # fmt: skip
    assert ladder.main(argv) == 0
    results = out.with_name("l.jsonl")
    lines = results.read_text().splitlines()
    assert len(lines) == 4
    # Keep two results and half of a third, as a kill mid-write would leave them.
    results.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    capsys.readouterr()
    assert ladder.main(argv) == 0
    err = capsys.readouterr().err
    assert "resuming: 2 of 4 matches already" in err
    again = [json.loads(line) for line in results.read_text().splitlines() if line.endswith("}")]
    assert sorted(r["key"] for r in again) == sorted(json.loads(x)["key"] for x in lines)
    assert {r["key"]: r["state_hash"] for r in again} == {
        json.loads(x)["key"]: json.loads(x)["state_hash"] for x in lines
    }
    summary = json.loads(out.with_name("l.json").read_text())
    assert summary["groups"][0]["matches"] == 4
    page = out.with_name("l.html").read_text()
    assert "<svg" in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_a_bad_results_line_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "l"
    out.with_name("l.jsonl").write_text('{"key": "x"}\n{"key": "y"}\n')
    with pytest.raises(SystemExit) as exc:
        ladder.main(["--scenarios", "skirmish", "--seeds", "1", "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "l.jsonl:1: not a ladder result" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--matchups", "full:simplified"],
        ["--seeds", "0"],
        ["--jobs", "0"],
        ["--scenarios", "moon"],
        ["--out", "/no/such/folder/x"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        ladder.main(argv)
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_rates_split_colour_and_map_position() -> None:
    def row(seed: int, swap: int, left: str, winner: str) -> dict[str, object]:
        return {"a": "heuristic", "b": "heuristic", "scenario": "s", "preset": "-",
                "a_squad": ("blue", "red")[swap], "left_squad": left, "winner": winner}  # fmt: skip

    rows = [row(0, 0, "blue", "blue"), row(0, 1, "blue", "blue"),
            row(1, 0, "red", "red"), row(1, 1, "red", "draw")]  # fmt: skip
    (g,) = groups(rows)
    assert (g.colour_rate("blue").wins, g.colour_rate("blue").decided) == (2, 3)
    assert (g.position_rate(left=True).wins, g.position_rate(left=True).decided) == (3, 3)
    assert g.draws == 1 and (g.a_rate.wins, g.a_rate.decided) == (1, 3)  # A: blue, seed 0


def test_the_report_splits_stale_and_illegal_steps_per_squad_for_every_controller() -> None:
    seed = 3
    ctl = {
        "blue": HeuristicController(controller_rng(seed, "blue")),
        "red": RandomController(controller_rng(seed, "red")),
    }
    report = run_match(load("skirmish"), seed, 6, ctl).report()
    for key in ("stale_steps", "illegal_steps", "retargeted_steps", "actions", "hold"):
        assert set(report[key]) == {"blue", "red"}, key
    split = {s: report["stale_steps"][s] + report["illegal_steps"][s] for s in ("blue", "red")}
    assert split == report["invalid_by_squad"]
    assert sum(split.values()) > 0
    assert report["hold_turns"] == 3 and report["win_reason"] in (
        None,
        "wiped",
        "objective",
        "both_wiped",
        "turn_limit",
    )


def test_store_keeps_rows_as_written(tmp_path: Path) -> None:
    row = play(Cell("heuristic", "heuristic", "skirmish", "-", 0, 0, turns=1))
    path = tmp_path / "r.jsonl"
    store.append(path, row)
    assert store.read(path) == [json.loads(json.dumps(row))]
