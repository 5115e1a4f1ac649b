"""Reasoning models and the other engine quirks, with the bytes the servers send.

Thinking arrives as `reasoning` (vLLM >= 0.11), `reasoning_content` (llama-server with a
reasoning format, SGLang) or Ollama's `message.thinking`; it must never reach the plan
parser (the fixtures' thinking holds JSON-looking text that would break it), it is
timed apart from the plan text, and a model that only thinks falls back with cause
`thinking_over_budget`. Also: the `think` switches each profile sends, Ollama's format
kept when thinking is turned off, LM Studio's refusal of `json_object`, and the schema
shapes the grammar engines need (property order, no `prefixItems` next to `items`).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from planner.backends.base import (
    Capabilities,
    Finished,
    LLMRequest,
    StreamEvent,
    TextDelta,
    Think,
    ThinkingDelta,
    Usage,
)
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.backends.profiles import PROFILES, get_profile
from planner.events import AgentFellBack, FirstToken, PlanDelivered, ThinkingReceived
from planner.fallback import TIER_TOOLS, Tier, is_llm_tier
from planner.schema import AgentScope, PlanFormat, plan_json_schema
from planner.settings import PlannerSettings
from planner.trace import RoundTrace
from tests.loopback import LoopbackServer, Request, Script, json_reply, split_at, streamed
from tests.planner.backends.test_backends_openai import chat_server, chats, formats
from tests.planning_helpers import (
    ScriptedBackend,
    make_core,
    planning_round,
    run_round,
    squad_snapshots,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "reasoning"
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
SCHEMA = {"type": "object", "properties": {"plans": {"type": "array"}}, "required": ["plans"]}
REQ = LLMRequest("sys", "agents 2 4 6 8", (2, 4, 6, 8), schema=SCHEMA, pinned_schema=SCHEMA)
PLANS = '{"plans":[[2,[["Scan"],["Wait"]]],[4,[["Scan"],["Wait"]]],[6,[["Scan"],["Wait"]]],[8,[["Scan"],["Wait"]]]]}'  # noqa: E501
THINKING = 'Okay, four agents. Maybe {"plans":[[2 ... no, scan first then wait.'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def pieces(data: bytes, seed: int) -> list[bytes]:
    """The bytes cut at random places (a server's writes do not follow its lines)."""
    rng = random.Random(seed)
    cuts, at = [], 0
    while at < len(data):
        at += rng.randint(1, 200)
        cuts.append(at)
    return split_at(data, cuts)


def thinking_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, ThinkingDelta))


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def openai_events(name: str, seed: int, owned_by: str = "vllm") -> list[StreamEvent]:
    chat = streamed(200, SSE, pieces(raw(name), seed))
    with chat_server(chat, [{"id": "m", "owned_by": owned_by}]) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        try:
            return [e async for e in backend.stream(REQ)]
        finally:
            await backend.aclose()


async def ollama_events(seed: int) -> list[StreamEvent]:
    def handler(req: Request) -> Script:
        return streamed(200, NDJSON, pieces(raw("ollama-thinking-chat.ndjson"), seed))

    with LoopbackServer(handler) as server:
        backend = OllamaBackend(server.url, "qwen3:8b")
        try:
            return [e async for e in backend.stream(REQ)]
        finally:
            await backend.aclose()


# --- the wire: thinking apart from the text --------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(3))
async def test_vllm_reasoning_field_is_thinking_and_usage_chunk_read(seed: int) -> None:
    events = await openai_events("vllm-reasoning-stream.sse", seed)
    assert thinking_of(events) == THINKING
    assert text_of(events) == "\n\n" + PLANS
    usage = next(e for e in events if isinstance(e, Usage))
    # vLLM said nothing of its cache here: unknown, not 0
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (412, 109, None)
    assert events[-1] == Finished("stop")


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(3))
async def test_llama_server_reasoning_content_is_thinking(seed: int) -> None:
    events = await openai_events("llama-server-reasoning-stream.sse", seed, "llamacpp")
    assert thinking_of(events) == THINKING
    assert text_of(events) == PLANS
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(isinstance(e, ThinkingDelta) for e in events[:first_text])
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.cached_tokens == 0 and usage.completion_tokens == 96


@pytest.mark.anyio
@pytest.mark.parametrize("seed", range(3))
async def test_ollama_thinking_field_is_thinking(seed: int) -> None:
    events = await ollama_events(seed)
    assert thinking_of(events) == THINKING
    assert text_of(events) == PLANS
    usage = next(e for e in events if isinstance(e, Usage))
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (405, 101, None)


@pytest.mark.anyio
async def test_a_server_that_sends_no_usage_leaves_it_unknown() -> None:
    body = b'data: {"choices":[{"index":0,"delta":{"content":"{}"},"finish_reason":"stop"}]}\n\n'
    events = await openai_events_from(body + b"data: [DONE]\n\n")
    assert not any(isinstance(e, Usage) for e in events)


async def openai_events_from(body: bytes) -> list[StreamEvent]:
    with chat_server(streamed(200, SSE, [body])) as server:
        backend = OpenAIBackend(server.url, "m", env={}, profile="llamacpp_python")
        try:
            return [e async for e in backend.stream(REQ)]
        finally:
            await backend.aclose()


# --- a round: the parser never sees thinking; the trace times it -----------------------


@dataclass
class Recorded:
    """A backend that plays back what a real client decoded from a server's bytes, each
    event stamped 10 ms after the last on the virtual clock (so instants differ)."""

    events: list[StreamEvent]
    capabilities: Capabilities = field(default_factory=lambda: get_profile("llamacpp").capabilities)
    name: str = "recorded"
    model: str = "m"

    def describe(self) -> str:
        return "recorded engine events"

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        return self._play()

    async def _play(self) -> AsyncIterator[StreamEvent]:
        for i, event in enumerate(self.events, start=1):
            await anyio.lowlevel.checkpoint()
            if isinstance(event, TextDelta | ThinkingDelta):
                yield replace(event, emitted_at=i * 0.01)
            else:
                yield event

    async def aclose(self) -> None:
        return None


def skirmish_round(
    events: list[StreamEvent], budget_ms: float = 2500.0
) -> tuple[list[Any], RoundTrace]:
    core = make_core(Recorded(events))
    planning = planning_round(scenario="skirmish")
    out = run_round(core, PlannerSettings(mode="batched", budget_ms=budget_ms), planning)
    trace = RoundTrace.started(next(e for e in out if type(e).__name__ == "RoundStarted"))
    for event in out:
        trace.apply(event)
    return out, trace


@pytest.mark.anyio
async def test_thinking_never_reaches_the_parser_and_is_timed_apart() -> None:
    events = await openai_events("llama-server-reasoning-stream.sse", 0, "llamacpp")
    out, trace = await anyio.to_thread.run_sync(skirmish_round, events)
    delivered = [e for e in out if isinstance(e, PlanDelivered)]
    assert sorted(e.outcome.agent_id for e in delivered) == [2, 4, 6, 8]
    assert all(is_llm_tier(e.outcome.tier) and e.outcome.cause is None for e in delivered)
    assert "".join(e.text for e in out if isinstance(e, ThinkingReceived)) == THINKING
    assert all("Maybe" not in e.raw for e in delivered)
    first = next(e for e in out if isinstance(e, FirstToken))
    for bar in trace.bars.values():
        assert bar.thinking_ms is not None and bar.first_content_ms is not None
        # ttft is the first thinking token; the plan text came later
        assert bar.first_token_ms == bar.thinking_ms == trace.ms(first.at)
        assert bar.first_content_ms > bar.thinking_ms


@pytest.mark.anyio
async def test_a_model_that_only_thinks_falls_back_with_thinking_over_budget() -> None:
    events = await openai_events("llama-server-thinking-length.sse", 0, "llamacpp")
    assert text_of(events) == "" and events[-1] == Finished("length")
    out, trace = await anyio.to_thread.run_sync(skirmish_round, events)
    fell = {e.agent_id: e.cause for e in out if isinstance(e, AgentFellBack)}
    assert fell == dict.fromkeys([2, 4, 6, 8], "thinking_over_budget")
    assert all(
        b.first_content_ms is None and b.thinking_ms is not None for b in trace.bars.values()
    )


@pytest.mark.anyio
async def test_a_model_still_thinking_at_the_deadline_falls_back_with_thinking_over_budget() -> (
    None
):
    events = await openai_events("llama-server-reasoning-stream.sse", 0, "llamacpp")
    # its thinking runs to 80 ms on the virtual clock (10 ms a chunk): a 50 ms round ends first
    out, _ = await anyio.to_thread.run_sync(skirmish_round, events, 50.0)
    fell = {e.agent_id: e.cause for e in out if isinstance(e, AgentFellBack)}
    assert fell == dict.fromkeys([2, 4, 6, 8], "thinking_over_budget")
    # with room for the thinking and the plan, the same stream plans every agent
    out, _ = await anyio.to_thread.run_sync(skirmish_round, events, 2500.0)
    assert not [e for e in out if isinstance(e, AgentFellBack)]


# --- the switches ----------------------------------------------------------------------


def test_think_switches_per_profile() -> None:
    def fields(profile: str, think: str, schema: bool = True) -> dict[str, Any]:
        return get_profile(profile).think_fields(think, schema)  # type: ignore[arg-type]

    assert all(fields(name, "auto") == {} for name in PROFILES)
    off = {"chat_template_kwargs": {"enable_thinking": False}}
    assert fields("llamacpp", "off") == fields("vllm", "off") == fields("sglang", "off") == off
    assert fields("openai", "on") == {"reasoning_effort": "medium"}
    assert fields("ollama", "on") == {"think": True}
    # ollama/ollama#14645, #15260: think=false with a format drops the format
    assert fields("ollama", "off") == {} and fields("ollama", "off", schema=False) == {
        "think": False
    }
    assert fields("llamacpp_python", "off") == fields("generic", "on") == {}


def test_think_fields_reach_the_request_bodies() -> None:
    llama = OpenAIBackend("http://127.0.0.1:1", "m", env={}, profile="llamacpp")
    body = llama.payload(replace(REQ, think="off"), "json_schema")
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in llama.payload(REQ, "json_schema")
    ollama = OllamaBackend("http://127.0.0.1:1", "qwen3:8b")
    assert ollama.payload(replace(REQ, think="on"))["think"] is True
    kept = ollama.payload(replace(REQ, think="off"))
    assert "think" not in kept and kept["format"] == SCHEMA
    bare = replace(REQ, think="off", schema=None, pinned_schema=None)
    assert ollama.payload(bare)["think"] is False


# --- LM Studio, llguidance, llama.cpp's converter --------------------------------------


@pytest.mark.anyio
async def test_lm_studio_is_never_sent_json_object() -> None:
    refusal = json.loads(raw("lmstudio-json-object-400.json"))
    ok = b'data: {"choices":[{"index":0,"delta":{"content":"{}"},"finish_reason":"stop"}]}\n\n'

    def chat(req: Request) -> Script:
        kind = (req.json().get("response_format") or {}).get("type")
        if kind in ("json_schema", "text", None):
            return streamed(200, SSE, [ok + b"data: [DONE]\n\n"])
        return json_reply(400, refusal)

    with chat_server(chat) as server:
        backend = OpenAIBackend(server.url, "qwen", env={}, profile="lmstudio")
        try:
            got = [e async for e in backend.stream(REQ)]
        finally:
            await backend.aclose()
    assert text_of(got) == "{}"
    assert formats(server) == ["json_schema"]
    assert chats(server)[0]["response_format"]["json_schema"]["schema"] == SCHEMA
    assert "json_object" not in get_profile("lmstudio").response_formats


def nodes(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from nodes(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from nodes(value)


@pytest.mark.parametrize("fmt", ["verbose", "compact"])
def test_pinned_schema_shapes_the_grammar_engines_need(fmt: PlanFormat) -> None:
    snaps = squad_snapshots("skirmish")
    grid = planning_round(scenario="skirmish").grid
    scopes = [AgentScope.of(s, grid) for s in snaps]
    schema = plan_json_schema(
        TIER_TOOLS[Tier.simplified_llm], grid.width, grid.height, scopes, fmt=fmt
    )
    for node in nodes(schema):
        # llama.cpp's converter ignores prefixItems next to items: never both
        assert not ("prefixItems" in node and "items" in node)
        # a tuple is closed by equal bounds (xgrammar, llguidance honour maxItems)
        if "prefixItems" in node:
            assert node["minItems"] == node["maxItems"] == len(node["prefixItems"])
        # llguidance writes properties in the schema's order: agent_id before steps,
        # act before its values, and every property required in that order
        if "properties" in node:
            assert node["required"] == list(node["properties"])
            if "agent_id" in node["properties"]:
                assert list(node["properties"]) == ["agent_id", "steps"]
            if "act" in node["properties"]:
                assert next(iter(node["properties"])) == "act"


# --- the Ollama path: the same plan and pinned schema over /api/chat -------------------


def test_the_ollama_path_sends_the_pinned_schema_and_plans_past_thinking() -> None:
    def handler(req: Request) -> Script:
        return streamed(200, NDJSON, pieces(raw("ollama-thinking-chat.ndjson"), 1))

    with LoopbackServer(handler) as server:
        backend = OllamaBackend(server.url, "qwen3:8b")
        planning = planning_round(scenario="skirmish")
        settings = PlannerSettings(mode="batched", think="on")
        out = run_round(make_core(backend), settings, planning)
    (body,) = [r.json() for r in server.requests if r.path == "/api/chat"]
    scopes = [AgentScope.of(s, planning.grid) for s in planning.snapshots]
    tools = TIER_TOOLS[Tier.simplified_llm]
    width, height = planning.grid.width, planning.grid.height
    # Ollama compiles the schema into a grammar outside its prompt cache: the pinned one,
    # one tuple position per agent in the prompt's order, in the compact format
    order = [
        p["prefixItems"][0]["enum"][0] for p in body["format"]["properties"]["plans"]["prefixItems"]
    ]
    by_id = {s.agent_id: s for s in scopes}
    expected = plan_json_schema(
        tools, width, height, [by_id[i] for i in order], fmt="compact", intent=settings.intent
    )
    assert body["format"] == expected and sorted(order) == [2, 4, 6, 8]
    assert body["think"] is True and body["stream"] is True
    delivered = [e for e in out if isinstance(e, PlanDelivered)]
    assert sorted(e.outcome.agent_id for e in delivered) == [2, 4, 6, 8]
    assert all(is_llm_tier(e.outcome.tier) for e in delivered)
    assert "".join(e.text for e in out if isinstance(e, ThinkingReceived)) == THINKING


# --- room to think -----------------------------------------------------------------------


def asked_max_tokens(think: Think, seen_thinking: bool = False) -> int:
    backend = ScriptedBackend([PLANS], capabilities=get_profile("llamacpp").capabilities)
    core = make_core(backend)
    core.seen_thinking = seen_thinking
    settings = PlannerSettings(mode="batched", think=think, think_tokens=500)
    run_round(core, settings, planning_round(scenario="skirmish"))
    return backend.requests[0].max_tokens


def test_thinking_gets_its_own_room_in_the_output_budget() -> None:
    plain = asked_max_tokens("off")
    assert asked_max_tokens("off", seen_thinking=True) == plain
    assert asked_max_tokens("on") == plain + 500
    assert asked_max_tokens("auto") == plain  # nothing known of the model yet
    assert asked_max_tokens("auto", seen_thinking=True) == plain + 500


@pytest.mark.anyio
async def test_a_server_seen_thinking_is_remembered() -> None:
    events = await openai_events("llama-server-reasoning-stream.sse", 0, "llamacpp")
    core = make_core(Recorded(events))
    await anyio.to_thread.run_sync(
        run_round, core, PlannerSettings(mode="batched"), planning_round(scenario="skirmish")
    )
    assert core.seen_thinking
