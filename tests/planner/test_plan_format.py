"""The plan format from end to end: each backend profile's, the setting and its flag,
what a round asks for (prompt, schemas, cache keys), and whole matches in both formats."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from game.__main__ import main
from game.match.cli import build_parser
from game.match.launch import planner_settings
from game.match.record import load_record
from planner.backends.base import Capabilities
from planner.backends.profiles import PROFILES
from planner.cache import cache_key, situation_key
from planner.events import PlanDelivered, RoundDone
from planner.fallback import TIER_TOOLS, Tier
from planner.prompts import system_prompt
from planner.schema import AgentScope, PlanFormat, plan_json_schema
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from tests.planning_helpers import ScriptedBackend, make_core, planning_round, run_round

COMPACT_CAPS = Capabilities(schema_outside_prompt_cache=True, plan_format="compact")


# --- who gets which format ------------------------------------------------------------


def test_local_engines_and_the_sim_get_compact_openai_and_unknown_servers_verbose() -> None:
    formats = {name: p.capabilities.plan_format for name, p in PROFILES.items()}
    assert formats == {
        "ollama": "compact",
        "llamacpp": "compact",
        "llamacpp_python": "compact",
        "vllm": "compact",
        "sglang": "compact",
        "lmstudio": "compact",
        "openai": "verbose",
        "generic": "verbose",
    }
    assert SimBackend.capabilities.plan_format == "compact"
    assert Capabilities().plan_format == "verbose"


@pytest.mark.parametrize(
    ("setting", "caps", "expected"),
    [
        ("auto", COMPACT_CAPS, "compact"),
        ("auto", Capabilities(), "verbose"),
        ("verbose", COMPACT_CAPS, "verbose"),
        ("compact", Capabilities(), "compact"),
    ],
)
def test_the_setting_picks_the_format_auto_asks_the_backend(
    setting: str, caps: Capabilities, expected: PlanFormat
) -> None:
    settings = PlannerSettings(plan_format=setting)  # type: ignore[arg-type]
    assert settings.plan_format_for(caps) == expected


def test_an_unknown_format_setting_is_refused() -> None:
    assert PlannerSettings().plan_format == "auto"
    with pytest.raises(ValueError, match="plan format"):
        PlannerSettings(plan_format="tiny")  # type: ignore[arg-type]


def test_the_flag_reaches_the_settings() -> None:
    parser = build_parser()
    assert planner_settings(parser.parse_args([])).plan_format == "auto"
    for value in ("auto", "verbose", "compact"):
        args = parser.parse_args(["--plan-format", value])
        assert planner_settings(args).plan_format == value
    with pytest.raises(SystemExit):
        parser.parse_args(["--plan-format", "tiny"])


# --- what a round asks for -------------------------------------------------------------


def _answer(ids: list[int], fmt: PlanFormat) -> str:
    if fmt == "compact":
        return '{"plans":[' + ",".join(f'[{i},[["Scan"],["Wait"]]]' for i in ids) + "]}"
    return (
        '{"plans":['
        + ",".join(f'{{"agent_id":{i},"steps":[{{"act":"Scan"}},{{"act":"Wait"}}]}}' for i in ids)
        + "]}"
    )


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_a_round_asks_in_the_format_and_takes_its_answer(fmt: PlanFormat) -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = ScriptedBackend([_answer(ids, fmt)], capabilities=COMPACT_CAPS)
    settings = PlannerSettings(mode="batched", plan_format=fmt)
    events = run_round(make_core(backend), settings, planning)
    [request] = backend.requests
    grid = planning.grid
    tools = TIER_TOOLS[Tier.simplified_llm]
    assert request.system == system_prompt(Tier.simplified_llm, fmt, True)
    assert request.schema == plan_json_schema(tools, grid.width, grid.height, fmt=fmt, intent=True)
    scopes = [AgentScope.of(s, grid) for s in sorted(planning.snapshots, key=lambda s: s.me.id)]
    pinned = plan_json_schema(tools, grid.width, grid.height, scopes, fmt=fmt, intent=True)
    assert request.pinned_schema == pinned
    plans = [e for e in events if isinstance(e, PlanDelivered)]
    assert sorted(e.outcome.agent_id for e in plans) == ids
    assert all(e.outcome.tier == Tier.simplified_llm for e in plans)


def test_auto_follows_the_backend_and_the_static_schema_is_kept_per_format() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = ScriptedBackend([_answer(ids, "compact")], capabilities=COMPACT_CAPS)
    core = make_core(backend)
    run_round(core, PlannerSettings(mode="batched", cache=False), planning)
    assert backend.requests[0].system == system_prompt(Tier.simplified_llm, "compact", True)
    backend.capabilities = replace(COMPACT_CAPS, plan_format="verbose")
    backend.replies.append(_answer(ids, "verbose"))
    run_round(core, PlannerSettings(mode="batched", cache=False), planning)
    first, second = backend.requests
    assert second.system == system_prompt(Tier.simplified_llm, "verbose", True)
    assert first.schema != second.schema
    grid = planning.grid
    assert core.static_schema(Tier.simplified_llm, grid, "compact", True) is first.schema
    assert core.static_schema(Tier.simplified_llm, grid, "verbose", True) is second.schema


def test_cache_keys_include_the_format() -> None:
    snap = planning_round().snapshots[0]
    options = {"scenario": "village"}
    assert cache_key("m", "t", options, "b") == cache_key("m", "t", options, "b", fmt="verbose")
    assert cache_key("m", "t", options, "b", fmt="verbose") != cache_key(
        "m", "t", options, "b", fmt="compact"
    )
    assert situation_key("m", "t", options, snap, fmt="verbose") != situation_key(
        "m", "t", options, snap, fmt="compact"
    )


def test_a_plan_cached_in_one_format_is_not_served_in_the_other() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = ScriptedBackend(
        [_answer(ids, "verbose"), _answer(ids, "compact")], capabilities=COMPACT_CAPS
    )
    core = make_core(backend)
    # exact keys only (a situation hit of a teammate's plan would blur what is tested)
    verbose = PlannerSettings(mode="batched", plan_format="verbose", similarity=False)
    run_round(core, verbose, planning)
    again = run_round(core, verbose, planning)
    assert len(backend.requests) == 1  # served from the cache
    assert next(e for e in again if isinstance(e, RoundDone)).stats.cache_hits == len(ids)
    compact = PlannerSettings(mode="batched", plan_format="compact", similarity=False)
    other = run_round(core, compact, planning)
    assert len(backend.requests) == 2  # asked again: a compact prompt was never answered
    assert next(e for e in other if isinstance(e, RoundDone)).stats.cache_hits == 0


# --- whole matches ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_a_headless_match_in_each_format_gets_valid_llm_plans(
    fmt: PlanFormat, tmp_path: Path
) -> None:
    record, report = tmp_path / "m.jsonl", tmp_path / "r.json"
    args = ["--headless", "--backend", "sim", "--scenario", "siege", "--turns", "4"]
    args += ["--seed", "5", "--num-parallel", "16", "--plan-format", fmt]
    assert main([*args, "--record", str(record), "--report", str(report)]) == 0
    data = json.loads(report.read_text("utf-8"))
    assert data["llm_plan_share"] >= 0.9 and data["plans_by_tier"]["simplified_llm"] > 0
    loaded = load_record(record)
    assert loaded.header.settings["plan_format"] == fmt
    lines = [json.loads(line) for line in record.read_text("utf-8").splitlines()]
    events = [e for e in lines if e["kind"] == "event"]
    systems = {e["data"]["system"] for e in events if e["type"] == "RequestSent"}
    assert systems == {system_prompt(Tier.simplified_llm, fmt, True)}
    raws = [
        e["data"]["raw"]
        for e in events
        if e["type"] == "PlanDelivered"
        and e["data"]["outcome"]["tier"] == "simplified_llm"
        and not e["data"]["outcome"]["from_cache"]  # a hit has no answer of its own
    ]
    assert raws and all(raw.startswith("[" if fmt == "compact" else "{") for raw in raws)


def test_auto_on_the_sim_is_compact_and_the_record_says_so(tmp_path: Path) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "skirmish", "--turns", "2"]
    assert main([*args, "--record", str(record)]) == 0
    assert load_record(record).header.settings["plan_format"] == "compact"
