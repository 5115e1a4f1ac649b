"""A warm cache built from recorded matches (`python -m game.match.warmup`): the same
entries the match itself saved, hits in the next game, bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from game.__main__ import main as game_main
from game.match.cli import build_parser
from game.match.launch import build
from game.match.maps import load
from game.match.warmup import main

MATCH = ["--headless", "--backend", "sim", "--red", "llm", "--blue", "heuristic"]


def recorded(tmp_path: Path, scenario: str, seed: int) -> tuple[Path, Path]:
    """A match played with --record and --cache-save: (record, saved cache)."""
    record, saved = tmp_path / f"{scenario}{seed}.jsonl", tmp_path / f"{scenario}{seed}.json"
    argv = [*MATCH, "--scenario", scenario, "--seed", str(seed)]
    assert game_main([*argv, "--record", str(record), "--cache-save", str(saved)]) == 0
    return record, saved


def entries(path: Path) -> dict[str, dict[str, object]]:
    return {e["key"]: e for e in json.loads(path.read_text("utf-8"))["entries"]}


def test_a_cache_built_from_a_record_holds_the_entries_its_match_saved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # village seed 2 has cache hits and adapted hits: they are not stored, by either path
    record, saved = recorded(tmp_path, "village", 2)
    built = tmp_path / "built.json"
    assert main([str(record), "--out", str(built)]) == 0
    out = capsys.readouterr().out
    assert entries(built) == entries(saved)
    assert f"-> {len(entries(saved))} cache entries" in out
    assert "other plans left out" in out and "(0 other" not in out


def test_records_build_one_cache_that_starts_a_game_warm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, saved_first = recorded(tmp_path, "skirmish", 1)
    second, saved_second = recorded(tmp_path, "village", 3)
    built = tmp_path / "built.json"
    assert main([str(first), str(second), "--out", str(built)]) == 0
    # every recorded plan, as its match stored it (a round still in flight when a match
    # ends is stored after its record closed: the saved caches may hold a few more)
    saved = entries(saved_first) | entries(saved_second)
    assert entries(built).items() <= saved.items()
    assert len(entries(built)) >= len(saved) - 4
    # The same seed again, started from the built cache: its first round is served by
    # exact hits (an empty cache has none to give).
    args = build_parser().parse_args(
        [*MATCH, "--scenario", "skirmish", "--seed", "1", "--cache-load", str(built)]
    )
    session = build(args, load("skirmish"), window=False).session
    session.run_to_end()
    session.close()
    first_round = session.round_stats[0]
    assert first_round.cache_hits - first_round.cache_adapted > 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty record"),
        ('{"kind":"round"}\n', "bad record line"),
        ("not json\n", "record"),
    ],
)
def test_a_bad_record_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, says: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(text, "utf-8")
    with pytest.raises(SystemExit) as exc:
        main([str(bad), "--out", str(tmp_path / "out.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err
    assert err.startswith("python -m game.match.warmup: error:")
    assert not (tmp_path / "out.json").exists()


def test_a_missing_record_and_a_bad_out_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        [str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "out.json")],
        [str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "no" / "out.json")],
        [str(tmp_path / "none.jsonl"), "--out", str(tmp_path)],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
