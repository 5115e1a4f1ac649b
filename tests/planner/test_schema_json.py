"""The JSON schema sent to servers, in both plan formats: strict-mode shape (verbose),
prefixItems tuples (compact), bounds, tools, pinning, stability."""

from __future__ import annotations

import json
from typing import Any

import pytest

from game.rules.steps import FULL_TOOLS, MAX_STEPS, SIMPLIFIED_TOOLS, STEP_TYPES
from planner.schema import SCHEMA_NAME, SCHEMA_VERSION, PlanFormat, plan_json_schema
from tests.schema_check import check

# OpenAI strict structured outputs accept only these keywords (no default, no
# oneOf, no discriminator, no $defs needed).
ALLOWED = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "enum",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
}


def walk(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        found.append(node)
        for key, value in node.items():
            if key == "properties":
                for sub in value.values():
                    found += walk(sub)
            elif key in ("items", "anyOf", "prefixItems"):
                found += walk(value)
    elif isinstance(node, list):
        for sub in node:
            found += walk(sub)
    return found


SAMPLE = {
    "plans": [
        {
            "agent_id": 3,
            "steps": [{"act": "MoveTo", "x": 4, "y": 7}, {"act": "Attack", "target_id": 9}],
        },
        {"agent_id": 5, "steps": [{"act": "TakeCover", "x": 0, "y": 11}, {"act": "Reload"}]},
    ]
}


@pytest.mark.parametrize("tools", [FULL_TOOLS, SIMPLIFIED_TOOLS], ids=["full", "simplified"])
def test_strict_mode_shape(tools: frozenset[str]) -> None:
    schema = plan_json_schema(tools, 16, 12)
    assert schema["type"] == "object"  # strict mode forbids an array root
    for node in walk(schema):
        assert set(node) <= ALLOWED, set(node) - ALLOWED
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])
    assert "default" not in json.dumps(schema)


def test_sample_batch_validates_and_bad_ones_do_not() -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12)
    assert check(schema, SAMPLE) == []

    def with_step(step: dict[str, Any]) -> dict[str, Any]:
        return {"plans": [{"agent_id": 1, "steps": [step]}]}

    assert check(schema, with_step({"act": "MoveTo", "x": 16, "y": 0}))  # x past width-1
    assert check(schema, with_step({"act": "MoveTo", "x": 0, "y": 12}))  # y past height-1
    assert check(schema, with_step({"act": "MoveTo", "x": -1, "y": 0}))
    assert check(schema, with_step({"act": "MoveTo", "x": 1}))  # y required
    assert check(schema, with_step({"act": "Reload", "x": 1}))  # no extra properties
    assert check(schema, with_step({"act": "Heal"}))  # not a simplified tool
    assert check(schema, {"plans": [{"agent_id": 1, "steps": []}]})
    assert check(schema, {"plans": [{"agent_id": 1, "steps": [{"act": "Wait"}] * (MAX_STEPS + 1)}]})
    assert check(schema, {"plans": [{"steps": [{"act": "Wait"}]}]})
    assert check(plan_json_schema(FULL_TOOLS, 16, 12), with_step({"act": "Heal"})) == []


def test_step_union_is_restricted_to_the_tools_in_registry_order() -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12)
    options = schema["properties"]["plans"]["items"]["properties"]["steps"]["items"]["anyOf"]
    acts = [option["properties"]["act"]["enum"] for option in options]
    assert acts == [[act] for act in STEP_TYPES if act in SIMPLIFIED_TOOLS]
    assert len(acts) == 8
    full = plan_json_schema(FULL_TOOLS, 16, 12)
    assert len(full["properties"]["plans"]["items"]["properties"]["steps"]["items"]["anyOf"]) == 15


def test_coordinates_bounded_by_the_map_and_steps_by_max_steps() -> None:
    schema = plan_json_schema(["MoveTo"], 30, 20)
    steps = schema["properties"]["plans"]["items"]["properties"]["steps"]
    assert (steps["minItems"], steps["maxItems"]) == (1, MAX_STEPS)
    [move] = steps["items"]["anyOf"]
    assert move["properties"]["x"] == {"type": "integer", "minimum": 0, "maximum": 29}
    assert move["properties"]["y"] == {"type": "integer", "minimum": 0, "maximum": 19}


def test_static_schema_is_byte_identical_and_independent_of_tool_order() -> None:
    first = json.dumps(plan_json_schema(SIMPLIFIED_TOOLS, 16, 12))
    again = json.dumps(plan_json_schema(sorted(SIMPLIFIED_TOOLS, reverse=True), 16, 12))
    assert first == again
    assert '"agent_id": {"type": "integer"}' in first  # no per-round values
    # A caller mutating its copy cannot change the next one.
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12)
    schema["properties"]["plans"]["items"]["required"].append("x")
    assert json.dumps(plan_json_schema(SIMPLIFIED_TOOLS, 16, 12)) == first


def test_pinned_schema_is_one_position_per_agent_in_the_order_asked() -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, agent_ids=[5, 3, 5])
    plans = schema["properties"]["plans"]
    # A tuple: no `items` (llama.cpp's converters would let it override `prefixItems`),
    # and equal bounds (standard engines refuse extra items only with maxItems).
    assert "items" not in plans and (plans["minItems"], plans["maxItems"]) == (2, 2)
    ids = [p["properties"]["agent_id"] for p in plans["prefixItems"]]
    assert ids == [{"type": "integer", "enum": [5]}, {"type": "integer", "enum": [3]}]
    first, second = SAMPLE["plans"]
    assert check(schema, {"plans": [{**first, "agent_id": 5}, {**second, "agent_id": 3}]}) == []
    assert check(schema, SAMPLE)  # 3 then 5: the wrong order
    assert check(schema, {"plans": [{**first, "agent_id": 5}]})  # one skipped
    assert check(schema, {"plans": [{**first, "agent_id": 5}, {**second, "agent_id": 5}]})
    assert check(schema, {"plans": [{**first, "agent_id": 5}, {**second, "agent_id": 9}]})
    three = [{**first, "agent_id": 5}, {**second, "agent_id": 3}, {**second, "agent_id": 3}]
    assert check(schema, {"plans": three})  # one repeated past the end


@pytest.mark.parametrize(
    ("tools", "width", "height", "ids"),
    [(["Fly"], 5, 5, None), ([], 5, 5, None), (["Wait"], 0, 5, None), (["Wait"], 5, 5, [])],
)
def test_bad_arguments(tools: list[str], width: int, height: int, ids: list[int] | None) -> None:
    with pytest.raises(ValueError):
        plan_json_schema(tools, width, height, ids)


def test_schema_name_carries_the_version() -> None:
    assert SCHEMA_NAME.endswith(f"_v{SCHEMA_VERSION}")


# --- compact ----------------------------------------------------------------------------

COMPACT_SAMPLE = {
    "plans": [[3, [["MoveTo", 4, 7], ["Attack", 9]]], [5, [["TakeCover", 0, 11], ["Reload"]]]]
}


def compact_steps(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["properties"]["plans"]["items"]["prefixItems"][1]  # type: ignore[no-any-return]


@pytest.mark.parametrize("tools", [FULL_TOOLS, SIMPLIFIED_TOOLS], ids=["full", "simplified"])
def test_compact_shape_is_fixed_length_prefix_items_tuples(tools: frozenset[str]) -> None:
    schema = plan_json_schema(tools, 16, 12, fmt="compact")
    assert schema["type"] == "object" and schema["required"] == ["plans"]
    tuples = 0
    for node in walk(schema):
        assert set(node) <= ALLOWED | {"prefixItems"}, set(node) - ALLOWED
        if "prefixItems" in node:
            tuples += 1
            # llama.cpp's converter lets `items` override `prefixItems`: never both.
            assert "items" not in node
            assert node["minItems"] == node["maxItems"] == len(node["prefixItems"])
    assert tuples == 1 + len(tools)  # the plan, and one per step
    assert "default" not in json.dumps(schema)


def test_compact_sample_validates_and_bad_ones_do_not() -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, fmt="compact")
    assert check(schema, COMPACT_SAMPLE) == []
    assert check(plan_json_schema(SIMPLIFIED_TOOLS, 16, 12), COMPACT_SAMPLE)  # not verbose
    assert check(schema, SAMPLE)

    def with_step(step: list[Any]) -> dict[str, Any]:
        return {"plans": [[1, [step]]]}

    assert check(schema, with_step(["MoveTo", 15, 11])) == []
    assert check(schema, with_step(["MoveTo", 16, 0]))  # x past width-1
    assert check(schema, with_step(["MoveTo", 0, 12]))  # y past height-1
    assert check(schema, with_step(["MoveTo", -1, 0]))
    assert check(schema, with_step(["MoveTo", 1]))  # y missing
    assert check(schema, with_step(["Attack", 1, 2]))  # one value too many
    assert check(schema, with_step(["Reload", 1]))
    assert check(schema, with_step(["Heal"]))  # not a simplified tool
    assert check(schema, with_step([4, 7]))  # no act
    assert check(schema, {"plans": [[1, []]]})
    assert check(schema, {"plans": [[1, [["Wait"]] * (MAX_STEPS + 1)]]})
    assert check(schema, {"plans": [[[["Wait"]]]]})  # no id
    assert check(schema, {"plans": [[1, [["Wait"]], 2]]})  # a value too many
    assert check(plan_json_schema(FULL_TOOLS, 16, 12, fmt="compact"), with_step(["Heal"])) == []


def test_compact_step_values_follow_the_action_models_field_order() -> None:
    schema = plan_json_schema(["MoveTo", "Attack", "Scan"], 30, 20, fmt="compact")
    steps = compact_steps(schema)
    assert (steps["minItems"], steps["maxItems"]) == (1, MAX_STEPS)
    move, attack, scan = steps["items"]["anyOf"]
    assert move["prefixItems"] == [
        {"type": "string", "enum": ["MoveTo"]},
        {"type": "integer", "minimum": 0, "maximum": 29},
        {"type": "integer", "minimum": 0, "maximum": 19},
    ]
    assert attack["prefixItems"] == [
        {"type": "string", "enum": ["Attack"]},
        {"type": "integer"},
    ]
    assert scan["prefixItems"] == [{"type": "string", "enum": ["Scan"]}]
    acts = [
        o["prefixItems"][0]["enum"]
        for o in compact_steps(plan_json_schema(FULL_TOOLS, 9, 9, fmt="compact"))["items"]["anyOf"]
    ]
    assert acts == [[act] for act in STEP_TYPES]


def test_compact_pinned_schema_is_one_position_per_agent_in_the_order_asked() -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, agent_ids=[3, 5], fmt="compact")
    plans = schema["properties"]["plans"]
    assert "items" not in plans and (plans["minItems"], plans["maxItems"]) == (2, 2)
    assert [p["prefixItems"][0] for p in plans["prefixItems"]] == [
        {"type": "integer", "enum": [3]},
        {"type": "integer", "enum": [5]},
    ]
    assert check(schema, COMPACT_SAMPLE) == []
    assert check(schema, {"plans": COMPACT_SAMPLE["plans"][:1]})  # one plan short
    first = COMPACT_SAMPLE["plans"][0]
    assert check(schema, {"plans": [first, [3, [["Wait"]]]]})  # a repeat
    assert check(schema, {"plans": [first, [9, [["Wait"]]]]})  # an invention
    assert check(schema, {"plans": [[5, [["Wait"]]], first]})  # the wrong order


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_each_format_is_byte_identical_call_after_call(fmt: PlanFormat) -> None:
    first = json.dumps(plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, fmt=fmt))
    again = json.dumps(plan_json_schema(sorted(SIMPLIFIED_TOOLS, reverse=True), 16, 12, fmt=fmt))
    assert first == again


def test_the_formats_differ_and_an_unknown_one_is_refused() -> None:
    verbose = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, fmt="verbose")
    assert verbose == plan_json_schema(SIMPLIFIED_TOOLS, 16, 12)  # verbose is the default
    assert verbose != plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, fmt="compact")
    with pytest.raises(ValueError, match="plan format"):
        plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, fmt="tiny")  # type: ignore[arg-type]
