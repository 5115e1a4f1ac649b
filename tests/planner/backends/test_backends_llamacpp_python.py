"""llama-cpp-python's server, with the bytes it sends: HTTP 500 to `json_schema`, the
schema taken as `{"type": "json_object", "schema": ...}`, `owned_by: "me"`, streams
cut by `max_tokens` (finish_reason "length"), and format discovery done once."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import anyio
import pytest

from game.match.maps import load
from game.rules.world import World
from planner.backends.base import Finished, LLMRequest, StreamEvent, TextDelta
from planner.backends.openai import OpenAIBackend
from planner.backends.profiles import get_profile
from planner.fallback import TIER_TOOLS, Tier
from planner.stream import ParsedPlan, PlanStreamParser
from planner.validate import validate_plan
from tests.loopback import Request, Script, Stall, json_reply, streamed
from tests.planner.backends.test_backends_openai import chat_server, chats, formats, text_of
from tests.planning_helpers import HANG_S

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REFUSED = json.loads((FIXTURES / "llama-cpp-python-json-schema-500.json").read_text("utf-8"))
"""Its whole answer to `response_format: {"type": "json_schema", ...}` (HTTP 500)."""
STREAM = (FIXTURES / "pinned" / "llama-cpp-python-stream.sse").read_bytes()
"""Its stream for a pinned compact schema of skirmish's red agents 2, 4 and 6 (seed 0)."""
CUT = (FIXTURES / "pinned" / "llama-cpp-python-length.sse").read_bytes()
"""The same request with max_tokens 24: cut off, finish_reason "length"."""
ME = [{"id": "tiny", "owned_by": "me"}]
SSE = "text/event-stream"
SCHEMA = {"type": "object", "properties": {"plans": {"type": "array"}}, "required": ["plans"]}
PINNED = {**SCHEMA, "title": "pinned"}
REQ = LLMRequest("sys", "agents 2 4 6", (2, 4, 6), schema=SCHEMA, pinned_schema=PINNED)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


def like_llama_cpp_python(stream: bytes = STREAM, stall: Stall | None = None) -> Any:
    """What the server answers: 500 to json_schema (held at `stall` if given), the
    stream to json_object (it reads the schema from `response_format.schema`)."""

    def chat(req: Request) -> Script:
        fmt = req.json().get("response_format") or {}
        if fmt.get("type") == "json_schema":
            refused = json_reply(500, REFUSED)
            return refused if stall is None else [stall, *refused]
        return streamed(200, SSE, [stream])

    return chat


async def events_of(backend: OpenAIBackend, req: LLMRequest = REQ) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    async for event in backend.stream(req):
        out.append(event)
    return out


async def test_owned_by_me_is_llama_cpp_python_and_gets_its_format_first() -> None:
    with chat_server(like_llama_cpp_python(), ME) as server:
        backend = OpenAIBackend(server.url, "tiny", env={})
        events = await events_of(backend)
        await events_of(backend)
        await backend.aclose()
    assert backend.profile.name == "llamacpp_python"
    assert "llama-cpp-python" in backend.describe()
    # never the 500: the schema goes where this server reads it, pinned (a grammar)
    assert formats(server) == ["json_object_schema", "json_object_schema"]
    assert chats(server)[0]["response_format"] == {"type": "json_object", "schema": PINNED}
    assert events[-1] == Finished("stop")
    assert json.loads(text_of(events))["plans"]


async def test_an_unprofiled_server_that_refuses_json_schema_gets_the_schema_as_json_object() -> (
    None
):
    someone = [{"id": "tiny", "owned_by": "someone"}]
    with chat_server(like_llama_cpp_python(), someone) as server:
        backend = OpenAIBackend(server.url, "tiny", env={})
        await events_of(backend)
        await events_of(backend)
        await backend.aclose()
    assert backend.profile.name == "generic"
    assert backend.format_mode == "json_object_schema"
    # the 500 once; not a bare json_object (the model would write arbitrary JSON)
    assert formats(server) == ["json_schema", "json_object_schema", "json_object_schema"]
    assert chats(server)[1]["response_format"] == {"type": "json_object", "schema": SCHEMA}


async def test_format_discovery_happens_once_before_requests_fan_out() -> None:
    """Parallel mode sends several requests at once: one finds the format (meeting the
    500), the others wait for it instead of each meeting the same refusal."""
    stall = Stall()
    someone = [{"id": "tiny", "owned_by": "someone"}]
    with chat_server(like_llama_cpp_python(stall=stall), someone) as server:
        backend = OpenAIBackend(server.url, "tiny", env={})
        done: list[list[StreamEvent]] = []

        async def one() -> None:
            done.append(await events_of(backend))

        with anyio.fail_after(HANG_S):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
                await anyio.to_thread.run_sync(stall.reached.wait, HANG_S)
                stall.release.set()
        await backend.aclose()
    assert len(done) == 4 and all(e[-1] == Finished("stop") for e in done)
    assert [r.path for r in server.requests].count("/v1/models") == 1
    assert formats(server) == ["json_schema"] + ["json_object_schema"] * 4


async def test_a_named_profile_overrides_detection() -> None:
    with chat_server(like_llama_cpp_python(), [{"id": "tiny", "owned_by": "llamacpp"}]) as server:
        backend = OpenAIBackend(server.url, "tiny", env={}, profile="llamacpp_python")
        await events_of(backend)
        await backend.aclose()
    assert backend.profile.name == "llamacpp_python"
    assert [r.path for r in server.requests] == ["/v1/chat/completions"]  # nothing asked
    assert formats(server) == ["json_object_schema"]


def test_the_profile_is_data() -> None:
    profile = get_profile("llamacpp_python")
    caps = profile.capabilities
    assert profile.response_formats == ("json_object_schema", "json_object", "none")
    assert caps.schema_outside_prompt_cache and caps.plan_format == "compact"
    assert not caps.cached_tokens  # no usage chunk, no timings
    assert caps.grammar_whitespace == 1  # its grammar: one optional space between tokens
    assert get_profile("llamacpp").capabilities.grammar_whitespace == 22  # "\n"{1,2} [ \t]{0,20}
    assert get_profile("lmstudio").response_formats == ("json_schema", "none")


def skirmish_red() -> dict[int, Any]:
    """The snapshots the captured streams were asked for."""
    world = World(load("skirmish"), random.Random(0))
    reds = [u for u in world.units.values() if u.squad == "red"][:3]
    return {u.id: world.snapshot_of(u.id) for u in reds}


async def test_the_captured_pinned_answer_gives_each_agent_one_legal_plan() -> None:
    with chat_server(like_llama_cpp_python(STREAM), ME) as server:
        backend = OpenAIBackend(server.url, "tiny", env={})
        events = await events_of(backend)
        await backend.aclose()
    snaps = skirmish_red()
    assert sorted(snaps) == [2, 4, 6]
    parser = PlanStreamParser(expected_ids=snaps)
    results = [r for e in events if isinstance(e, TextDelta) for r in parser.feed(e.text)]
    summary = parser.finish()
    assert all(isinstance(r, ParsedPlan) for r in results)
    plans = [r.plan for r in results if isinstance(r, ParsedPlan)]
    assert [p.agent_id for p in plans] == [2, 4, 6]  # each once, in the order asked
    assert summary.missing == () and summary.trailing_error is None
    grid = load("skirmish").grid
    for plan in plans:
        checked = validate_plan(plan, snaps[plan.agent_id], grid, TIER_TOOLS[Tier.simplified_llm])
        assert checked.valid, checked
        assert checked.steps[0] == plan.steps[0]  # the first step, judged in full, is kept


async def test_the_captured_length_cut() -> None:
    with chat_server(like_llama_cpp_python(CUT), ME) as server:
        backend = OpenAIBackend(server.url, "tiny", env={})
        events = await events_of(backend)
        await backend.aclose()
    assert events[-1] == Finished("length")
    parser = PlanStreamParser(expected_ids=[2, 4, 6])
    results = [r for e in events if isinstance(e, TextDelta) for r in parser.feed(e.text)]
    summary = parser.finish()
    assert [r.plan.agent_id for r in results if isinstance(r, ParsedPlan)] == [2]
    assert summary.missing == (4, 6)
    assert summary.trailing_error is not None


def test_fixtures_are_what_the_server_sent() -> None:
    assert "Input should be 'text' or 'json_object'" in REFUSED["error"]["message"]
    for raw in (STREAM, CUT):
        assert raw.startswith(b'data: {"id": "chatcmpl-') and raw.endswith(b"data: [DONE]\n\n")
