"""Ollama client over real loopback sockets: NDJSON quirks, errors, usage."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import httpx
import pytest

from planner.backends.base import Finished, LLMRequest, StreamEvent, TextDelta, Usage
from planner.backends.ollama import OllamaBackend, parse_chunk
from planner.errors import (
    BackendConnectError,
    BackendHTTPStatus,
    BackendStreamError,
    BackendTimeout,
    ResponseTooLarge,
)
from tests.loopback import (
    Drop,
    LoopbackServer,
    Request,
    Script,
    Stall,
    closed_port,
    json_reply,
    split_at,
    streamed,
)

NDJSON = "application/x-ndjson"
SCHEMA = {"type": "object", "properties": {"plans": {"type": "array"}}}
PINNED = {**SCHEMA, "title": "pinned"}
REQ = LLMRequest(
    system="sys", prompt="agents", agent_ids=(3,), schema=SCHEMA, pinned_schema=PINNED, seed=7
)
FINAL = {
    "model": "llama3.1",
    "created_at": "2025-01-01T00:00:00Z",
    "message": {"role": "assistant", "content": ""},
    "done": True,
    "done_reason": "stop",
    "total_duration": 5_043_500_667,
    "load_duration": 5_025_959,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 325_953_000,
    "eval_count": 290,
    "eval_duration": 4_709_213_000,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


def part(content: str) -> dict[str, Any]:
    return {
        "model": "llama3.1",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": False,
    }


def ndjson(*objs: dict[str, Any], eol: str = "\n") -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + eol for o in objs).encode()


def server_for(chat: Script) -> LoopbackServer:
    def handler(req: Request) -> Script:
        if req.path == "/api/tags":
            models = [{"name": "llama3.1:latest", "model": "llama3.1:latest", "size": 1}]
            return json_reply(200, {"models": models})
        return chat

    return LoopbackServer(handler)


async def collect(backend: OllamaBackend, req: LLMRequest, into: list[StreamEvent]) -> None:
    try:
        async for event in backend.stream(req):
            into.append(event)
    finally:
        await backend.aclose()


async def run(backend: OllamaBackend, req: LLMRequest = REQ) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    await collect(backend, req, events)
    return events


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


EXPECTED_USAGE = Usage(
    prompt_tokens=26,
    completion_tokens=290,
    server_timings={
        "total_ms": 5043.500667,
        "load_ms": 5.025959,
        "prompt_ms": 325.953,
        "predicted_ms": 4709.213,
    },
)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stream_in_random_chunks_with_usage_and_timings(seed: int) -> None:
    words = ['{"plans":', '[{"agent_id":3,', '"steps":[{"act":"Scan"}]}', "]}"]
    body = ndjson(*(part(w) for w in words), FINAL)
    rng = random.Random(seed)
    pieces = split_at(body, [rng.randrange(len(body)) for _ in range(12)])
    with server_for(streamed(200, NDJSON, pieces)) as server:
        events = await run(OllamaBackend(server.url, "llama3.1"))
    assert text_of(events) == "".join(words)
    assert events[-2:] == [EXPECTED_USAGE, Finished("stop")]


async def test_payload_fields() -> None:
    with server_for(streamed(200, NDJSON, [ndjson(FINAL)])) as server:
        backend = OllamaBackend(server.url, "llama3.1", keep_alive="30m", num_ctx=4096)
        await run(backend)
    body = server.requests[0].json()
    assert server.requests[0].path == "/api/chat"
    assert body["model"] == "llama3.1" and body["stream"] is True
    assert body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "agents"},
    ]
    assert body["format"] == PINNED  # Ollama's grammar lives outside the prompt cache
    assert body["options"] == {"seed": 7, "temperature": 0.2, "num_ctx": 4096, "num_predict": 1024}
    assert body["keep_alive"] == "30m"


async def test_multibyte_split_and_crlf_lines() -> None:
    body = ndjson(part("Ärger ✓"), part(" 🎯"), FINAL, eol="\r\n")
    cuts = [body.index("Ä".encode()) + 1, body.index("✓".encode()) + 1]
    cuts += [body.index("🎯".encode()) + 2, body.index(b"\r\n") + 1]
    with server_for(streamed(200, NDJSON, split_at(body, cuts))) as server:
        events = await run(OllamaBackend(server.url, "llama3.1"))
    assert text_of(events) == "Ärger ✓ 🎯"
    assert events[-1] == Finished("stop")


async def test_error_line_mid_stream() -> None:
    body = ndjson(part('{"pl'), {"error": "an error was encountered while running the model"})
    with server_for(streamed(200, NDJSON, [body])) as server:
        events: list[StreamEvent] = []
        with pytest.raises(BackendStreamError, match="error was encountered"):
            await collect(OllamaBackend(server.url, "llama3.1"), REQ, events)
    assert events == [TextDelta('{"pl')]


async def test_done_reason_length_is_truncation() -> None:
    body = ndjson(part('{"plans":[{"ag'), {**FINAL, "done_reason": "length"})
    with server_for(streamed(200, NDJSON, [body])) as server:
        events = await run(OllamaBackend(server.url, "llama3.1"))
    assert events[-1] == Finished("length")


async def test_final_line_without_newline() -> None:
    body = ndjson(part("{}")) + json.dumps(FINAL).encode()
    with server_for(streamed(200, NDJSON, [body])) as server:
        events = await run(OllamaBackend(server.url, "llama3.1"))
    assert events == [TextDelta("{}"), EXPECTED_USAGE, Finished("stop")]


async def test_non_streaming_mode() -> None:
    whole = {**FINAL, "message": {"role": "assistant", "content": '{"plans":[]}'}}
    req = LLMRequest(system="s", prompt="p", agent_ids=(1,), schema=SCHEMA, stream=False)
    with server_for(json_reply(200, whole)) as server:
        events = await run(OllamaBackend(server.url, "llama3.1"), req)
    assert events == [TextDelta('{"plans":[]}'), EXPECTED_USAGE, Finished("stop")]
    body = server.requests[0].json()
    assert body["stream"] is False and body["format"] == SCHEMA  # no pinned one given


async def test_http_404_model_not_found_with_body() -> None:
    script = json_reply(404, {"error": "model 'nope' not found, try pulling it first"})
    with server_for(script) as server, pytest.raises(BackendHTTPStatus) as info:
        await run(OllamaBackend(server.url, "nope"))
    assert info.value.status == 404 and "not found" in info.value.body
    assert not info.value.transient


async def test_http_500_and_429_with_retry_after() -> None:
    with (
        server_for(json_reply(500, {"error": "llama runner process has terminated"})) as server,
        pytest.raises(BackendHTTPStatus) as info,
    ):
        await run(OllamaBackend(server.url, "llama3.1"))
    assert info.value.status == 500 and "terminated" in str(info.value) and info.value.transient
    busy = json_reply(429, {"error": "busy"}, headers=[("Retry-After", "2")])
    with server_for(busy) as server, pytest.raises(BackendHTTPStatus) as info:
        await run(OllamaBackend(server.url, "llama3.1"))
    assert info.value.retry_after == 2.0


async def test_connection_dropped_mid_stream() -> None:
    script = [*streamed(200, NDJSON, [ndjson(part("{"))], end=False), Drop()]
    with server_for(script) as server:
        events: list[StreamEvent] = []
        with pytest.raises(BackendConnectError):
            await collect(OllamaBackend(server.url, "llama3.1"), REQ, events)
    assert events == [TextDelta("{")]


async def test_stream_ending_before_done_is_a_drop() -> None:
    with (
        server_for(streamed(200, NDJSON, [ndjson(part("{"))])) as server,
        pytest.raises(BackendConnectError, match="ended before its final line"),
    ):
        await run(OllamaBackend(server.url, "llama3.1"))


async def test_malformed_line_is_a_clear_error() -> None:
    with (
        server_for(streamed(200, NDJSON, [b"oops, not JSON\n"])) as server,
        pytest.raises(BackendStreamError, match="malformed line"),
    ):
        await run(OllamaBackend(server.url, "llama3.1"))


async def test_stall_trips_the_read_timeout() -> None:
    script = [*streamed(200, NDJSON, [ndjson(part("{"))], end=False), Stall()]
    # The server stalls until the test ends; a second is only for what comes before.
    timeout = httpx.Timeout(connect=1.0, read=1.0, write=1.0, pool=1.0)
    with server_for(script) as server, pytest.raises(BackendTimeout):
        await run(OllamaBackend(server.url, "llama3.1", timeout=timeout))


async def test_response_too_large() -> None:
    body = ndjson(*(part("y" * 100) for _ in range(20)))
    with (
        server_for([*streamed(200, NDJSON, [body], end=False), Stall()]) as server,
        pytest.raises(ResponseTooLarge),
    ):
        await run(OllamaBackend(server.url, "llama3.1"), replace(REQ, max_response_chars=1000))


async def test_list_models_describe_and_refused() -> None:
    with server_for([]) as server:
        backend = OllamaBackend(server.url, "llama3.1")
        assert await backend.list_models() == ["llama3.1:latest"]
        await backend.aclose()
    assert backend.describe() == f"Ollama at {server.url}, model llama3.1"
    dead = OllamaBackend(f"127.0.0.1:{closed_port()}", "llama3.1")
    assert dead.url.startswith("http://127.0.0.1:")
    with pytest.raises(BackendConnectError, match="connection refused") as info:
        await run(dead)
    assert info.value.cause == "connect" and info.value.transient


def test_unknown_fields_at_any_depth_are_ignored() -> None:
    line = {
        **FINAL,
        "message": {"role": "assistant", "content": "hi", "images": None, "tool_calls": []},
        "context": [1, 2, 3],
        "new_field": {"nested": True},
    }
    chunk = parse_chunk(json.dumps(line))
    assert chunk.message is not None and chunk.message.content == "hi"
    assert chunk.done and chunk.eval_count == 290
