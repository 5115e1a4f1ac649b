"""Wire models for what the LLM is asked to produce, in either plan format.

Root is an object (OpenAI strict structured output forbids an array root). Two formats:

verbose  {"plans":[{"agent_id":3,"steps":[{"act":"MoveTo","x":4,"y":7},{"act":"Scan"}]}]}
compact  {"plans":[[3,[["MoveTo",4,7],["Scan"]]]]}

A compact plan is `[agent_id, [step, ...]]` and a compact step is `[act, *values]`, the
values in the action model's field order (x, y or target_id). Steps are nested in their
own array, not flattened after the id: schema-to-grammar converters (llama.cpp's, and
Ollama's, which is llama.cpp's) compile `prefixItems` only as a fixed-length tuple and
ignore it next to `items`, so `[id, step, step, ...]` could not be constrained.
Compact uses `prefixItems`, which OpenAI strict structured outputs refuse: OpenAI and
unknown servers get verbose (planner/backends/profiles.py).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from game.rules.steps import MAX_STEPS, STEP_TYPES, Step

SCHEMA_VERSION = 2
"""Bumped whenever the wire format changes (2: the compact format); part of every
prompt-cache key, with the plan format itself."""
SCHEMA_NAME = f"squad_plans_v{SCHEMA_VERSION}"
"""The name a server is given for the schema (OpenAI `json_schema.name`)."""

PlanFormat = Literal["verbose", "compact"]
PLAN_FORMATS: tuple[PlanFormat, ...] = ("verbose", "compact")


class AgentPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    agent_id: int
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)


class PlanBatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    plans: tuple[AgentPlan, ...]


def step_fields(act: str) -> tuple[str, ...]:
    """The values of a compact `act` step, in order (the action model's own fields)."""
    return tuple(name for name in STEP_TYPES[act].model_fields if name != "act")


def plan_json_schema(
    tools: Collection[str],
    width: int,
    height: int,
    agent_ids: Sequence[int] | None = None,
    *,
    fmt: PlanFormat = "verbose",
) -> dict[str, Any]:
    """The JSON schema of a plan batch in format `fmt`, restricted to `tools` and to the
    map's bounds.

    Verbose is written to OpenAI's strict structured-output rules, which local engines
    (Ollama, llama.cpp, vLLM) also accept: every object has `additionalProperties: false`
    and lists all its properties as required, the step union is an `anyOf` told apart by
    a one-value `enum` on "act", and no `default` or other unsupported keyword appears.
    Compact keeps the same object root and step union, each step and plan a fixed-length
    `prefixItems` tuple (with equal `minItems`/`maxItems`, and no `items`, which would
    override `prefixItems` in llama.cpp's converter). Steps are listed in the registry's
    order, so the same arguments always give the same dict in the same key order (and
    so byte-identical JSON: a cacheable prefix).

    With `agent_ids` (only for servers that compile the schema into a grammar outside
    the prompt cache) each request is pinned: the agent id must be one of those ids and
    the batch must hold exactly one plan per id.
    """
    unknown = sorted(set(tools) - STEP_TYPES.keys())
    if unknown:
        raise ValueError(f"unknown tools: {', '.join(unknown)}")
    if not tools:
        raise ValueError("at least one tool is needed")
    if width < 1 or height < 1:
        raise ValueError(f"map size must be positive, got {width}x{height}")
    if fmt not in PLAN_FORMATS:
        raise ValueError(f"unknown plan format {fmt!r}")
    bounds = {"x": width - 1, "y": height - 1}
    step_schema = _compact_step if fmt == "compact" else _verbose_step
    steps = [step_schema(act, bounds) for act in STEP_TYPES if act in tools]
    agent_id: dict[str, Any] = {"type": "integer"}
    plans: dict[str, Any] = {"type": "array", "items": {}, "minItems": 1}
    if agent_ids is not None:
        ids = sorted(set(agent_ids))
        if not ids:
            raise ValueError("agent_ids must not be empty")
        agent_id["enum"] = ids
        plans["minItems"] = plans["maxItems"] = len(ids)
    step_list = {"type": "array", "items": {"anyOf": steps}, "minItems": 1, "maxItems": MAX_STEPS}
    if fmt == "compact":
        plans["items"] = _tuple([agent_id, step_list])
    else:
        plans["items"] = _object({"agent_id": agent_id, "steps": step_list})
    return _object({"plans": plans})


def _values(act: str, bounds: dict[str, int]) -> dict[str, dict[str, Any]]:
    # Generated from the action model's own fields, so a new field cannot be missed.
    out: dict[str, dict[str, Any]] = {}
    for name in step_fields(act):
        if STEP_TYPES[act].model_fields[name].annotation is not int:
            raise TypeError(f"{act}.{name}: only int step fields are supported")
        prop: dict[str, Any] = {"type": "integer"}
        if name in bounds:
            prop["minimum"] = 0
            prop["maximum"] = bounds[name]
        out[name] = prop
    return out


def _act(act: str) -> dict[str, Any]:
    return {"type": "string", "enum": [act]}


def _verbose_step(act: str, bounds: dict[str, int]) -> dict[str, Any]:
    return _object({"act": _act(act), **_values(act, bounds)})


def _compact_step(act: str, bounds: dict[str, int]) -> dict[str, Any]:
    return _tuple([_act(act), *_values(act, bounds).values()])


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _tuple(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "array",
        "prefixItems": items,
        "minItems": len(items),
        "maxItems": len(items),
    }
