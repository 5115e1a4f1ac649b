"""Intents in the schemas: optional, bounded, and never a way around one plan per agent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from planner.backends.base import Capabilities
from planner.events import PlanDelivered
from planner.fallback import TIER_TOOLS, Tier
from planner.schema import (
    INTENT_MAX_CHARS,
    AgentScope,
    PlanFormat,
    max_answer_chars,
    plan_json_schema,
)
from planner.settings import PlannerSettings
from tests.planning_helpers import ScriptedBackend, make_core, planning_round, run_round
from tests.schema_check import check

TOOLS = TIER_TOOLS[Tier.simplified_llm]


def plan(fmt: PlanFormat, agent_id: int, intent: object = "absent") -> Any:
    if fmt == "compact":
        return [agent_id, [["Scan"]]] + ([] if intent == "absent" else [intent])
    out: dict[str, Any] = {"agent_id": agent_id, "steps": [{"act": "Scan"}]}
    if intent != "absent":
        out["intent"] = intent
    return out


def pinned(fmt: PlanFormat, intent: bool = True) -> tuple[dict[str, Any], list[int]]:
    planning = planning_round()
    grid = planning.grid
    snaps = sorted(planning.snapshots, key=lambda s: s.me.id)
    scopes = [AgentScope.of(s, grid) for s in snaps]
    schema = plan_json_schema(TOOLS, grid.width, grid.height, scopes, fmt=fmt, intent=intent)
    return schema, [s.me.id for s in snaps]


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_pinned_schema_with_intents_still_admits_exactly_one_plan_per_agent(
    fmt: PlanFormat,
) -> None:
    schema, ids = pinned(fmt)
    good = [plan(fmt, i, f"hold the square #{i}") for i in ids]
    assert check(schema, {"plans": good}) == []
    assert check(schema, {"plans": good[:-1]}) != []  # an agent skipped
    assert check(schema, {"plans": [good[0], *good[:-1]]}) != []  # one repeated
    assert check(schema, {"plans": [*good, plan(fmt, max(ids) + 1, "x")]}) != []  # invented
    swapped = [good[1], good[0], *good[2:]]
    assert check(schema, {"plans": swapped}) != []  # out of the prompt's order
    # every position keeps its one id whatever the intent
    positions = schema["properties"]["plans"]["prefixItems"]
    ids_at = [
        p["prefixItems"][0]["enum"] if fmt == "compact" else p["properties"]["agent_id"]["enum"]
        for p in positions
    ]
    assert ids_at == [[i] for i in ids]


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_the_intent_is_optional_bounded_and_plain(fmt: PlanFormat) -> None:
    schema, ids = pinned(fmt)
    without = None if fmt == "verbose" else "absent"  # strict mode: null, not missing
    assert check(schema, {"plans": [plan(fmt, i, without) for i in ids]}) == []
    for bad in ("x" * (INTENT_MAX_CHARS + 1), 'say "hi"', "a\\b", 7):
        errors = check(
            schema, {"plans": [plan(fmt, ids[0], bad), *map(lambda i: plan(fmt, i), ids[1:])]}
        )
        assert errors != [], bad
    assert check(schema, {"plans": [plan(fmt, i, "x" * INTENT_MAX_CHARS) for i in ids]}) == []


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_intent_off_leaves_no_trace_in_the_schemas(fmt: PlanFormat) -> None:
    schema, ids = pinned(fmt, intent=False)
    static = plan_json_schema(TOOLS, 20, 14, fmt=fmt)
    for s in (schema, static):
        assert "intent" not in json.dumps(s) and "pattern" not in json.dumps(s)
    assert check(schema, {"plans": [plan(fmt, i, "hold") for i in ids]}) != []
    assert "pattern" in json.dumps(plan_json_schema(TOOLS, 20, 14, fmt=fmt, intent=True))


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_the_output_budget_holds_the_longest_intent(fmt: PlanFormat) -> None:
    schema, ids = pinned(fmt)
    off, _ = pinned(fmt, intent=False)
    extra = max_answer_chars(schema, len(ids)) - max_answer_chars(off, len(ids))
    per_plan = (
        len(',"intent":') + 2 + INTENT_MAX_CHARS if fmt == "verbose" else 3 + INTENT_MAX_CHARS
    )
    assert extra == len(ids) * per_plan


@pytest.mark.parametrize("intent", [True, False])
@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_a_round_asks_for_intents_only_when_on_and_delivers_them(
    fmt: PlanFormat, intent: bool
) -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    if fmt == "compact":
        plans = [f'[{i},[["Scan"]],"watch #{i}"]' for i in ids]
    else:
        plans = [
            f'{{"agent_id":{i},"steps":[{{"act":"Scan"}}],"intent":"watch #{i}"}}' for i in ids
        ]
    answer = '{"plans":[' + ",".join(plans) + "]}"
    caps = Capabilities(schema_outside_prompt_cache=True, plan_format=fmt)
    backend = ScriptedBackend([answer], capabilities=caps)
    settings = PlannerSettings(mode="batched", cache=False, intent=intent)
    events = run_round(make_core(backend), settings, planning)
    [request] = backend.requests
    for schema in (request.schema, request.pinned_schema):
        assert ("pattern" in json.dumps(schema)) is intent
    assert ("intent" in request.system) is intent
    delivered = {
        e.outcome.agent_id: e.outcome.intent for e in events if isinstance(e, PlanDelivered)
    }
    assert delivered == {i: f"watch #{i}" if intent else None for i in ids}
