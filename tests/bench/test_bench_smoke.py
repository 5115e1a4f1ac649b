"""The bench's code paths run and report the right columns (never its speed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.bench import cli as bench
from planner.bench import data as bench_data
from planner.bench import micro as bench_micro
from planner.bench import modes as bench_modes
from planner.bench import stress as bench_stress
from planner.bench.server import ChildSimServer
from planner.bench.stats import percentile, table
from planner.prompts import SINGLE_PROMPT_LIMIT


def test_agents_are_distinct_and_cloned_past_the_squad() -> None:
    snaps = bench_data.agents(40, turn=3)
    ids = bench_data.ids(snaps)
    assert len(set(ids)) == 40
    assert all(s.turn == 3 for s in snaps)
    later = bench_data.ids(bench_data.agents(5, first_clone=10))
    assert not set(later) & set(ids)


def test_percentile_and_table() -> None:
    assert percentile([5.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([5.0, 1.0, 3.0, 2.0], 99) == 5.0
    text = table(("a", "bb"), [["1", "2"]])
    assert text.splitlines()[0] == "| a | bb |"


def test_mode_table_on_the_instant_sim_with_two_agents() -> None:
    lines: list[str] = []
    results = bench_modes.run_table(
        preset="instant",
        agents=2,
        rounds=1,
        servers=(16,),
        progress=lines.append,
        in_process=True,
    )
    assert [(r.config.mode, r.config.stream) for r in results] == [
        ("auto", True),
        ("auto", False),
        ("batched", True),
        ("batched", False),
        ("sequential", True),
        ("sequential", False),
        ("parallel", True),
        ("parallel", False),
    ]
    for res in results:
        s = res.summary()
        assert s["fallbacks"] == 0
        assert s["ttfp_limit_ms"] is not None and s["ttfp_ms"] >= s["ttfp_limit_ms"]
        assert len(res.overheads) == 2  # both plans matched to their emission
        assert all(o >= 0 for o in res.overheads)
        assert s["requests"] == (1 if s["mode"] == "batched" else 2)
    header = bench_modes.render(results).splitlines()[0]
    for column in ("ttft", "ttfp", "limit", "ratio", "ovh p99", "prompt tok (cached)"):
        assert column in header
    assert any("round 1/1" in line for line in lines)


def test_micro_benchmarks_report_every_case() -> None:
    parser = bench_micro.parser(agents=(2, 20), repeats=1)
    assert [(r["format"], r["agents"]) for r in parser] == [
        ("verbose", 2),
        ("verbose", 20),
        ("compact", 2),
        ("compact", 20),
    ]
    assert all(r["plans"] == r["agents"] and r["us_per_token"] > 0 for r in parser)
    cache = bench_micro.cache(entries=64, lookups=200)
    assert {r["case"] for r in cache} >= {"hit", "miss", "situation hit"}
    prompts = bench_micro.prompts(agents=(1, 3), repeats=1)
    assert [r["agents"] for r in prompts] == [1, 3]
    sizes = bench_micro.prompt_sizes(turns=3)
    assert [(r["tier"], r["prompt"]) for r in sizes] == [
        ("simplified_llm", "terrain+intent"),
        ("simplified_llm", "bare"),
        ("full_llm", "terrain+intent"),
        ("full_llm", "bare"),
    ]
    assert sizes[1]["single_max"] < sizes[0]["single_max"] <= SINGLE_PROMPT_LIMIT
    assert sizes[0]["single_max"] < sizes[3]["single_max"] < sizes[2]["single_max"]
    tokens = bench_micro.plan_tokens(turns=3)
    assert [(r["tier"], r["intent"], r["format"]) for r in tokens] == [
        (tier, intent, fmt)
        for tier in ("simplified_llm", "full_llm")
        for intent in (True, False)
        for fmt in ("verbose", "compact")
    ]
    for verbose, compact in zip(tokens[::2], tokens[1::2], strict=True):
        assert verbose["plans"] == compact["plans"] > 0  # the same plans, written two ways
        assert compact["tokens_per_plan"] < 0.75 * verbose["tokens_per_plan"]
        assert compact["tokens_per_plan"] < compact["answer_tokens_per_plan"]
    for on, off in zip(tokens[0::4] + tokens[1::4], tokens[2::4] + tokens[3::4], strict=True):
        assert on["tokens_per_plan"] > off["tokens_per_plan"]  # an intent costs tokens
    micro = {
        "parser": parser,
        "cache": cache,
        "prompts": prompts,
        "prompt_sizes": sizes,
        "plan_tokens": tokens,
    }
    text = bench_micro.render(micro)
    assert "us/token" in text and "p95 us" in text and "simplified / full" in text
    assert "Output tokens per plan" in text and "x verbose" in text
    targets = bench.micro_targets({"parser": parser, "cache": cache, "prompts": prompts})
    assert {t["unit"] for t in targets} == {"us", "x"}


def test_stress_counts_hits_and_plans() -> None:
    s = bench_stress.run_stress(
        preset="instant",
        agents=4,
        duration_s=0.3,
        hit_rate=0.5,
        budget_ms=2000,
        in_process=True,
        progress=lambda _: None,
    )
    assert s["rounds"] >= 1 and s["plans"] == 4 * s["rounds"]
    assert s["hit_rate"] == pytest.approx(0.5)
    assert s["tiers"]["cache"] == 2 * s["rounds"]
    assert "plans/s" in bench_stress.render(s)


def test_child_server_reports_its_emissions() -> None:
    with ChildSimServer("instant", 1) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.emissions() == {}


def test_cli_quick_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    argv = ["--quick", "--preset", "instant", "--agents", "2", "--num-parallel", "16"]
    assert bench.main([*argv, "--in-process", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert len(report["modes"]) == 8
    assert {"parser", "cache", "prompts", "plan_tokens"} <= report["micro"].keys()
    names = [t["target"] for t in report["targets"]]
    assert any("overhead p99" in n for n in names)
    assert any("cache hit" in n for n in names)
    assert "Targets" in capsys.readouterr().out


def test_cli_rejects_bad_numbers() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--hit-rate", "2"])
