"""Bounds: response size (default 256 KiB of generated text), steps per plan, memory.

Past the size bound a request is cancelled with cause `oversize`, whether the bound is
met by the backend (its own `max_response_chars`, over real loopback HTTP) or by the
planner (`PlannerSettings.max_response_chars`, whatever the backend); an answer that
never ends is cut the same way. A plan keeps its first MAX_STEPS steps. And a short
soak shows planning state does not pile up round after round.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import pytest

from game.match.soak import Soak, soak
from game.rules.steps import MAX_STEPS, Scan, Wait
from planner.backends.base import Capabilities, LLMRequest, StreamEvent, TextDelta
from planner.backends.http_edge import DEFAULT_MAX_RESPONSE_CHARS, MAX_BODY_CHARS
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.errors import PlannerError
from planner.events import AgentFellBack, PlanDelivered, PlanEvent, ResponseEnded
from planner.settings import PlannerSettings
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


Backend = OpenAIBackend | OllamaBackend


def openai(url: str) -> OpenAIBackend:
    return OpenAIBackend(url, "m", profile="vllm", env={})


def ollama(url: str) -> OllamaBackend:
    return OllamaBackend(url, "m")


def drain(backend: Backend, request: LLMRequest = REQ) -> tuple[int, str]:
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
    assert PlannerSettings().max_response_chars == 256 * KIB
    assert openai("http://127.0.0.1:1").max_response_chars == 256 * KIB
    assert ollama("http://127.0.0.1:1").max_response_chars == 256 * KIB
    assert MAX_BODY_CHARS >= 64 * DEFAULT_MAX_RESPONSE_CHARS, "room for SSE framing"


# --------------------------------------------------------------------------- over HTTP


@pytest.mark.parametrize(
    ("make", "content_type", "piece"),
    [(openai, SSE, sse_content), (ollama, NDJSON, ndjson_content)],
    ids=["openai", "ollama"],
)
def test_an_endless_answer_is_cut_at_the_default_bound(
    make: Callable[[str], Backend],
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
    make: Callable[[str], Backend],
) -> None:
    """A line that never ends holds no text to count; the whole-body bound cuts it."""
    opening = b'data: {"choices":[{"index":0,"delta":{"content":"'
    script = Endless(head(200, [("Content-Type", SSE)]) + chunk(opening), chunk(b"x" * 64 * KIB))
    with LoopbackServer(lambda request: script) as server:
        seen, cause = drain(make(server.url))
    assert (seen, cause) == (0, "oversize")


@pytest.mark.parametrize("make", [openai, ollama], ids=["openai", "ollama"])
def test_an_oversized_whole_answer_is_refused(
    make: Callable[[str], Backend],
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


class EndlessBackend:
    """A backend with no bound of its own whose answer never ends (the planner's bound
    must cut it): optionally one good plan first."""

    name = "endless"
    model = "endless-1"
    capabilities = Capabilities()

    def __init__(self, first: str = "") -> None:
        self.first = first
        self.deltas = 0

    def describe(self) -> str:
        return "endless test backend"

    async def _play(self) -> AsyncIterator[StreamEvent]:
        if self.first:
            yield TextDelta(self.first)
        while True:
            await anyio.lowlevel.checkpoint()
            self.deltas += 1
            yield TextDelta(" " * 1000)

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        return self._play()

    async def aclose(self) -> None:
        return None


def plans_of(events: Sequence[PlanEvent]) -> dict[int, PlanDelivered]:
    delivered = [e for e in events if isinstance(e, PlanDelivered)]
    by_agent = {e.outcome.agent_id: e for e in delivered}
    assert len(by_agent) == len(delivered), "one plan per agent"
    return by_agent


def test_the_planner_cuts_an_endless_answer_with_cause_oversize() -> None:
    planning = planning_round()
    backend = EndlessBackend()
    settings = PlannerSettings(mode="batched", max_response_chars=20 * KIB, cache=False)
    events = run_round(make_core(backend), settings, planning)
    plans = plans_of(events)
    assert sorted(plans) == sorted(s.me.id for s in planning.snapshots)
    assert {e.cause for e in events if isinstance(e, AgentFellBack)} == {"oversize"}
    ended = [e for e in events if isinstance(e, ResponseEnded)]
    assert [(e.finish_reason, e.error_cause) for e in ended] == [("error", "oversize")]
    assert backend.deltas <= 21, "the stream was cancelled right past the bound"


def test_plans_before_the_bound_are_kept_and_the_rest_fall_back() -> None:
    planning = planning_round()
    first = planning.snapshots[0].me.id
    lead = f'{{"plans":[{{"agent_id":{first},"steps":[{{"act":"Scan"}}]}},'
    settings = PlannerSettings(mode="batched", max_response_chars=20 * KIB, cache=False)
    events = run_round(make_core(EndlessBackend(lead)), settings, planning)
    plans = plans_of(events)
    assert plans[first].outcome.tier.value == "simplified_llm"
    assert plans[first].outcome.steps == (Scan(),)
    others = [p for agent_id, p in plans.items() if agent_id != first]
    assert others and all(p.outcome.tier.value == "heuristic" for p in others)
    assert all(p.outcome.cause == "oversize" for p in others)


def test_the_default_planner_bound_cuts_an_oversized_answer() -> None:
    planning = planning_round()
    junk = "x" * (DEFAULT_MAX_RESPONSE_CHARS + 10)
    backend = ScriptedBackend([junk], chunk=64 * KIB)
    events = run_round(make_core(backend), PlannerSettings(mode="batched", cache=False), planning)
    assert len(plans_of(events)) == len(planning.snapshots)
    assert {e.cause for e in events if isinstance(e, AgentFellBack)} == {"oversize"}


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
