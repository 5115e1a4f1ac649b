"""The JSON schema sent to servers: strict-mode shape, bounds, tools, pinning, stability."""

from __future__ import annotations

import json
from typing import Any

import pytest

from game.rules.steps import FULL_TOOLS, MAX_STEPS, SIMPLIFIED_TOOLS, STEP_TYPES
from planner.schema import SCHEMA_NAME, SCHEMA_VERSION, plan_json_schema

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
            elif key in ("items", "anyOf"):
                found += walk(value)
    elif isinstance(node, list):
        for sub in node:
            found += walk(sub)
    return found


def check(schema: dict[str, Any], value: Any, path: str = "$") -> list[str]:
    """A small structural validator for the keywords above (no jsonschema dependency)."""
    errors: list[str] = []
    if "anyOf" in schema:
        if not any(not check(option, value, path) for option in schema["anyOf"]):
            errors.append(f"{path}: matches no anyOf option")
        return errors
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        props = schema["properties"]
        errors += [f"{path}.{k}: required" for k in schema["required"] if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{path}.{k}: not allowed" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                errors += check(sub, value[key], f"{path}.{key}")
    elif kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items")
        for i, item in enumerate(value):
            errors += check(schema["items"], item, f"{path}[{i}]")
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: not an integer"]
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            errors.append(f"{path}: {value} out of bounds")
    elif kind == "string" and not isinstance(value, str):
        errors.append(f"{path}: not a string")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    return errors


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


def test_pinned_schema_fixes_ids_and_plan_count() -> None:
    schema = plan_json_schema(SIMPLIFIED_TOOLS, 16, 12, agent_ids=[5, 3, 5])
    plans = schema["properties"]["plans"]
    assert plans["items"]["properties"]["agent_id"] == {"type": "integer", "enum": [3, 5]}
    assert (plans["minItems"], plans["maxItems"]) == (2, 2)
    assert check(schema, SAMPLE) == []
    assert check(schema, {"plans": SAMPLE["plans"][:1]})  # one plan short
    wrong = {"plans": [SAMPLE["plans"][0], {**SAMPLE["plans"][1], "agent_id": 9}]}
    assert check(schema, wrong)


@pytest.mark.parametrize(
    ("tools", "width", "height", "ids"),
    [(["Fly"], 5, 5, None), ([], 5, 5, None), (["Wait"], 0, 5, None), (["Wait"], 5, 5, [])],
)
def test_bad_arguments(tools: list[str], width: int, height: int, ids: list[int] | None) -> None:
    with pytest.raises(ValueError):
        plan_json_schema(tools, width, height, ids)


def test_schema_name_carries_the_version() -> None:
    assert SCHEMA_NAME.endswith(f"_v{SCHEMA_VERSION}")
