"""The output budget of a request, answers cut by it (finish_reason "length"), and what
a round sends to a grammar engine: one schema position per agent, in its scope."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import pytest

from planner.backends.base import (
    Capabilities,
    Finished,
    LLMRequest,
    StreamEvent,
    TextDelta,
)
from planner.cache import PlanCache
from planner.clock import MonotonicClock
from planner.core import PlannerCore
from planner.dispatch import RoundRun
from planner.events import AgentFellBack, PlanDelivered, PlanEvent
from planner.fallback import TIER_TOOLS, Tier
from planner.resilience import CircuitBreaker, RetryPolicy, Timeouts
from planner.runner import MORE_ROOM, OUTPUT_SLACK
from planner.schema import AgentScope, max_answer_chars, plan_json_schema
from planner.settings import PlannerSettings
from tests.planning_helpers import make_core, plan_json, planning_round, run_round

GRAMMAR = Capabilities(schema_outside_prompt_cache=True, plan_format="verbose")


@dataclass
class Answers:
    """A backend whose answers end with the finish reason scripted for them."""

    replies: list[tuple[str, str]]
    capabilities: Capabilities = field(default_factory=Capabilities)
    name: str = "answers"
    model: str = "answers-1"
    requests: list[LLMRequest] = field(default_factory=list)

    def describe(self) -> str:
        return "scripted answers"

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        text, finish = self.replies.pop(0) if self.replies else ('{"plans":[]}', "stop")
        return self._play(text, finish)

    async def _play(self, text: str, finish: str) -> AsyncIterator[StreamEvent]:
        await anyio.lowlevel.checkpoint()
        for i in range(0, len(text), 9):
            yield TextDelta(text[i : i + 9])
        yield Finished(finish)

    async def aclose(self) -> None:
        return None


def plans(*ids: int) -> str:
    return '{"plans":[' + ",".join(plan_json(i) for i in ids) + "]}"


def cut_after(*ids: int) -> str:
    """An answer cut by max_tokens in the middle of the plan after `ids`."""
    return '{"plans":[' + "".join(plan_json(i) + "," for i in ids) + '{"agent_id":'


@pytest.mark.parametrize("caps", [Capabilities(), GRAMMAR], ids=["static", "pinned"])
def test_the_budget_is_room_for_the_longest_answer_the_schema_allows(caps: Capabilities) -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = Answers([(plans(*ids), "stop")], caps)
    run_round(make_core(backend), PlannerSettings(mode="batched", cache=False), planning)
    [request] = backend.requests
    schema = request.pinned_schema if caps.schema_outside_prompt_cache else request.schema
    assert schema is not None
    longest = max_answer_chars(schema, len(ids), caps.grammar_whitespace)
    assert request.max_tokens == longest + OUTPUT_SLACK


def test_a_grammar_engine_gets_one_position_per_agent_in_its_scope() -> None:
    planning = planning_round()
    grid = planning.grid
    by_id = {s.me.id: s for s in planning.snapshots}
    ids = sorted(by_id)
    backend = Answers([(plans(*ids), "stop")], GRAMMAR)
    events = run_round(make_core(backend), PlannerSettings(mode="batched"), planning)
    [request] = backend.requests
    scopes = [AgentScope.of(by_id[i], grid) for i in request.agent_ids]
    tools = TIER_TOOLS[Tier.simplified_llm]
    assert request.pinned_schema == plan_json_schema(
        tools, grid.width, grid.height, scopes, fmt="verbose", intent=True
    )
    positions = request.pinned_schema["properties"]["plans"]["prefixItems"]
    assert [p["properties"]["agent_id"]["enum"] for p in positions] == [[i] for i in ids]
    assert sorted(e.outcome.agent_id for e in events if isinstance(e, PlanDelivered)) == ids


def test_an_answer_cut_by_length_re_requests_only_the_unfinished_agents_with_more_room() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    done, rest = ids[:2], ids[2:]
    backend = Answers([(cut_after(*done), "length"), (plans(*rest), "stop")], GRAMMAR)
    # no teammate served from the first answer's plans: every unfinished agent is re-asked
    batched = PlannerSettings(mode="batched", similarity=False)
    events = run_round(make_core(backend), batched, planning)
    first, again = backend.requests
    assert again.agent_ids == tuple(rest)
    fresh = max_answer_chars(again.pinned_schema or {}, len(rest), 1) + OUTPUT_SLACK
    assert again.max_tokens == MORE_ROOM * fresh
    fell = [(e.agent_id, e.cause) for e in events if isinstance(e, AgentFellBack)]
    assert fell == [(i, "truncated") for i in rest]  # the re-requests, with why
    outcomes = {e.outcome.agent_id: e.outcome for e in events if isinstance(e, PlanDelivered)}
    assert sorted(outcomes) == ids
    assert all(outcomes[i].tier == Tier.simplified_llm for i in ids)
    assert [outcomes[i].cause for i in ids] == [None] * len(done) + ["truncated"] * len(rest)
    assert first.max_tokens < again.max_tokens


def test_cut_again_the_agents_fall_back_with_cause_truncated() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = Answers([(cut_after(ids[0]), "length"), (cut_after(), "length")], GRAMMAR)
    events = run_round(
        make_core(backend), PlannerSettings(mode="batched", similarity=False), planning
    )
    outcomes = {e.outcome.agent_id: e.outcome for e in events if isinstance(e, PlanDelivered)}
    assert outcomes[ids[0]].tier == Tier.simplified_llm
    for agent_id in ids[1:]:
        assert outcomes[agent_id].tier == Tier.heuristic
        assert outcomes[agent_id].cause == "truncated"


def test_a_broken_answer_that_was_not_cut_is_still_a_parse_error() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    backend = Answers([(cut_after(ids[0]), "stop"), (plans(*ids[1:]), "stop")])
    events = run_round(make_core(backend), PlannerSettings(mode="batched"), planning)
    causes = {e.cause for e in events if isinstance(e, AgentFellBack)}
    assert causes == {"parse_error"}


def test_overhead_is_measured_for_a_server_that_does_not_stamp_its_chunks() -> None:
    """A real server's chunk has no emission stamp: its arrival stands in, so overhead
    (delivery minus that) is the planner's own parse, validate and deliver time."""
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    clock = MonotonicClock()
    core = PlannerCore(
        backend=Answers([(plans(*ids), "stop")]),
        clock=clock,
        cache=PlanCache(64),
        breaker=CircuitBreaker(clock),
        retry=RetryPolicy(),
        timeouts=Timeouts(),
        rng=random.Random(0),
    )
    events: list[PlanEvent] = []
    # every plan from the answer (a teammate's plan served to an agent has no chunk)
    settings = PlannerSettings(mode="batched", budget_ms=60_000, similarity=False)
    anyio.run(RoundRun(core, settings, planning, events.append).run)
    overheads = [e.overhead_ms for e in events if isinstance(e, PlanDelivered)]
    assert len(overheads) == len(ids)
    assert all(o is not None and o >= 0 for o in overheads)
    assert core.telemetry.snapshot()["latency_ms"]["overhead"]["count"] == len(ids)
