"""The pinned schema through llama-cpp-python's own schema converter and sampler, with
the tiny random model in-process: whatever the weights, every answer has one plan per
agent, in the order asked, and each agent's first step is one validation keeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from game.match.maps import load
from planner.fallback import TIER_TOOLS, Tier
from planner.prompts import build_batch_prompt
from planner.schema import AgentPlan, AgentScope, PlanFormat, max_answer_chars, plan_json_schema
from planner.stream import ParsedPlan, PlanStreamParser
from planner.validate import validate_plan
from tests.planning_helpers import squad_snapshots

pytestmark = pytest.mark.engines
SAMPLES = 6


@pytest.fixture(scope="module")
def llama(tiny_model: Path) -> Iterator[Any]:
    import llama_cpp

    model = llama_cpp.Llama(str(tiny_model), n_ctx=8192, n_threads=1, verbose=False, seed=1)
    try:
        yield model
    finally:
        model.close()


def test_the_converter_takes_every_pinned_schema(tiny_model: Path) -> None:
    from llama_cpp.llama_grammar import LlamaGrammar

    grid = load("village").grid
    snaps = squad_snapshots("village")
    for tier in (Tier.simplified_llm, Tier.full_llm):
        for fmt in ("verbose", "compact"):
            scopes = [AgentScope.of(s, grid) for s in snaps]
            schema = plan_json_schema(TIER_TOOLS[tier], grid.width, grid.height, scopes, fmt=fmt)
            LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)


@pytest.mark.parametrize("fmt", ["compact", "verbose"])
@pytest.mark.parametrize("scenario", ["skirmish", "village"])
def test_every_answer_has_each_agent_once_in_order_and_a_first_step_kept(
    llama: Any, scenario: str, fmt: PlanFormat
) -> None:
    grid = load(scenario).grid
    snaps = squad_snapshots(scenario)
    by_id = {s.me.id: s for s in snaps}
    tier = Tier.simplified_llm
    parts = build_batch_prompt(snaps, tier, fmt=fmt)
    scopes = [AgentScope.of(by_id[i], grid) for i in parts.agent_ids]
    schema = plan_json_schema(TIER_TOOLS[tier], grid.width, grid.height, scopes, fmt=fmt)
    budget = max_answer_chars(schema, len(scopes), 1) + 40
    for seed in range(SAMPLES):
        answer = llama.create_chat_completion(
            [{"role": "system", "content": parts.system}, {"role": "user", "content": parts.user}],
            response_format={"type": "json_object", "schema": schema},
            max_tokens=budget,
            temperature=0.8,
            seed=seed,
        )
        choice = answer["choices"][0]
        assert choice["finish_reason"] == "stop", (seed, answer["usage"])
        assert answer["usage"]["completion_tokens"] <= budget
        parser = PlanStreamParser(expected_ids=parts.agent_ids)
        results = parser.feed(choice["message"]["content"])
        assert parser.finish().missing == ()
        plans: list[AgentPlan] = [r.plan for r in results if isinstance(r, ParsedPlan)]
        assert [p.agent_id for p in plans] == list(parts.agent_ids), choice["message"]
        for plan in plans:
            checked = validate_plan(plan, by_id[plan.agent_id], grid, TIER_TOOLS[tier])
            assert checked.valid, (seed, plan, checked.dropped)
            first = plan.steps[0]
            if first.act != "MoveTo":  # a MoveTo onto a wall is moved, not dropped
                assert checked.steps[0] == first, (seed, plan, checked.dropped)
