"""Wire models for what the LLM is asked to produce.

Root is an object (OpenAI strict structured output forbids an array root):
{"plans":[{"agent_id":3,"steps":[{"act":"MoveTo","x":4,"y":7}]}]}
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from game.rules.steps import MAX_STEPS, STEP_TYPES, Step

SCHEMA_VERSION = 1
"""Bumped whenever the wire format changes; part of every prompt-cache key."""
SCHEMA_NAME = f"squad_plans_v{SCHEMA_VERSION}"
"""The name a server is given for the schema (OpenAI `json_schema.name`)."""


class AgentPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    agent_id: int
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)


class PlanBatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    plans: tuple[AgentPlan, ...]


def plan_json_schema(
    tools: Collection[str], width: int, height: int, agent_ids: Sequence[int] | None = None
) -> dict[str, Any]:
    """The JSON schema of a `PlanBatch` restricted to `tools` and to the map's bounds.

    Written to OpenAI's strict structured-output rules, which local engines (Ollama,
    llama.cpp, vLLM) also accept: every object has `additionalProperties: false` and
    lists all its properties as required, the step union is an `anyOf` told apart by a
    one-value `enum` on "act", and no `default` or other unsupported keyword appears.
    Steps are listed in the registry's order, so the same arguments always give the
    same dict in the same key order (and so byte-identical JSON: a cacheable prefix).

    With `agent_ids` (only for servers that compile the schema into a grammar outside
    the prompt cache) each request is pinned: `agent_id` must be one of those ids and
    the batch must hold exactly one plan per id.
    """
    unknown = sorted(set(tools) - STEP_TYPES.keys())
    if unknown:
        raise ValueError(f"unknown tools: {', '.join(unknown)}")
    if not tools:
        raise ValueError("at least one tool is needed")
    if width < 1 or height < 1:
        raise ValueError(f"map size must be positive, got {width}x{height}")
    bounds = {"x": width - 1, "y": height - 1}
    steps = [_step_schema(act, bounds) for act in STEP_TYPES if act in tools]
    agent_id: dict[str, Any] = {"type": "integer"}
    plans: dict[str, Any] = {"type": "array", "items": {}, "minItems": 1}
    if agent_ids is not None:
        ids = sorted(set(agent_ids))
        if not ids:
            raise ValueError("agent_ids must not be empty")
        agent_id["enum"] = ids
        plans["minItems"] = plans["maxItems"] = len(ids)
    plans["items"] = _object(
        {
            "agent_id": agent_id,
            "steps": {
                "type": "array",
                "items": {"anyOf": steps},
                "minItems": 1,
                "maxItems": MAX_STEPS,
            },
        }
    )
    return _object({"plans": plans})


def _step_schema(act: str, bounds: dict[str, int]) -> dict[str, Any]:
    # Generated from the action model's own fields, so a new field cannot be missed.
    properties: dict[str, Any] = {"act": {"type": "string", "enum": [act]}}
    for name, field in STEP_TYPES[act].model_fields.items():
        if name == "act":
            continue
        if field.annotation is not int:
            raise TypeError(f"{act}.{name}: only int step fields are supported")
        prop: dict[str, Any] = {"type": "integer"}
        if name in bounds:
            prop["minimum"] = 0
            prop["maximum"] = bounds[name]
        properties[name] = prop
    return _object(properties)


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
