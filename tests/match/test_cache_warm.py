"""Warm starts in whole matches: --cache-save then --cache-load; act_wait in the report;
a bad cache file is one line and exit 2 before the match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from game.__main__ import main
from game.match.cli import build_parser
from game.match.launch import build
from game.match.maps import load
from game.match.session import Session

MATCH = ["--headless", "--backend", "sim", "--scenario", "skirmish", "--red", "llm"]


def played(*extra: str) -> Session:
    args = build_parser().parse_args([*MATCH, *extra])
    session = build(args, load("skirmish"), window=False).session
    session.run_to_end()
    session.close()
    return session


def test_a_saved_cache_starts_the_next_match_warm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "cache.json"
    report = tmp_path / "report.json"
    assert main([*MATCH, "--seed", "1", "--cache-save", str(saved)]) == 0
    entries = json.loads(saved.read_text("utf-8"))["entries"]
    assert entries and all(e["tier"] in ("simplified_llm", "full_llm") for e in entries)
    cold = played("--seed", "2")
    assert main([*MATCH, "--seed", "2", "--cache-load", str(saved), "--report", str(report)]) == 0
    warm = json.loads(report.read_text("utf-8"))
    # The same file loaded again: the same match, the same hits.
    again = played("--seed", "2", "--cache-load", str(saved))
    assert again.result_summary()["cache_hits"] == warm["cache_hits"]
    assert again.world.state_hash() == warm["state_hash"]
    # The opening repeats exactly: the warm match's first round has exact (not adapted)
    # hits, which an empty cache cannot give.
    first_cold, first_warm = cold.round_stats[0], again.round_stats[0]
    assert first_cold.cache_hits - first_cold.cache_adapted == 0
    assert first_warm.cache_hits - first_warm.cache_adapted > 0
    assert warm["cache_hit_rate"] == round(
        warm["cache_hits"] / (warm["cache_hits"] + warm["cache_misses"]), 4
    )
    assert 0 <= warm["cache_adapted"] <= warm["cache_hits"]
    capsys.readouterr()


def test_act_wait_is_zero_for_a_hit_and_counts_every_llm_plan(tmp_path: Path) -> None:
    saved = tmp_path / "cache.json"
    assert main([*MATCH, "--seed", "1", "--cache-save", str(saved)]) == 0
    session = played("--seed", "3", "--cache-load", str(saved))
    summary = session.result_summary()
    llm_plans = summary["plans_by_tier"]["simplified_llm"] + summary["plans_by_tier"]["full_llm"]
    waits = session.act_waits_ms
    assert summary["act_wait_ms"]["plans"] == len(waits) <= llm_plans
    # every hit is in place at its turn's start (rounds start at the turn, not ahead)
    assert waits.count(0.0) >= summary["cache_hits"] > 0
    assert all(w % 250 == 0 for w in waits)  # the world acts on whole ticks
    assert summary["act_wait_ms"]["p95"] == max(sorted(waits)[: -(-95 * len(waits) // 100)])
    assert list(session.log.samples["act_wait"]) == waits


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{", "not JSON"),
        ('{"version":1,"entries":[{"key":"zz"}]}', "entries.0.key"),
    ],
)
def test_a_bad_cache_file_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, "utf-8")
    with pytest.raises(SystemExit) as exc:
        main([*MATCH, "--cache-load", str(path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_a_missing_cache_file_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*MATCH, "--cache-load", str(tmp_path / "absent.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot read cache" in err


def test_a_warm_match_replays_its_hits_from_the_same_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved, record = tmp_path / "cache.json", tmp_path / "match.jsonl"
    original, replayed = tmp_path / "original.json", tmp_path / "replayed.json"
    assert main([*MATCH, "--seed", "1", "--cache-save", str(saved)]) == 0
    warm = ["--cache-load", str(saved)]
    assert (
        main([*MATCH, "--seed", "2", *warm, "--record", str(record), "--report", str(original)])
        == 0
    )
    replay = ["--headless", "--replay", str(record), "--report", str(replayed)]
    assert main([*replay, *warm]) == 0
    first, again = (json.loads(p.read_text("utf-8")) for p in (original, replayed))
    assert first["cache_hits"] > 0
    for field in ("plans_by_tier", "cache_hits", "cache_adapted", "state_hash"):
        assert again[field] == first[field], field
    capsys.readouterr()


def test_a_cache_file_carries_the_cache_from_game_to_game(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = tmp_path / "plans.json"
    assert main([*MATCH, "--seed", "1", "--cache-file", str(kept)]) == 0  # none yet: cold
    first = set(e["key"] for e in json.loads(kept.read_text("utf-8"))["entries"])
    assert first
    # The same seed again starts with the first game's plans: exact hits in its first
    # round, and the file keeps them with what the second game added.
    again = played("--seed", "1", "--cache-file", str(kept))
    assert again.round_stats[0].cache_hits - again.round_stats[0].cache_adapted > 0
    assert main([*MATCH, "--seed", "4", "--cache-file", str(kept)]) == 0
    assert first <= set(e["key"] for e in json.loads(kept.read_text("utf-8"))["entries"])
    assert not list(tmp_path.glob("*.part"))  # written whole, then renamed
    capsys.readouterr()


@pytest.mark.parametrize(
    "extra",
    [
        ["--cache-load", "x.json"],
        ["--cache-save", "x.json"],
        ["--record", "x.jsonl"],
    ],
)
def test_a_cache_file_with_a_flag_it_replaces_or_a_record_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    extra = [str(tmp_path / a) if a.startswith("x.") else a for a in extra]
    with pytest.raises(SystemExit) as exc:
        main([*MATCH, "--cache-file", str(tmp_path / "plans.json"), *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--cache-file" in err
