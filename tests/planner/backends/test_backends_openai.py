"""OpenAI-compatible client over real loopback sockets, against real servers' quirks."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner.backends.base import Finished, LLMRequest, StreamEvent, TextDelta, Usage
from planner.backends.openai import OpenAIBackend, parse_completion
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
    json_reply,
    split_at,
    streamed,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SSE = "text/event-stream"
SCHEMA = {"type": "object", "properties": {"plans": {"type": "array"}}, "required": ["plans"]}
PINNED = {**SCHEMA, "title": "pinned"}
REQ = LLMRequest(
    system="sys", prompt="agents 3 5", agent_ids=(3, 5), schema=SCHEMA, pinned_schema=PINNED
)
SECRET = "sk-test-very-secret-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


def delta(content: str | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": d, "finish_reason": finish}],
        **extra,
    }


def sse(*events: dict[str, Any] | str, eol: str = "\n") -> bytes:
    out = []
    for e in events:
        if isinstance(e, str):  # raw line(s), e.g. ": ping" or "data: [DONE]"
            out.append(e + eol + eol)
        else:
            out.append("data: " + json.dumps(e, ensure_ascii=False) + eol + eol)
    return "".join(out).encode()


def chat_server(
    chat: Callable[[Request], Script] | Script, models: list[dict[str, str]] | None = None
) -> LoopbackServer:
    """Answers /v1/models with `models` and chat completions with `chat`."""
    listing = models if models is not None else [{"id": "m", "owned_by": "someone"}]

    def handler(req: Request) -> Script:
        if req.path == "/v1/models":
            return json_reply(200, {"object": "list", "data": listing})
        return chat(req) if callable(chat) else chat

    return LoopbackServer(handler)


def chats(server: LoopbackServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests if r.path == "/v1/chat/completions"]


def format_of(body: dict[str, Any]) -> str | None:
    """The response_format a request body used, as the backend names it."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    return "json_object_schema" if "schema" in fmt else str(fmt["type"])


def formats(server: LoopbackServer) -> list[str | None]:
    return [format_of(b) for b in chats(server)]


async def collect(backend: OpenAIBackend, req: LLMRequest, into: list[StreamEvent]) -> None:
    async for event in backend.stream(req):
        into.append(event)


async def run(backend: OpenAIBackend, req: LLMRequest = REQ) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    try:
        await collect(backend, req, events)
    finally:
        await backend.aclose()
    return events


def text_of(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def random_pieces(data: bytes, rng: random.Random) -> list[bytes]:
    cuts: list[int] = []
    at = 0
    while at < len(data):
        at += rng.randint(1, 300)
        cuts.append(at)
    return split_at(data, cuts)


def fixture_content(raw: bytes) -> str:
    out = []
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                out.append(choice["delta"].get("content") or "")
    return "".join(out)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_llama_server_fixture_replayed_in_random_chunks(seed: int) -> None:
    raw = (FIXTURES / "llama-server-chat-stream.sse").read_bytes()
    pieces = random_pieces(raw, random.Random(seed))
    models = [{"id": "tiny.gguf", "owned_by": "llamacpp"}]
    with chat_server(streamed(200, SSE, pieces), models) as server:
        backend = OpenAIBackend(server.url, "tiny.gguf", env={})
        events = await run(backend)
    assert text_of(events) == fixture_content(raw)
    assert json.loads(text_of(events))  # constrained output parses
    assert backend.profile.name == "llamacpp"
    assert "llama.cpp" in backend.describe()
    usage = [e for e in events if isinstance(e, Usage)]
    assert usage == [
        Usage(
            prompt_tokens=16,
            cached_tokens=0,
            completion_tokens=139,
            server_timings={"prompt_ms": 1.547, "predicted_ms": 54.063},
        )
    ]
    assert events[-1] == Finished("stop")
    assert isinstance(events[-2], Usage)
    # llama.cpp compiles the schema outside the prompt cache: the pinned one is sent
    body = chats(server)[0]
    assert body["response_format"]["json_schema"]["schema"] == PINNED


@pytest.mark.parametrize("seed", [4, 5])
async def test_llama_cpp_python_fixture_replayed_in_random_chunks(seed: int) -> None:
    raw = (FIXTURES / "llama-cpp-python-chat-stream.sse").read_bytes()
    pieces = random_pieces(raw, random.Random(seed))
    with chat_server(streamed(200, SSE, pieces)) as server:
        events = await run(OpenAIBackend(server.url, "tiny-random-llama", env={}))
    assert text_of(events) == fixture_content(raw)
    assert not any(isinstance(e, Usage) for e in events)  # this server reports none
    assert events[-1] == Finished("stop")


async def test_multibyte_character_split_across_chunks() -> None:
    body = sse(delta("Ärger ✓ "), delta("🎯 fin"), delta(None, "stop"), "data: [DONE]")
    cuts = [body.index("Ä".encode()) + 1, body.index("✓".encode()) + 2]
    cuts.append(body.index("🎯".encode()) + 3)
    with chat_server(streamed(200, SSE, split_at(body, cuts))) as server:
        events = await run(OpenAIBackend(server.url, "m", env={}))
    assert text_of(events) == "Ärger ✓ 🎯 fin"


async def test_sse_line_split_mid_line_crlf_and_comment_pings() -> None:
    body = sse(
        ": keep-alive",
        delta('{"plans"'),
        ": ping",
        delta(":[]}"),
        delta(None, "stop"),
        "data: [DONE]",
        eol="\r\n",
    )
    mid = body.index(b"plans") + 2
    pieces = split_at(body, [mid, mid + 1, body.index(b"\r\n") + 1])  # also CR|LF split
    with chat_server(streamed(200, SSE, pieces)) as server:
        events = await run(OpenAIBackend(server.url, "m", env={}))
    assert text_of(events) == '{"plans":[]}'
    assert events[-1] == Finished("stop")


async def test_role_only_first_delta_and_openai_usage_chunk() -> None:
    role = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]}
    usage = {
        "choices": [],
        "usage": {
            "prompt_tokens": 900,
            "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 768},
        },
    }
    body = sse(role, delta("{}"), delta(None, "stop"), usage, "data: [DONE]")
    with chat_server(streamed(200, SSE, [body])) as server:
        events = await run(OpenAIBackend(server.url, "m", env={}))
    assert events == [
        TextDelta("{}"),
        Usage(prompt_tokens=900, cached_tokens=768, completion_tokens=40),
        Finished("stop"),
    ]
    assert chats(server)[0]["stream_options"] == {"include_usage": True}


async def test_finish_reason_length_is_truncation() -> None:
    body = sse(delta('{"plans":[{"ag'), delta(None, "length"), "data: [DONE]")
    with chat_server(streamed(200, SSE, [body])) as server:
        events = await run(OpenAIBackend(server.url, "m", env={}))
    assert events[-1] == Finished("length")


async def test_done_without_content_or_finish_is_cancelled() -> None:
    # llama-cpp-python cuts a running stream off when a new request arrives
    role = {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    with chat_server(streamed(200, SSE, [sse(role, "data: [DONE]")])) as server:
        events = await run(OpenAIBackend(server.url, "m", env={}))
    assert events == [Finished("cancelled")]


async def test_error_line_mid_stream() -> None:
    body = sse(delta('{"pla'), {"error": {"message": "CUDA out of memory", "code": 500}})
    with chat_server(streamed(200, SSE, [body])) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        events: list[StreamEvent] = []
        with pytest.raises(BackendStreamError, match="CUDA out of memory") as info:
            await collect(backend, REQ, events)
        await backend.aclose()
    assert events == [TextDelta('{"pla')]
    assert info.value.cause == "http_status" and info.value.transient


async def test_http_500_with_body_after_format_chain() -> None:
    body = '{"error":{"message":"model crashed","type":"server_error"}}'
    with (
        chat_server(json_reply(500, json.loads(body))) as server,
        pytest.raises(BackendHTTPStatus) as info,
    ):
        await run(OpenAIBackend(server.url, "m", env={}))
    err = info.value
    assert err.status == 500 and "model crashed" in err.body and err.transient
    assert "HTTP 500" in str(err)
    # a 500 may be a refused format (llama-cpp-python): each format tried once, no more
    assert formats(server) == ["json_schema", "json_object_schema", "json_object", None]


async def test_429_with_retry_after_is_not_a_format_problem() -> None:
    script = json_reply(429, {"error": "busy"}, headers=[("Retry-After", "7")])
    with chat_server(script) as server, pytest.raises(BackendHTTPStatus) as info:
        await run(OpenAIBackend(server.url, "m", env={}))
    assert info.value.status == 429
    assert info.value.retry_after == 7.0
    assert info.value.transient
    assert len(chats(server)) == 1


async def test_400_falls_back_to_json_object_with_schema_once_and_remembers() -> None:
    ok = streamed(200, SSE, [sse(delta("{}"), delta(None, "stop"), "data: [DONE]")])

    def chat(req: Request) -> Script:
        kind = req.json().get("response_format", {}).get("type")
        if kind == "json_schema":
            return json_reply(400, {"error": "response_format json_schema not supported"})
        return ok

    with chat_server(chat) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        first = await run(backend)
        second = await run(backend)
    assert text_of(first) == text_of(second) == "{}"
    assert backend.format_mode == "json_object_schema"
    assert formats(server) == ["json_schema", "json_object_schema", "json_object_schema"]
    assert chats(server)[1]["response_format"] == {"type": "json_object", "schema": SCHEMA}


async def test_500_to_json_schema_and_400_to_json_object_falls_back_to_no_format() -> None:
    ok = streamed(200, SSE, [sse(delta("{}"), delta(None, "stop"), "data: [DONE]")])

    def chat(req: Request) -> Script:
        kind = req.json().get("response_format", {}).get("type")
        if kind == "json_schema":
            return json_reply(500, {"error": {"message": "Internal Server Error"}})
        if kind == "json_object":
            return json_reply(400, {"error": "bad format"})
        return ok

    with chat_server(chat) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        await run(backend)
        await run(backend)
    assert backend.format_mode == "none"
    assert formats(server) == ["json_schema", "json_object_schema", "json_object", None, None]


async def test_remembered_format_does_not_fall_back_again() -> None:
    ok = streamed(200, SSE, [sse(delta("{}"), delta(None, "stop"), "data: [DONE]")])
    scripts = [ok, json_reply(500, {"error": "boom"})]
    calls: list[int] = []

    def chat(req: Request) -> Script:
        calls.append(1)
        return scripts[min(len(calls) - 1, 1)]

    with chat_server(chat) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        await run(backend)
        with pytest.raises(BackendHTTPStatus):
            await run(backend)
    assert len(chats(server)) == 2  # the second failure is not retried with other formats
    assert backend.format_mode == "json_schema"


async def test_connection_dropped_mid_stream() -> None:
    script = [*streamed(200, SSE, [sse(delta('{"plans":['))], end=False), Drop()]
    with chat_server(script) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        events: list[StreamEvent] = []
        with pytest.raises(BackendConnectError) as info:
            await collect(backend, REQ, events)
        await backend.aclose()
    assert events == [TextDelta('{"plans":[')]
    assert info.value.cause == "connect"


async def test_stream_that_ends_cleanly_without_done_is_a_drop() -> None:
    with (
        chat_server(streamed(200, SSE, [sse(delta('{"pl'))])) as server,
        pytest.raises(BackendConnectError, match=r"ended before \[DONE\]"),
    ):
        await run(OpenAIBackend(server.url, "m", env={}))


async def test_stall_trips_the_read_timeout() -> None:
    script = [*streamed(200, SSE, [sse(delta("{"))], end=False), Stall()]
    # The server stalls until the test ends; a second is only for what comes before.
    timeout = httpx.Timeout(connect=1.0, read=1.0, write=1.0, pool=1.0)
    with chat_server(script) as server:
        backend = OpenAIBackend(server.url, "m", env={}, timeout=timeout)
        events: list[StreamEvent] = []
        with pytest.raises(BackendTimeout) as info:
            await collect(backend, REQ, events)
        await backend.aclose()
    assert events == [TextDelta("{")]
    assert info.value.cause == "timeout"


async def test_response_too_large_is_cancelled() -> None:
    many = [delta("x" * 50) for _ in range(40)]
    script = [*streamed(200, SSE, [sse(*many)], end=False), Stall()]
    with chat_server(script) as server:
        backend = OpenAIBackend(server.url, "m", env={})
        events: list[StreamEvent] = []
        with pytest.raises(ResponseTooLarge) as info:
            await collect(backend, replace(REQ, max_response_chars=500), events)
        await backend.aclose()
    assert info.value.cause == "oversize"
    assert len(text_of(events)) <= 500


async def test_non_streaming_mode() -> None:
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"plans":[]}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5},
    }
    req = LLMRequest(system="s", prompt="p", agent_ids=(1,), schema=SCHEMA, stream=False)
    with chat_server(json_reply(200, answer)) as server:
        events = await run(OpenAIBackend(server.url, "m", env={}), req)
    assert events == [
        TextDelta('{"plans":[]}'),
        Usage(prompt_tokens=12, completion_tokens=5),
        Finished("stop"),
    ]
    body = chats(server)[0]
    assert body["stream"] is False and "stream_options" not in body


async def test_payload_fields() -> None:
    req = LLMRequest(
        system="S", prompt="P", agent_ids=(1,), schema=SCHEMA, pinned_schema=PINNED, seed=42
    )
    ok = streamed(200, SSE, [sse(delta(None, "stop"), "data: [DONE]")])
    with chat_server(ok) as server:  # owned_by "someone": generic profile
        backend = OpenAIBackend(server.url + "/v1/", "qwen", env={})
        await run(backend, req)
    body = chats(server)[0]
    assert body["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "P"},
    ]
    assert body["model"] == "qwen" and body["seed"] == 42 and body["max_tokens"] == 1024
    assert body["temperature"] == 0.2 and body["stream"] is True
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "plan", "schema": SCHEMA, "strict": True},
    }  # generic: the static schema (it may be part of a cached prefix)
    assert backend.profile.name == "generic"


def test_openai_host_profile_needs_no_detection() -> None:
    backend = OpenAIBackend("https://api.openai.com/v1", "gpt-4o-mini", env={})
    assert backend.profile.name == "openai"
    assert not backend.capabilities.schema_outside_prompt_cache
    assert backend.capabilities.cached_tokens
    body = backend.payload(REQ, "json_schema")
    assert body["max_completion_tokens"] == 1024 and "max_tokens" not in body
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert backend.describe() == (
        "OpenAI-compatible (OpenAI) at https://api.openai.com, model gpt-4o-mini"
    )


async def test_profile_override_and_vllm_detection() -> None:
    ok = streamed(200, SSE, [sse(delta(None, "stop"), "data: [DONE]")])
    with chat_server(ok, [{"id": "Qwen", "owned_by": "vllm"}]) as server:
        detected = OpenAIBackend(server.url, "Qwen", env={})
        await run(detected)
        forced = OpenAIBackend(server.url, "Qwen", env={}, profile="lmstudio")
        await run(forced)
    assert detected.profile.name == "vllm"
    assert forced.profile.name == "lmstudio"
    paths = [r.path for r in server.requests]
    assert paths.count("/v1/models") == 1  # the override asks nothing


async def test_api_key_sent_as_bearer_and_never_shown() -> None:
    env = {"OPENAI_API_KEY": SECRET}
    with chat_server(json_reply(401, {"error": {"message": "Incorrect API key"}})) as server:
        backend = OpenAIBackend(server.url, "m", env=env)
        with pytest.raises(BackendHTTPStatus) as info:
            await run(backend)
    headers = [r.headers.get("authorization") for r in server.requests]
    assert headers and all(h == f"Bearer {SECRET}" for h in headers)
    err = info.value
    shown = [backend.describe(), repr(backend), str(err), repr(err), err.body]
    cause = err.__cause__
    shown += [repr(cause), str(cause)] if cause else []
    assert all(SECRET not in text for text in shown)


async def test_list_models_and_connection_refused() -> None:
    with chat_server([], [{"id": "a", "owned_by": "x"}, {"id": "b", "owned_by": "x"}]) as server:
        backend = OpenAIBackend(server.url, "a", env={})
        assert await backend.list_models() == ["a", "b"]
        await backend.aclose()
    from tests.loopback import closed_port

    dead = OpenAIBackend(f"http://127.0.0.1:{closed_port()}", "m", env={})
    with pytest.raises(BackendConnectError, match="connection refused"):
        await run(dead)


def test_unknown_fields_at_any_depth_are_ignored() -> None:
    data = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp",
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "hi", "tool_calls": []},
                "logprobs": None,
                "finish_reason": None,
                "new_field": 1,
            }
        ],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 1,
            "total_tokens": 4,
            "completion_tokens_details": {"reasoning_tokens": 0},
            "prompt_tokens_details": {"cached_tokens": 2, "audio_tokens": 0},
        },
        "timings": {"cache_n": 2, "predicted_per_second": 50.0},
    }
    chunk = parse_completion(json.dumps(data))
    delta = chunk.choices[0].delta
    assert delta is not None and delta.content == "hi"
    assert chunk.usage is not None and chunk.usage.prompt_tokens_details is not None
    assert chunk.usage.prompt_tokens_details.cached_tokens == 2
    assert chunk.timings is not None and chunk.timings.cache_n == 2
