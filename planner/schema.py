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

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from game.rules.actions import ROLE_STATS, THROW_RANGE, check_step
from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.steps import MAX_STEPS, STEP_TYPES, Step

SCHEMA_VERSION = 2
"""Bumped whenever the wire format changes (2: the compact format); part of every
prompt-cache key, with the plan format itself."""
SCHEMA_NAME = f"squad_plans_v{SCHEMA_VERSION}"
"""The name a server is given for the schema (OpenAI `json_schema.name`)."""

INTENT_MAX_CHARS = 60
INTENT_PATTERN = f"^[A-Za-z0-9 #,.:;!?'()/+-]{{0,{INTENT_MAX_CHARS}}}$"
"""What a schema lets an intent hold: plain words, ids and coordinates, no quote or
backslash, so a grammar can neither ramble past the limit nor spend tokens on escapes."""

PlanFormat = Literal["verbose", "compact"]
PLAN_FORMATS: tuple[PlanFormat, ...] = ("verbose", "compact")


class AgentPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    agent_id: int
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)
    intent: str | None = Field(default=None, max_length=INTENT_MAX_CHARS)
    """A short statement of what the plan is for ("flank #7 from the north"); optional."""


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
    agent_ids: Sequence[int | AgentScope] | None = None,
    *,
    fmt: PlanFormat = "verbose",
    intent: bool = False,
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
    the prompt cache) each request is pinned: `plans` is a fixed-length tuple with one
    position per agent, in the order given (the prompt's), and each position's id is
    that agent's only, so no agent can be skipped, repeated or invented. (An `enum` of
    ids with `minItems == maxItems` cannot do that: grammars repeat ids.) A tuple is
    `prefixItems` with no `items`, which llama.cpp's converters (llama-server's and
    llama-cpp-python's) compile as a fixed sequence, and equal `minItems`/`maxItems`,
    which standard engines (xgrammar, llguidance) need to refuse extra items. An
    `AgentScope` in place of an id also bounds that agent's values to what the
    validator accepts: its targets, its cover tiles, and coordinates as an `enum`
    (llama-cpp-python's converter ignores `minimum`/`maximum`).

    With `intent` each plan may carry a short intent (INTENT_PATTERN): verbose, an
    "intent" property that is a string or null (OpenAI's strict mode wants every property
    required, so "optional" is null); compact, a third value after the steps, the
    plan tuple then holding 2 or 3 items (`minItems` 2). A pinned position keeps its
    one-value id either way, so the one-plan-per-agent guarantee holds.
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
    if agent_ids is None:
        steps = [_step(act, _ranges(act, bounds), fmt) for act in STEP_TYPES if act in tools]
        plan = _plan({"type": "integer"}, _step_list(steps), fmt, intent)
        return _object({"plans": {"type": "array", "items": plan, "minItems": 1}})
    scopes = list({s.agent_id: s for s in map(AgentScope.of_id, agent_ids)}.values())
    if not scopes:
        raise ValueError("agent_ids must not be empty")
    defs: dict[str, Any] = {}
    plans = [_pinned_plan(scope, tools, bounds, fmt, defs, intent) for scope in scopes]
    schema = _object({"plans": _tuple(plans)})
    if defs:
        schema["$defs"] = defs
    return schema


Values = tuple[tuple[int, ...], ...] | None
"""What an act's values may be: None, anything of the right type (coordinates on the
map, any id); else exactly one of these value tuples (in the act's field order)."""


@dataclass(frozen=True)
class AgentScope:
    """What one agent's steps can be, as far as a schema can say it: the validator's own
    rules (planner/validate.py). The first step is judged in full on the world as the
    snapshot shows it (`check_step`: range, line of sight, ammo, grenades...), later
    steps only by the rules that hold whatever happens before them (targets it knows,
    cover tiles, no grenades left). An act missing from a mapping is not allowed; a
    mapping of None: every act, any values."""

    agent_id: int
    steps: Mapping[str, Values] | None = None
    first: Mapping[str, Values] | None = None
    """The first step's acts and values (None: as `steps`)."""

    @classmethod
    def of(cls, snap: Snapshot, grid: Grid) -> AgentScope:
        steps = _later_values(snap)
        return cls(snap.me.id, steps, _first_values(snap, grid, steps))

    @classmethod
    def of_id(cls, agent: int | AgentScope) -> AgentScope:
        return agent if isinstance(agent, AgentScope) else cls(agent)


_THROWS = frozenset({"ThrowSmoke", "ThrowExplosive"})


def _later_values(snap: Snapshot) -> dict[str, Values]:
    """What validation lets any step be, whatever the steps before it did."""
    enemies = tuple((e.id,) for e in sorted(snap.enemies, key=lambda u: u.id))
    known = tuple((u.id,) for u in sorted((*snap.allies, *snap.enemies), key=lambda u: u.id))
    out: dict[str, Values] = {}
    for act in STEP_TYPES:
        values: Values = None
        if act == "TakeCover":
            values = tuple(snap.cover)
        elif "target_id" in step_fields(act):
            values = known if act == "Approach" else enemies
        elif act in _THROWS and snap.me.grenades <= 0:
            continue  # nothing refills grenades
        if values is None or values:
            out[act] = values
    return out


def _first_values(snap: Snapshot, grid: Grid, later: Mapping[str, Values]) -> dict[str, Values]:
    """What the first step may be: the candidates `check_step` accepts now."""
    me = snap.me
    out: dict[str, Values] = {}
    for act, values in later.items():
        fields = step_fields(act)
        if act == "MoveTo":
            out[act] = None  # a wall or water tile is moved to the nearest walkable one
            continue
        candidates: tuple[tuple[int, ...], ...] = ((),) if values is None else values
        if values is None and fields:  # thrown or fired at a tile within reach
            reach = THROW_RANGE if act in _THROWS else ROLE_STATS[me.role].range
            candidates = tuple(
                (x, y)
                for x in range(me.x - reach, me.x + reach + 1)
                for y in range(me.y - reach, me.y + reach + 1)
                if grid.in_bounds(x, y)
            )
        model = STEP_TYPES[act]
        legal = tuple(
            v
            for v in candidates
            if check_step(model(**dict(zip(fields, v, strict=True))), snap, grid) is None  # type: ignore[arg-type]
        )
        if legal:
            out[act] = legal if fields else None
    return out


MAX_ENUM_VALUES = 64
"""A coordinate is an `enum` of its values up to this many, else `minimum`/`maximum`."""


def _pinned_plan(
    scope: AgentScope,
    tools: Collection[str],
    bounds: dict[str, int],
    fmt: PlanFormat,
    defs: dict[str, Any],
    intent: bool = False,
) -> dict[str, Any]:
    """One agent's position of the plans tuple: its id, and steps within its scope. A
    first step stricter than the rest is a `$defs` entry of its own, and the steps are
    one of MAX_STEPS tuples (first, then k-1 of the rest): JSON Schema would say
    `prefixItems` plus `items`, but llama.cpp's converters ignore `prefixItems` then."""
    later = _scoped_steps(scope.steps, tools, bounds, fmt, defs)
    first = later if scope.first is None else _scoped_steps(scope.first, tools, bounds, fmt, defs)
    if first == later:
        return _plan(_one(scope.agent_id), _step_list(later), fmt, intent)
    name = f"agent_{scope.agent_id}"
    defs[f"{name}_first"] = {"anyOf": first}
    defs[f"{name}_step"] = {"anyOf": later}
    head = {"$ref": f"#/$defs/{name}_first"}
    rest = {"$ref": f"#/$defs/{name}_step"}
    shapes = [_tuple([head] + [rest] * k) for k in range(MAX_STEPS)]
    return _plan(_one(scope.agent_id), {"anyOf": shapes}, fmt, intent)


def _scoped_steps(
    values: Mapping[str, Values] | None,
    tools: Collection[str],
    bounds: dict[str, int],
    fmt: PlanFormat,
    defs: dict[str, Any],
) -> list[dict[str, Any]]:
    """The step union for acts and values in `values` (None: every tool, any values)."""
    steps: list[dict[str, Any]] = []
    for act in STEP_TYPES:
        if act not in tools or (values is not None and act not in values):
            continue
        allowed = None if values is None else values[act]
        fields = step_fields(act)
        if allowed is None or not fields:
            steps.append(_step(act, _ranges(act, bounds, defs), fmt))
        elif len(fields) == 1:
            ids = sorted({v[0] for v in allowed})
            steps.append(_step(act, {fields[0]: _enum(ids)}, fmt))
        else:  # tiles: one alternative per first value, with its second values
            by_first: dict[int, list[int]] = {}
            for a, b in sorted(allowed):
                by_first.setdefault(a, []).append(b)
            steps += [
                _step(act, {fields[0]: _one(a), fields[1]: _enum(bs)}, fmt)
                for a, bs in by_first.items()
            ]
    if not steps:  # nothing in scope with these tools: let the validator say why
        return _scoped_steps(None, tools, bounds, fmt, defs)
    return steps


def _step_list(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "array", "items": {"anyOf": steps}, "minItems": 1, "maxItems": MAX_STEPS}


_INTENT: dict[str, Any] = {"type": "string", "pattern": INTENT_PATTERN}
"""No `maxLength`: OpenAI's strict mode refuses length keywords; the pattern bounds it."""


def _plan(
    agent_id: dict[str, Any], step_list: dict[str, Any], fmt: PlanFormat, intent: bool = False
) -> dict[str, Any]:
    if fmt == "compact":
        if not intent:
            return _tuple([agent_id, step_list])
        return {**_tuple([agent_id, step_list, _INTENT]), "minItems": 2}
    if not intent:
        return _object({"agent_id": agent_id, "steps": step_list})
    return _object(
        {"agent_id": agent_id, "steps": step_list, "intent": {"anyOf": [_INTENT, {"type": "null"}]}}
    )


def _one(value: int) -> dict[str, Any]:
    return _enum([value])


def _enum(values: list[int]) -> dict[str, Any]:
    return {"type": "integer", "enum": values}


def _ranges(
    act: str, bounds: dict[str, int], defs: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """An act's values in range. With `defs` (pinned schemas) a coordinate is a `$ref` to
    an `enum` of its values, defined once: llama-cpp-python ignores `minimum`/`maximum`."""
    # Generated from the action model's own fields, so a new field cannot be missed.
    out: dict[str, dict[str, Any]] = {}
    for name in step_fields(act):
        if STEP_TYPES[act].model_fields[name].annotation is not int:
            raise TypeError(f"{act}.{name}: only int step fields are supported")
        prop: dict[str, Any] = {"type": "integer"}
        if name in bounds and defs is not None and bounds[name] < MAX_ENUM_VALUES:
            defs.setdefault(name, _enum(list(range(bounds[name] + 1))))
            prop = {"$ref": f"#/$defs/{name}"}
        elif name in bounds:
            prop["minimum"] = 0
            prop["maximum"] = bounds[name]
        out[name] = prop
    return out


def _act(act: str) -> dict[str, Any]:
    return {"type": "string", "enum": [act]}


def _step(act: str, values: dict[str, dict[str, Any]], fmt: PlanFormat) -> dict[str, Any]:
    """One step of the union: an object (verbose) or a tuple (compact) of its values."""
    if fmt == "compact":
        return _tuple([_act(act), *values.values()])
    return _object({"act": _act(act), **values})


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


def max_answer_chars(schema: dict[str, Any], plans: int, whitespace: int = 0) -> int:
    """The longest answer `schema` admits with `plans` plans (an array without
    `maxItems` holds `plans` items): its compact serialisation plus `whitespace`
    characters after every token, which is where schema grammars let a model put
    them. A token is at least one character, so this many output tokens always fit a
    whole answer: the output budget of a request (planner/dispatch.py)."""
    return _Longest(schema, plans, whitespace).of(schema)


_BOUNDED_CLASS = re.compile(r'\^\[(?P<chars>[^\]"\\]*)\]\{0,(?P<most>\d+)\}\$')
"""A string pattern whose length a grammar bounds: `^[chars]{0,N}$` (INTENT_PATTERN)."""
_INT_CHARS = 20
"""An integer with no bounds: as long as a 64-bit one."""


class _Longest:
    def __init__(self, root: dict[str, Any], plans: int, whitespace: int) -> None:
        self.defs: dict[str, Any] = root.get("$defs", {})
        self.plans = plans
        self.ws = whitespace
        self.refs: dict[str, int] = {}

    def of(self, node: dict[str, Any]) -> int:
        ws = self.ws
        if "$ref" in node:
            ref = node["$ref"]
            if ref not in self.refs:
                self.refs[ref] = self.of(self.defs[ref.removeprefix("#/$defs/")])
            return self.refs[ref]
        if "anyOf" in node:
            return max(self.of(option) for option in node["anyOf"])
        if "enum" in node:  # grammars write an enum value as json.dumps does
            return max(len(json.dumps(value)) for value in node["enum"]) + ws
        kind = node.get("type")
        if kind == "object":
            props = node.get("properties", {})
            keys = sum(len(json.dumps(k)) + ws + 1 + ws for k in props)
            values = sum(self.of(sub) for sub in props.values())
            return 2 * (1 + ws) + keys + values + max(0, len(props) - 1) * (1 + ws)
        if kind == "array":
            if "prefixItems" in node:
                items = [self.of(sub) for sub in node["prefixItems"]]
            else:
                items = [self.of(node.get("items", {}))] * node.get("maxItems", self.plans)
            return 2 * (1 + ws) + sum(items) + max(0, len(items) - 1) * (1 + ws)
        if kind == "integer":
            ends = [node[k] for k in ("minimum", "maximum") if k in node]
            digits = max(len(str(v)) for v in ends) if len(ends) == 2 else _INT_CHARS
            return digits + ws
        bounded = _BOUNDED_CLASS.fullmatch(node.get("pattern", ""))
        if kind == "string" and bounded is not None:
            # One character class without quote or backslash: no escapes, one char each.
            return 2 + int(bounded["most"]) + ws
        if kind == "null":
            return 4 + ws
        raise ValueError(f"no length bound for schema node {node!r}")
