"""Bounds: response size (default 256 KiB of generated text), steps per plan, memory.

The size bound has one home: `PlannerSettings.max_response_chars` (default
`DEFAULT_MAX_RESPONSE_CHARS`) travels with every request, and each backend counts the
text it hands on against it (`TextBudget`). Past it the request is cancelled with cause
`oversize`, over real loopback HTTP (OpenAI, Ollama), from the sim and from a replay, a
stream or a whole answer alike; an answer that never ends is cut the same way. A plan
keeps its first MAX_STEPS steps. And a short soak shows planning state does not pile up
round after round.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Sequence

import anyio
import pytest

from game.match.soak import Soak, soak
from game.rules.steps import MAX_STEPS, Scan, Wait
from planner.backends.base import DEFAULT_MAX_RESPONSE_CHARS, Backend, LLMRequest, TextDelta
from planner.backends.http_edge import MAX_BODY_CHARS
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.backends.replay import RecordedChunk, RecordedResponse, ReplayBackend
from planner.clock import VirtualClock
from planner.core import PlanningRound
from planner.dispatch import RoundRun
from planner.errors import PlannerError
from planner.events import AgentFellBack, ChunkReceived, PlanDelivered, PlanEvent, ResponseEnded
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from tests.loopback import Endless, LoopbackServer, chunk, head, whole
from tests.planning_helpers import ScriptedBackend, make_core, planning_round, run_round

KIB = 1024
REQ = LLMRequest(system="sys", prompt="agents", agent_ids=(2,))
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


def sse_content(text: str) -> bytes:
    return (
        f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': text}}]})}\n\n".encode()
    )


def ndjson_content(text: str) -> bytes:
    line = {"model": "m", "message": {"role": "assistant", "content": text}, "done": False}
    return (json.dumps(line) + "\n").encode()


HttpBackend = OpenAIBackend | OllamaBackend


def openai(url: str) -> OpenAIBackend:
    return OpenAIBackend(url, "m", profile="vllm", env={})


def ollama(url: str) -> OllamaBackend:
    return OllamaBackend(url, "m")


def drain(backend: HttpBackend, request: LLMRequest = REQ) -> tuple[int, str]:
    """Read a backend's stream to its end or error: (characters of text seen, error cause)."""
    seen = 0

    async def main() -> str:
        nonlocal seen
        try:
            async for event in backend.stream(request):
                if isinstance(event, TextDelta):
                    seen += len(event.text)
        except PlannerError as exc:
            return exc.cause
        finally:
            await backend.aclose()
        return ""

    cause = anyio.run(main)
    return seen, cause


# --------------------------------------------------------------------------- the defaults


def test_the_default_bound_is_256_kib_everywhere() -> None:
    assert DEFAULT_MAX_RESPONSE_CHARS == 256 * KIB
    assert PlannerSettings().max_response_chars == DEFAULT_MAX_RESPONSE_CHARS
    assert REQ.max_response_chars == DEFAULT_MAX_RESPONSE_CHARS
    assert MAX_BODY_CHARS >= 64 * DEFAULT_MAX_RESPONSE_CHARS, "room for SSE framing"


def test_the_planner_sends_its_bound_with_every_request() -> None:
    planning = planning_round()
    for settings, bound in [
        (PlannerSettings(cache=False), DEFAULT_MAX_RESPONSE_CHARS),
        (PlannerSettings(cache=False, mode="parallel", max_response_chars=20 * KIB), 20 * KIB),
    ]:
        backend = ScriptedBackend([])
        run_round(make_core(backend), settings, planning)
        assert backend.requests
        assert {r.max_response_chars for r in backend.requests} == {bound}


# --------------------------------------------------------------------------- over HTTP


@pytest.mark.parametrize(
    ("make", "content_type", "piece"),
    [(openai, SSE, sse_content), (ollama, NDJSON, ndjson_content)],
    ids=["openai", "ollama"],
)
def test_an_endless_answer_is_cut_at_the_default_bound(
    make: Callable[[str], HttpBackend],
    content_type: str,
    piece: Callable[[str], bytes],
) -> None:
    script = Endless(head(200, [("Content-Type", content_type)]), chunk(piece("ab" * 2 * KIB)))
    with LoopbackServer(lambda request: script) as server:
        seen, cause = drain(make(server.url))
    assert cause == "oversize"
    assert seen <= DEFAULT_MAX_RESPONSE_CHARS, "no text past the bound was handed on"
    assert seen > DEFAULT_MAX_RESPONSE_CHARS - 8 * KIB, "cut at the bound, not before"


@pytest.mark.parametrize("make", [openai, ollama], ids=["openai", "ollama"])
def test_an_endless_line_is_cut_by_the_body_bound(
    make: Callable[[str], HttpBackend],
) -> None:
    """A line that never ends holds no text to count; the whole-body bound cuts it."""
    opening = b'data: {"choices":[{"index":0,"delta":{"content":"'
    script = Endless(head(200, [("Content-Type", SSE)]) + chunk(opening), chunk(b"x" * 64 * KIB))
    with LoopbackServer(lambda request: script) as server:
        seen, cause = drain(make(server.url))
    assert (seen, cause) == (0, "oversize")


@pytest.mark.parametrize("make", [openai, ollama], ids=["openai", "ollama"])
def test_an_oversized_whole_answer_is_refused(
    make: Callable[[str], HttpBackend],
) -> None:
    content = "x" * (DEFAULT_MAX_RESPONSE_CHARS + 1)
    if make is openai:
        body: object = {"choices": [{"index": 0, "message": {"content": content}}]}
    else:
        body = {"model": "m", "message": {"role": "assistant", "content": content}, "done": True}
    with LoopbackServer(lambda request: whole(200, json.dumps(body))) as server:
        seen, cause = drain(make(server.url), LLMRequest("sys", "agents", (2,), stream=False))
    assert (seen, cause) == (0, "oversize")


def test_an_answer_just_within_the_bound_is_read() -> None:
    content = "x" * DEFAULT_MAX_RESPONSE_CHARS
    body = {"choices": [{"index": 0, "message": {"content": content}}]}
    with LoopbackServer(lambda request: whole(200, json.dumps(body))) as server:
        seen, cause = drain(openai(server.url), LLMRequest("sys", "agents", (2,), stream=False))
    assert (seen, cause) == (DEFAULT_MAX_RESPONSE_CHARS, "")


# --------------------------------------------------------------------------- in the planner

PATHS = ["openai", "ollama", "sim", "replay"]
"""Every backend that counts the text against the request's bound."""


def batch_ids(planning: PlanningRound) -> tuple[int, ...]:
    """The agent ids of the round's first (batched) request: blocks by ascending id."""
    return tuple(sorted(s.me.id for s in planning.snapshots))


def recorded(ids: tuple[int, ...], *texts: str, offset_s: float = 0.01) -> RecordedResponse:
    chunks = tuple(RecordedChunk(offset_s * (i + 1), t) for i, t in enumerate(texts))
    return RecordedResponse(
        ids, chunks, "stop", "", "", 0, None, offset_s * (len(texts) + 1), (0, 0, 0)
    )


def endless_http(
    make: Callable[[str], HttpBackend], lead: str = ""
) -> Callable[[], LoopbackServer]:
    sse = make is openai
    content_type, piece = (SSE, sse_content) if sse else (NDJSON, ndjson_content)
    first = head(200, [("Content-Type", content_type)]) + (chunk(piece(lead)) if lead else b"")
    script = Endless(first, chunk(piece(" " * 4 * KIB)))
    return lambda: LoopbackServer(lambda request: script)


def whole_http(make: Callable[[str], HttpBackend], content: str) -> Callable[[], LoopbackServer]:
    if make is openai:
        body: object = {"choices": [{"index": 0, "message": {"content": content}}]}
    else:
        body = {"model": "m", "message": {"role": "assistant", "content": content}, "done": True}
    return lambda: LoopbackServer(lambda request: whole(200, json.dumps(body)))


def plan_round_on(
    path: str,
    settings: PlannerSettings,
    planning: PlanningRound,
    *texts: str,
    re_requested: tuple[int, ...] = (),
) -> list[PlanEvent]:
    """One round through the planner on `path`: the sim as it is; otherwise an answer of
    `texts` then junk without end (streamed) or `texts` and junk past the bound (whole).
    A replay answers the agents `re_requested` after that with junk past the bound too
    (a live server is asked again and answers the same)."""
    clock = VirtualClock()
    bound = settings.max_response_chars
    junk = " " * (bound + 1)
    server: LoopbackServer | None = None
    backend: Backend
    if path == "sim":
        backend = SimBackend.create("gpu", seed=1, clock=clock)
    elif path == "replay":
        ids = batch_ids(planning)
        pieces = [*texts, *([junk[: 4 * KIB]] * (bound // (4 * KIB) + 2))]
        answer = recorded(ids, *pieces) if settings.stream else recorded(ids, "".join(texts) + junk)
        again = [recorded(re_requested, junk)] if re_requested else []
        backend = ReplayBackend([answer, *again], clock, model="m", source="test")
    else:
        make = openai if path == "openai" else ollama
        lead = "".join(texts)
        start = endless_http(make, lead) if settings.stream else whole_http(make, lead + junk)
        server = start().__enter__()
        backend = make(server.url)
    events: list[PlanEvent] = []

    async def main() -> None:
        try:
            await RoundRun(make_core(backend, clock), settings, planning, events.append).run()
        finally:
            await backend.aclose()

    try:
        anyio.run(main)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    return events


def plans_of(events: Sequence[PlanEvent]) -> dict[int, PlanDelivered]:
    delivered = [e for e in events if isinstance(e, PlanDelivered)]
    by_agent = {e.outcome.agent_id: e for e in delivered}
    assert len(by_agent) == len(delivered), "one plan per agent"
    return by_agent


def text_received(events: Sequence[PlanEvent]) -> int:
    return sum(len(e.text) for e in events if isinstance(e, ChunkReceived))


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("path", PATHS)
def test_an_oversize_answer_falls_back_with_cause_oversize(path: str, stream: bool) -> None:
    planning = planning_round()
    # The sim's answer is short: a bound smaller than its first plan cuts it.
    bound = 30 if path == "sim" else 20 * KIB
    settings = PlannerSettings(mode="batched", max_response_chars=bound, cache=False, stream=stream)
    events = plan_round_on(path, settings, planning)
    plans = plans_of(events)
    assert sorted(plans) == sorted(s.me.id for s in planning.snapshots)
    assert {e.cause for e in events if isinstance(e, AgentFellBack)} == {"oversize"}
    ended = [e for e in events if isinstance(e, ResponseEnded)]
    assert [(e.finish_reason, e.error_cause) for e in ended] == [("error", "oversize")]
    assert text_received(events) <= bound, "no text past the bound reached the planner"


@pytest.mark.parametrize("path", ["openai", "ollama", "replay"])
def test_plans_before_the_bound_are_kept_and_the_rest_fall_back(path: str) -> None:
    planning = planning_round()
    first = planning.snapshots[0].me.id
    lead = f'{{"plans":[{{"agent_id":{first},"steps":[{{"act":"Scan"}}]}},'
    settings = PlannerSettings(mode="batched", max_response_chars=20 * KIB, cache=False)
    rest = tuple(i for i in batch_ids(planning) if i != first)
    events = plan_round_on(path, settings, planning, lead, re_requested=rest)
    plans = plans_of(events)
    assert plans[first].outcome.tier.value == "simplified_llm"
    assert plans[first].outcome.steps == (Scan(),)
    others = [p for agent_id, p in plans.items() if agent_id != first]
    assert others and all(p.outcome.tier.value == "heuristic" for p in others)
    assert all(p.outcome.cause == "oversize" for p in others)


def test_the_default_planner_bound_cuts_an_oversized_answer() -> None:
    planning = planning_round()
    clock = VirtualClock()
    junk = "x" * (DEFAULT_MAX_RESPONSE_CHARS + 10)
    backend = ReplayBackend([recorded(batch_ids(planning), junk)], clock, model="m", source="t")
    events = run_round(
        make_core(backend, clock), PlannerSettings(mode="batched", cache=False), planning
    )
    assert len(plans_of(events)) == len(planning.snapshots)
    assert {e.cause for e in events if isinstance(e, AgentFellBack)} == {"oversize"}
    assert text_received(events) == 0


def test_an_oversize_chunk_past_the_deadline_is_late_not_oversize() -> None:
    """In virtual time the error carries the instant of the chunk that crossed the bound,
    so one stamped after the round's deadline counts as not received."""
    planning = planning_round()
    clock = VirtualClock()
    settings = PlannerSettings(mode="batched", max_response_chars=20 * KIB, cache=False)
    late = recorded(batch_ids(planning), " " * 30 * KIB, offset_s=settings.budget_ms / 1000 + 1)
    backend = ReplayBackend([late], clock, model="m", source="t")
    events = run_round(make_core(backend, clock), settings, planning)
    assert {e.cause for e in events if isinstance(e, AgentFellBack)} == {"deadline"}


def test_a_plan_keeps_its_first_max_steps_steps() -> None:
    planning = planning_round()
    ids = [s.me.id for s in planning.snapshots]
    many = ",".join(['{"act":"Scan"}', '{"act":"Wait"}'] * (MAX_STEPS + 5))
    text = '{"plans":[' + ",".join(f'{{"agent_id":{a},"steps":[{many}]}}' for a in ids) + "]}"
    events = run_round(
        make_core(ScriptedBackend([text])), PlannerSettings(mode="batched"), planning
    )
    plans = plans_of(events)
    want = tuple([Scan(), Wait()] * MAX_STEPS)[:MAX_STEPS]
    assert all(p.outcome.steps == want for p in plans.values())
    assert all(p.outcome.tier.value == "simplified_llm" for p in plans.values())


# --------------------------------------------------------------------------- memory


def test_a_short_soak_keeps_memory_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    """150 turns with faults at 20%, after a warm-up, allocate next to nothing that stays.

    Counted in live allocator blocks (`sys.getallocatedblocks`: exact and cheap, where
    resident memory is too coarse for a short run). A small plan cache fills during the
    warm-up; what is left is the sim's bounded record of recent emissions (~10 blocks per
    request). Keeping every chunk or event of a round would add ~100 blocks per turn,
    15000 in all; the bound is a third of that.
    """
    monkeypatch.setenv("LLM_CACHE_CAP", "64")
    run = Soak(0.2, "village", seed=3)
    try:
        run.play(60)  # warm-up: schemas, the cache filling, the first matches
        gc.collect()
        before = sys.getallocatedblocks()
        run.play(150)
        gc.collect()
        growth = sys.getallocatedblocks() - before
        assert run.matches >= 3, "matches were restarted"
    finally:
        run.close()
    assert growth < 5000, f"{growth} more live blocks after 150 turns"


def test_the_soak_command_reports_rss_samples_and_growth() -> None:
    lines: list[str] = []
    result = soak(60, 0.2, "village", every=20, report=lines.append)
    assert [turns for turns, _ in result.samples] == [0, 20, 40, 60]
    assert all(rss > 0 for _, rss in result.samples)
    assert result.matches >= 1
    assert lines[-1].startswith("60 turns") and "growth" in lines[-1]
    assert result.growth_bytes < 20 * 1024 * KIB
