"""Causes attributed to what really happened, over real loopback HTTP through the planner
thread (issue 16, item 7), and an answer nested 100,000 deep (item 2).

Each test runs one round against a scripted server and reads the cause every agent's
fallback plan carries. Timeouts are a minute, so only the fault under test (or, for the
endless stream, the round's deadline) ends a request; nothing here is timed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence

import pytest

from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.errors import Cause
from planner.events import PlanDelivered, PlanEvent, ResponseEnded, RoundDone
from planner.fallback import LLM_TIERS
from planner.service import PlannerService
from planner.settings import PlannerSettings
from tests.loopback import (
    Action,
    Endless,
    LoopbackServer,
    RefusingPort,
    Request,
    chunk,
    head,
    streamed,
    whole,
)
from tests.planning_helpers import planning_round, round_done, wait_for

AGENTS = tuple(s.me.id for s in planning_round().snapshots)
ENV = {"LLM_TIMEOUT_MS": "60000", "LLM_BREAKER_COOLDOWN_MS": "60000"}
BATCHED = PlannerSettings(mode="batched", budget_ms=60_000, cache=False)
NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
Kind = str
KINDS = ("ollama", "openai")


def backend_for(kind: Kind, url: str) -> OllamaBackend | OpenAIBackend:
    return OllamaBackend(url, "m") if kind == "ollama" else OpenAIBackend(url, "m", profile="vllm")


def one_round(
    backend: OllamaBackend | OpenAIBackend,
    settings: PlannerSettings = BATCHED,
    env: Mapping[str, str] = ENV,
) -> tuple[list[PlanEvent], str]:
    """One round's events, and the breaker's state after it."""
    service = PlannerService(backend, settings, seed=3, env=env)
    try:
        service.submit(planning_round(1))
        events = wait_for(service, round_done(1))
        return events, service.breaker_state()
    finally:
        service.close()


def fallback_causes(events: Sequence[PlanEvent]) -> dict[int, Cause | None]:
    """Each agent that did not get an LLM plan, with the cause its plan carries."""
    return {
        e.outcome.agent_id: e.outcome.cause
        for e in events
        if isinstance(e, PlanDelivered) and e.outcome.tier not in LLM_TIERS
    }


def llm_planned(events: Sequence[PlanEvent]) -> set[int]:
    return {
        e.outcome.agent_id
        for e in events
        if isinstance(e, PlanDelivered) and e.outcome.tier in LLM_TIERS
    }


def ends(events: Sequence[PlanEvent]) -> list[ResponseEnded]:
    return [e for e in events if isinstance(e, ResponseEnded)]


def requests_made(events: Sequence[PlanEvent]) -> int:
    return sum(e.stats.requests for e in events if isinstance(e, RoundDone))


def answer(kind: Kind, pieces: Sequence[bytes]) -> list[Action]:
    """A streamed answer whose model text is `pieces` (each already escaped for a JSON
    string; raw bytes that are not UTF-8 may be among them), one HTTP chunk each."""
    if kind == "ollama":
        lines = [
            b'{"model":"m","message":{"role":"assistant","content":"' + p + b'"},"done":false}\n'
            for p in pieces
        ]
        lines.append(b'{"model":"m","message":{"role":"assistant","content":""},"done":true}\n')
        return streamed(200, NDJSON, lines)
    events = [
        b'data: {"choices":[{"index":0,"delta":{"content":"' + p + b'"}}]}\n\n' for p in pieces
    ]
    events.append(
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    )
    return streamed(200, SSE, events)


def escaped(text: str) -> bytes:
    return json.dumps(text)[1:-1].encode()


def plan(agent_id: int) -> str:
    return f'{{"agent_id":{agent_id},"steps":[{{"act":"Scan"}},{{"act":"Wait"}}]}}'


# --------------------------------------------------------------------------- refused


def test_parallel_requests_all_refused_are_connect_not_circuit_open() -> None:
    """Every request is refused and retried; the breaker opens on the failures and
    refuses the retries. Each agent's request really failed to connect: that is its
    cause, whatever the breaker said to its last retry."""
    env = {**ENV, "LLM_BREAKER_THRESHOLD": "3", "LLM_RETRY_MAX": "3"}
    settings = PlannerSettings(mode="parallel", budget_ms=60_000, cache=False, concurrency=8)
    with RefusingPort() as refusing:
        backend = backend_for("openai", f"http://127.0.0.1:{refusing.port}")
        events, breaker = one_round(backend, settings, env)
    assert breaker == "open"
    assert fallback_causes(events) == dict.fromkeys(AGENTS, "connect")
    assert {e.error_cause for e in ends(events)} == {"connect"}


def test_parallel_agents_whose_request_the_open_breaker_refused_are_circuit_open() -> None:
    """One request at a time, no retries, the breaker opens after 2 failures: the first
    two agents' requests were refused by the server (connect), the other four never went
    out because the breaker was open (circuit_open)."""
    env = {**ENV, "LLM_BREAKER_THRESHOLD": "2", "LLM_RETRY_MAX": "1"}
    settings = PlannerSettings(mode="parallel", budget_ms=60_000, cache=False, concurrency=1)
    with RefusingPort() as refusing:
        backend = backend_for("ollama", f"http://127.0.0.1:{refusing.port}")
        events, breaker = one_round(backend, settings, env)
    assert breaker == "open"
    first, second, *rest = sorted(AGENTS)
    assert fallback_causes(events) == {
        first: "connect",
        second: "connect",
        **dict.fromkeys(rest, "circuit_open"),
    }
    assert requests_made(events) == 2


# --------------------------------------------------------------------------- the deadline


def test_sequential_endless_stream_cut_by_the_deadline_is_deadline_for_every_agent() -> None:
    """The first agent's answer never ends (a space every 10 ms, no plan): the round's
    deadline cuts it, and no other agent's turn comes. All of them: `deadline`."""
    opening = b'data: {"choices":[{"index":0,"delta":{"content":"{\\"plans\\":["}}]}\n\n'
    space = b'data: {"choices":[{"index":0,"delta":{"content":" "}}]}\n\n'
    endless = Endless(head(200, [("Content-Type", SSE)]) + chunk(opening), chunk(space), 0.01)
    settings = PlannerSettings(mode="sequential", budget_ms=300, cache=False)
    with LoopbackServer(lambda request: endless) as server:
        events, _ = one_round(backend_for("openai", server.url), settings)
    assert fallback_causes(events) == dict.fromkeys(AGENTS, "deadline")
    assert requests_made(events) == 1
    assert [e.error_cause for e in ends(events)] == ["deadline"]


# --------------------------------------------------------------------------- not an answer

PAGE = "<!doctype html><html><head><title>Sign in</title></head><body>Portal</body></html>"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/json", SSE])
@pytest.mark.parametrize("stream", [True, False])
def test_an_html_page_with_status_200_says_so(kind: Kind, content_type: str, stream: bool) -> None:
    """A proxy's or a web server's page answers 200: http_status with status 200 and a
    message that says it is an HTML page (by its Content-Type, or by its first byte)."""
    settings = PlannerSettings(mode="batched", budget_ms=60_000, cache=False, stream=stream)
    with LoopbackServer(lambda request: whole(200, PAGE, content_type=content_type)) as server:
        events, _ = one_round(backend_for(kind, server.url), settings)
    assert fallback_causes(events) == dict.fromkeys(AGENTS, "http_status")
    [end] = ends(events)  # not retried: a page will not turn into an answer
    assert (end.error_cause, end.error_status) == ("http_status", 200)
    assert "is an HTML page, not the API's answer" in end.error
    assert end.error.endswith(": Sign in")


# --------------------------------------------------------------------------- not UTF-8


@pytest.mark.parametrize("kind", KINDS)
def test_invalid_utf8_is_a_parse_error_and_plans_before_it_are_kept(kind: Kind) -> None:
    """The first plan arrives whole; then bytes that are not UTF-8. The first agent keeps
    its LLM plan; the others are re-requested (the same bytes again) and fall back with
    parse_error. The server answered, so the breaker stays closed."""
    first, *others = sorted(AGENTS)
    pieces = [
        escaped('{"plans":[' + plan(first) + ","),
        escaped('{"agent_id":4,"steps":[{"act":"Sc') + b"\xff\xfe" + escaped('an"}]}]}'),
    ]

    def handler(request: Request) -> list[Action]:
        return answer(kind, pieces)

    with LoopbackServer(handler) as server:
        events, breaker = one_round(backend_for(kind, server.url))
    assert llm_planned(events) == {first}
    assert fallback_causes(events) == dict.fromkeys(others, "parse_error")
    assert breaker == "closed"
    failed = [e for e in ends(events) if e.error]
    assert failed and all(e.error_cause == "parse_error" for e in failed)
    assert all("not UTF-8" in e.error for e in failed)


# --------------------------------------------------------------------------- nested deep

DEEP = 100_000
DEEP_TEXT = '{"plans":[{"agent_id":2,"steps":' + "[" * DEEP + "]" * DEEP + "}]}"
"""Issue 16's answer: it froze the game loop, and a catch-all labelled every agent
heuristic_error."""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("split", [1, 7])
def test_an_answer_nested_100000_deep_is_a_parse_error_for_its_element(
    kind: Kind, split: int, caplog: pytest.LogCaptureFixture
) -> None:
    size = -(-len(DEEP_TEXT) // split)
    pieces = [escaped(DEEP_TEXT[i : i + size]) for i in range(0, len(DEEP_TEXT), size)]
    handler: Callable[[Request], list[Action]] = lambda request: answer(kind, pieces)  # noqa: E731
    with caplog.at_level(logging.ERROR), LoopbackServer(handler) as server:
        events, breaker = one_round(backend_for(kind, server.url))
    causes = fallback_causes(events)
    assert causes[2] == "parse_error"
    assert set(causes) == set(AGENTS)
    assert "heuristic_error" not in causes.values()
    assert set(causes.values()) <= {"parse_error", "missing_from_batch"}
    assert not [r for r in caplog.records if "failed; falling back" in r.getMessage()]
    assert breaker == "closed"
