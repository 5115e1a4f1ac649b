"""Pinned schemas (one position per agent, each agent's values in its scope) and the
output budget they give: what a grammar engine can be told so that every agent gets
exactly one plan, and a plan the validator keeps."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from game.match.maps import load
from game.rules.actions import check_step
from game.rules.steps import FULL_TOOLS, MAX_STEPS, SIMPLIFIED_TOOLS, STEP_TYPES
from planner.fallback import TIER_TOOLS, Tier
from planner.schema import (
    AgentPlan,
    AgentScope,
    PlanFormat,
    max_answer_chars,
    plan_json_schema,
    step_fields,
)
from planner.validate import validate_plan
from tests.planner.test_schema_json import check
from tests.planning_helpers import planning_round, squad_snapshots


def nodes(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found += nodes(value)
    elif isinstance(node, list):
        for value in node:
            found += nodes(value)
    return found


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def alternatives(schema: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
    node = resolve(schema, node)
    return [resolve(schema, n) for n in node["anyOf"]] if "anyOf" in node else [node]


def compact_values(schema: dict[str, Any], step: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every compact step one alternative of a step union allows: [act, *values]."""
    columns = []
    for item in step["prefixItems"]:
        item = resolve(schema, item)
        columns.append(item["enum"])
    return list(itertools.product(*columns))


SCOPE = AgentScope(
    7,
    steps={"MoveTo": None, "Attack": ((9,), (11,)), "TakeCover": ((2, 3),), "Scan": None},
    first={"Attack": ((11,),), "Scan": None},
)


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_a_scope_bounds_targets_cover_and_the_first_step(fmt: PlanFormat) -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, [SCOPE], fmt=fmt)
    # llama-cpp-python ignores minimum/maximum: pinned coordinates are enums
    assert not any("minimum" in n or "maximum" in n for n in nodes(schema))
    assert schema["$defs"]["x"] == {"type": "integer", "enum": list(range(16))}
    assert schema["$defs"]["y"] == {"type": "integer", "enum": list(range(12))}

    def plan(*steps: list[Any]) -> dict[str, Any]:
        if fmt == "compact":
            return {"plans": [[7, list(steps)]]}
        objs = [{"act": s[0], **dict(zip(step_fields(s[0]), s[1:], strict=True))} for s in steps]
        return {"plans": [{"agent_id": 7, "steps": objs}]}

    assert check(schema, plan(["Attack", 11], ["MoveTo", 15, 11], ["Attack", 9])) == []
    assert check(schema, plan(["Scan"], ["TakeCover", 2, 3])) == []
    assert check(schema, plan(["Attack", 9]))  # 9 is not attackable now, only later
    assert check(schema, plan(["MoveTo", 1, 1]))  # a first step out of its scope
    assert check(schema, plan(["Scan"], ["Attack", 4]))  # 4 is not an enemy it knows
    assert check(schema, plan(["Scan"], ["TakeCover", 3, 3]))  # not a cover tile it knows
    assert check(schema, plan(["Scan"], ["MoveTo", 16, 0]))  # off the map
    assert check(schema, plan(["Scan"], ["Reload"]))  # not in scope at all
    assert check(schema, plan(*[["Scan"]] * (MAX_STEPS + 1)))
    assert check(schema, plan(*[["Scan"]] * MAX_STEPS)) == []


def test_without_a_stricter_first_step_the_steps_are_a_plain_array() -> None:
    scope = AgentScope(7, steps={"Scan": None, "Wait": None})
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, [scope], fmt="compact")
    [position] = schema["properties"]["plans"]["prefixItems"]
    steps = position["prefixItems"][1]
    assert steps["type"] == "array" and (steps["minItems"], steps["maxItems"]) == (1, MAX_STEPS)
    assert [s["prefixItems"][0]["enum"] for s in steps["items"]["anyOf"]] == [["Scan"], ["Wait"]]


@pytest.mark.parametrize("scenario", ["skirmish", "village"])
@pytest.mark.parametrize("tools", [SIMPLIFIED_TOOLS, FULL_TOOLS], ids=["simplified", "full"])
def test_every_first_step_the_schema_allows_is_legal_now(
    scenario: str, tools: frozenset[str]
) -> None:
    """The first step is judged in full by validation (check_step): every value the
    pinned schema offers for it passes, except a MoveTo, whose tile may be repaired."""
    grid = load(scenario).grid
    for snap in squad_snapshots(scenario) + squad_snapshots(scenario, "blue"):
        schema = plan_json_schema(
            tools, grid.width, grid.height, [AgentScope.of(snap, grid)], fmt="compact"
        )
        [position] = schema["properties"]["plans"]["prefixItems"]
        shapes = alternatives(schema, position["prefixItems"][1])
        heads = {json.dumps(s["prefixItems"][0]) for s in shapes if "prefixItems" in s}
        assert len(heads) <= 1, heads
        first = shapes[0]["prefixItems"][0] if "prefixItems" in shapes[0] else shapes[0]["items"]
        offered = 0
        for option in alternatives(schema, first):
            for act, *values in compact_values(schema, option):
                assert act in tools
                if act == "MoveTo":
                    continue
                step = STEP_TYPES[act](**dict(zip(step_fields(act), values, strict=True)))
                assert check_step(step, snap, grid) is None, (snap.me, step)
                offered += 1
        assert offered > 0


def test_scopes_of_a_real_round_keep_every_plan_they_allow() -> None:
    """Pinned to the scopes, any plan the schema admits keeps at least its first step."""
    planning = planning_round(scenario="skirmish")
    grid = planning.grid
    tools = TIER_TOOLS[Tier.full_llm]
    for snap in planning.snapshots:
        scope = AgentScope.of(snap, grid)
        assert scope.first is not None and scope.steps is not None
        assert set(scope.first) <= set(scope.steps)
        for act, values in scope.first.items():
            if values is None or act == "MoveTo":
                continue
            for v in values:
                step = STEP_TYPES[act](**dict(zip(step_fields(act), v, strict=True)))
                checked = validate_plan(
                    AgentPlan(agent_id=snap.me.id, steps=(step,)), snap, grid, tools
                )
                assert checked.valid, (act, v)


# --- the output budget ----------------------------------------------------------------


def test_the_budget_is_the_longest_answer_exactly() -> None:
    schema = plan_json_schema(["Wait"], 9, 9, agent_ids=[3, 12], fmt="compact")
    longest = {"plans": [[3, [["Wait"]] * MAX_STEPS], [12, [["Wait"]] * MAX_STEPS]]}
    text = json.dumps(longest, separators=(",", ":"))
    assert max_answer_chars(schema, 2) == len(text)
    tokens = len(text.replace("[", "[ ").replace(",", ", ").replace("{", "{ ").split(" "))
    # one character of whitespace may follow every token (llama-cpp-python's grammar)
    assert max_answer_chars(schema, 2, whitespace=1) >= len(text) + tokens - 1


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
@pytest.mark.parametrize("whitespace", [0, 1, 22])
def test_every_answer_a_schema_allows_fits_its_budget(fmt: PlanFormat, whitespace: int) -> None:
    planning = planning_round(scenario="village")
    grid = planning.grid
    scopes = [AgentScope.of(s, grid) for s in planning.snapshots]
    pinned = plan_json_schema(FULL_TOOLS, grid.width, grid.height, scopes, fmt=fmt)
    static = plan_json_schema(FULL_TOOLS, grid.width, grid.height, fmt=fmt)
    n = len(scopes)
    budget = max_answer_chars(pinned, n, whitespace)
    assert budget <= max_answer_chars(static, n, whitespace)  # pinned is never longer
    # the longest steps, as many as allowed, every agent: still within the budget
    step = (
        ["ThrowExplosive", grid.width - 1, grid.height - 1]
        if fmt == "compact"
        else {"act": "ThrowExplosive", "x": grid.width - 1, "y": grid.height - 1}
    )
    plans = [
        [s.agent_id, [step] * MAX_STEPS]
        if fmt == "compact"
        else {"agent_id": s.agent_id, "steps": [step] * MAX_STEPS}
        for s in scopes
    ]
    text = json.dumps({"plans": plans}, separators=(",", ":"))
    assert len(text) <= max_answer_chars(static, n, 0)
    # a space after every comma and colon (what json.dumps writes by default)
    assert len(json.dumps({"plans": plans})) <= max_answer_chars(static, n, max(whitespace, 1))


def test_a_budget_needs_bounds() -> None:
    with pytest.raises(ValueError, match="no length bound"):
        max_answer_chars({"type": "string"}, 1)
