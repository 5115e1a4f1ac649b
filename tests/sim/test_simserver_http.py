"""The sim server over real loopback sockets, driven by an unmodified httpx client."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import planner.backends.ollama as ollama_client
import planner.backends.openai as openai_client
import planner.sim.server as simserver
from planner.backends import wire_ollama, wire_openai
from planner.backends.base import LLMRequest
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import FormatMode, OpenAIBackend
from planner.backends.profiles import FORMAT_CHAIN, PROFILES
from planner.backends.wire_base import Lenient
from planner.clock import VirtualClock
from planner.schema import PlanBatch
from planner.sim.model import FaultConfig, FaultKind
from planner.sim.server import SimServer
from tests.planning_helpers import HANG_S, returns
from tests.sim_prompts import messages

MODEL = "sim-instant"


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(preset="instant", seed=3) as srv:
        yield srv


@pytest.fixture
def client(server: SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=5.0) as c:
        yield c


def chat_messages(n: int = 3) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in messages(n)]


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.iter_lines() if line.strip()]


def sse_data(response: httpx.Response) -> list[str]:
    """Data payloads of an SSE stream, parsed by the spec (events end at a blank line)."""
    events: list[str] = []
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                events.append("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return events


# --- well-formed streams ----------------------------------------------------------


def test_listing_routes(client: httpx.Client) -> None:
    assert client.get("/").text == "Ollama is running"
    assert client.get("/api/version").json()["version"]
    tags = client.get("/api/tags").json()
    assert [m["name"] for m in tags["models"]] == [f"{MODEL}:latest"]
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == MODEL


def test_ollama_chat_stream_is_ndjson_with_a_final_stats_line(client: httpx.Client) -> None:
    body = {"model": f"{MODEL}:latest", "messages": chat_messages(3), "stream": True}
    with client.stream("POST", "/api/chat", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/x-ndjson"
        assert r.headers["transfer-encoding"] == "chunked"
        lines = ndjson(r)
    *parts, last = lines
    assert parts and all(p["done"] is False and p["message"]["role"] == "assistant" for p in parts)
    text = "".join(p["message"]["content"] for p in parts)
    assert [p.agent_id for p in PlanBatch.model_validate_json(text).plans] == [1, 2, 3]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["message"]["content"] == ""
    assert last["eval_count"] == len(parts) and last["prompt_eval_count"] > 0
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(last[key], int)


def test_ollama_chat_without_stream_answers_one_object(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": chat_messages(2), "stream": False}
    r = client.post("/api/chat", json=body)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    obj = r.json()
    assert obj["done"] is True and obj["done_reason"] == "stop"
    assert len(PlanBatch.model_validate_json(obj["message"]["content"]).plans) == 2


def test_ollama_generate_streams_response_fields(client: httpx.Client) -> None:
    (_, system), (_, prompt) = messages(2)
    body = {"model": MODEL, "system": system, "prompt": prompt, "options": {"seed": 1}}
    with client.stream("POST", "/api/generate", json=body) as r:
        lines = ndjson(r)
    text = "".join(line["response"] for line in lines[:-1])
    assert len(PlanBatch.model_validate_json(text).plans) == 2
    assert lines[-1]["done"] is True
    load = client.post("/api/generate", json={"model": MODEL}).json()
    assert load["done_reason"] == "load"


def test_ollama_num_predict_truncates_with_length(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": chat_messages(2), "options": {"num_predict": 4}}
    with client.stream("POST", "/api/chat", json=body) as r:
        lines = ndjson(r)
    assert lines[-1]["done_reason"] == "length" and lines[-1]["eval_count"] == 4


def test_openai_stream_is_sse_with_role_finish_usage_and_done(client: httpx.Client) -> None:
    body = {
        "model": MODEL,
        "messages": chat_messages(3),
        "stream": True,
        "stream_options": {"include_usage": True},
        "response_format": {"type": "json_schema", "json_schema": {"name": "plan", "schema": {}}},
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        events = sse_data(r)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "stop" and finish["delta"] == {}
    content = chunks[1:-2]
    assert all(c["choices"][0]["finish_reason"] is None for c in content)
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert len(PlanBatch.model_validate_json(text).plans) == 3
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == len(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "cached_tokens" in usage["prompt_tokens_details"]


def test_openai_stream_without_include_usage_has_no_usage_chunk(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": chat_messages(1), "stream": True}
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        events = sse_data(r)
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["choices"] for c in chunks) and "usage" not in chunks[-1]


def test_openai_non_stream_reports_cached_tokens(client: httpx.Client) -> None:
    body = {"model": MODEL, "messages": chat_messages(2), "max_tokens": 1000}
    first = client.post("/v1/chat/completions", json=body).json()
    second = client.post("/v1/chat/completions", json=body).json()
    assert first["object"] == "chat.completion"
    choice = second["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    assert len(PlanBatch.model_validate_json(choice["message"]["content"]).plans) == 2
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached == second["usage"]["prompt_tokens"] - 1


def test_openai_content_parts_are_read(client: httpx.Client) -> None:
    (_, system), (_, prompt) = messages(2)
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": [{"type": "text", "text": prompt}]},
        ],
    }
    content = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert len(PlanBatch.model_validate_json(content["content"]).plans) == 2


def test_emissions_are_recorded_over_http(server: SimServer, client: httpx.Client) -> None:
    before = set(server.sim.emissions_copy())
    body = {"model": MODEL, "messages": chat_messages(3), "stream": True}
    with client.stream("POST", "/api/chat", json=body) as r:
        ndjson(r)
    new = {k: v for k, v in server.sim.emissions_copy().items() if k not in before}
    assert [[a for a, _ in v] for v in new.values()] == [[1, 2, 3]]


# --- one set of wire models for both ends -----------------------------------------

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"type": "object", "properties": {"plans": {"type": "array"}}}
PINNED = {**SCHEMA, "title": "pinned"}


def wire_request(stream: bool) -> LLMRequest:
    (_, system), (_, prompt) = messages(2)
    return LLMRequest(
        system, prompt, (1, 2), schema=SCHEMA, pinned_schema=PINNED, stream=stream, seed=5
    )


def test_the_server_and_the_clients_share_the_wire_model_classes() -> None:
    assert simserver.OllamaChatRequest is wire_ollama.OllamaChatRequest
    assert simserver.OllamaGenerateRequest is wire_ollama.OllamaGenerateRequest
    assert simserver.OllamaOptions is wire_ollama.OllamaOptions
    assert simserver.OpenAIChatRequest is wire_openai.OpenAIChatRequest
    assert ollama_client.OllamaChatRequest is wire_ollama.OllamaChatRequest
    assert ollama_client.OllamaChunk is wire_ollama.OllamaChunk
    assert openai_client.OpenAIChatRequest is wire_openai.OpenAIChatRequest
    assert openai_client.OpenAICompletion is wire_openai.OpenAICompletion


def test_every_wire_model_has_the_one_lenient_base() -> None:
    for module in (wire_ollama, wire_openai):
        models = [
            v
            for v in vars(module).values()
            if isinstance(v, type) and v.__module__ == module.__name__
        ]
        assert models and all(issubclass(m, Lenient) for m in models), module.__name__
    # ...and no other module of the backends or the sim declares a pydantic model of its own
    declared = []
    for path in sorted(
        [*(ROOT / "planner" / "backends").glob("*.py"), *(ROOT / "planner" / "sim").glob("*.py")]
    ):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & {"BaseModel", "Lenient"}:
                    declared.append((path.name, node.name))
    assert {name for name, _ in declared} <= {"wire_base.py", "wire_ollama.py", "wire_openai.py"}
    assert [cls for name, cls in declared if name == "wire_base.py"] == ["Lenient"]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_the_server_reads_every_field_of_the_ollama_clients_request(
    client: httpx.Client, stream: bool
) -> None:
    body = OllamaBackend("http://127.0.0.1:1", MODEL).payload(wire_request(stream))
    parsed = wire_ollama.OllamaChatRequest.model_validate_json(json.dumps(body))
    assert parsed.model_dump(mode="json", exclude_none=True) == body, "nothing sent is ignored"
    with client.stream("POST", "/api/chat", json=body) as r:
        assert r.status_code == 200
        lines = ndjson(r)
    chunks = [wire_ollama.OllamaChunk.model_validate(line) for line in lines]
    text = "".join(c.message.content or "" for c in chunks if c.message is not None)
    assert len(PlanBatch.model_validate_json(text).plans) == 2
    read = set(wire_ollama.OllamaChunk.model_fields) - {"error"}
    assert chunks[-1].done and read <= chunks[-1].model_fields_set, "the last line fills them all"


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("mode", FORMAT_CHAIN)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_the_server_reads_every_field_of_the_openai_clients_request(
    client: httpx.Client, profile: str, mode: FormatMode, stream: bool
) -> None:
    backend = OpenAIBackend("http://127.0.0.1:1", MODEL, profile=profile, env={})
    body = backend.payload(wire_request(stream), mode)
    parsed = wire_openai.OpenAIChatRequest.model_validate_json(json.dumps(body))
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped == body, "nothing sent is ignored"
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        payloads = sse_data(r) if stream else [r.read().decode()]
    if stream:
        assert payloads[-1] == "[DONE]"
        payloads = payloads[:-1]
    chunks = [wire_openai.OpenAICompletion.model_validate_json(p) for p in payloads]
    choices = [c for chunk in chunks for c in chunk.choices]
    parts = [c.delta if stream else c.message for c in choices]
    text = "".join(p.content or "" for p in parts if p is not None)
    assert len(PlanBatch.model_validate_json(text).plans) == 2
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None
    assert choices[-1].finish_reason == "stop"


def test_the_server_lists_and_refuses_in_the_clients_models(client: httpx.Client) -> None:
    tags = wire_ollama.OllamaTags.model_validate(client.get("/api/tags").json())
    assert [m.name for m in tags.models] == [f"{MODEL}:latest"]
    models = wire_openai.OpenAIModelList.model_validate(client.get("/v1/models").json())
    assert [(m.id, m.owned_by) for m in models.data] == [(MODEL, "sim")]
    r = client.post("/v1/chat/completions", json={"model": "gpt-9", "messages": chat_messages(1)})
    refused = wire_openai.OpenAICompletion.model_validate_json(r.text)
    assert isinstance(refused.error, wire_openai.OpenAIErrorBody)
    assert refused.error.code == "model_not_found"


# --- errors a real server would give ------------------------------------------------


def test_ollama_error_bodies(client: httpx.Client) -> None:
    r = client.post("/api/chat", content=b"{not json")
    assert r.status_code == 400 and "invalid JSON" in r.json()["error"]
    r = client.post("/api/chat", json={"messages": []})
    assert r.status_code == 400 and r.json() == {"error": "model is required"}
    r = client.post("/api/chat", json={"model": "llama9", "messages": chat_messages(1)})
    assert r.status_code == 404 and "not found" in r.json()["error"]
    r = client.post("/api/chat", json={"model": MODEL, "messages": [{"content": "no role"}]})
    assert r.status_code == 400 and "role" in r.json()["error"]
    r = client.get("/api/chat")
    assert r.status_code == 405
    r = client.get("/api/nothing")
    assert r.status_code == 404 and r.text == "404 page not found"


def test_openai_error_bodies(client: httpx.Client) -> None:
    def error(r: httpx.Response, status: int) -> dict[str, Any]:
        assert r.status_code == status
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"}
        return dict(err)

    err = error(client.post("/v1/chat/completions", content=b"[1,"), 400)
    assert err["type"] == "invalid_request_error"
    err = error(client.post("/v1/chat/completions", json={"model": MODEL, "messages": []}), 400)
    assert "messages" in err["message"]
    body = {"model": MODEL, "messages": chat_messages(1), "stream_options": {}}
    err = error(client.post("/v1/chat/completions", json=body), 400)
    assert err["param"] == "stream_options"
    body = {"model": MODEL, "messages": chat_messages(1), "response_format": {"type": "yaml"}}
    error(client.post("/v1/chat/completions", json=body), 400)
    body = {"model": "gpt-9", "messages": chat_messages(1)}
    assert error(client.post("/v1/chat/completions", json=body), 404)["code"] == "model_not_found"
    error(client.get("/v1/nothing"), 404)
    error(client.get("/v1/chat/completions"), 405)


# --- faults over HTTP ---------------------------------------------------------------


@pytest.fixture
def faulty() -> Iterator[Any]:
    servers: list[SimServer] = []

    def start(kind: FaultKind, preset: str = "instant") -> SimServer:
        srv = SimServer(preset=preset, seed=1, faults=FaultConfig.only(kind)).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def test_http_500_and_429_over_both_protocols(faulty: Any) -> None:
    srv = faulty("http_500")
    r = httpx.post(f"{srv.url}/api/chat", json={"model": MODEL, "messages": chat_messages()})
    assert r.status_code == 500 and "error" in r.json()
    body = {"model": MODEL, "messages": chat_messages()}
    r = httpx.post(f"{srv.url}/v1/chat/completions", json=body)
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"

    srv = faulty("http_429")
    r = httpx.post(f"{srv.url}/v1/chat/completions", json={**body, "stream": True})
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    r = httpx.post(f"{srv.url}/api/chat", json=body)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"


def test_disconnect_drops_the_connection_mid_stream(faulty: Any) -> None:
    srv = faulty("disconnect")
    body = {"model": MODEL, "messages": chat_messages(3), "stream": True}
    got: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("POST", f"{srv.url}/v1/chat/completions", json=body) as r,
    ):
        for line in r.iter_lines():
            got.append(line)
    assert any('"content"' in line for line in got)


def test_stall_trips_the_client_read_timeout(faulty: Any) -> None:
    srv = faulty("stall")
    body = {"model": MODEL, "messages": chat_messages(3)}
    # The stall lasts until the client leaves; a second is only for the lines before it.
    timeout = httpx.Timeout(5.0, read=1.0)
    got: list[dict[str, Any]] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream("POST", f"{srv.url}/api/chat", json=body, timeout=timeout) as r,
    ):
        for line in r.iter_lines():
            got.append(json.loads(line))
    assert got and not any(line["done"] for line in got)


@pytest.mark.parametrize(
    ("kind", "check"),
    [
        ("malformed_json", lambda text, reason: "=" in text),
        ("truncation", lambda text, reason: reason == "length"),
        ("prose_fences", lambda text, reason: text.startswith("Sure!") and "```json" in text),
    ],
)
def test_text_faults_arrive_in_the_content(faulty: Any, kind: FaultKind, check: Any) -> None:
    srv = faulty(kind)
    body = {"model": MODEL, "messages": chat_messages(2), "stream": False}
    obj = httpx.post(f"{srv.url}/api/chat", json=body).json()
    assert check(obj["message"]["content"], obj["done_reason"])


def test_missing_agents_and_wrong_ids_change_the_plans(faulty: Any) -> None:
    body = {"model": MODEL, "messages": chat_messages(3)}
    srv = faulty("missing_agents")
    text = httpx.post(f"{srv.url}/v1/chat/completions", json=body).json()
    plans = PlanBatch.model_validate_json(text["choices"][0]["message"]["content"]).plans
    assert len(plans) == 2
    srv = faulty("wrong_ids")
    text = httpx.post(f"{srv.url}/v1/chat/completions", json=body).json()
    plans = PlanBatch.model_validate_json(text["choices"][0]["message"]["content"]).plans
    assert not {p.agent_id for p in plans} <= {1, 2, 3}


def test_stop_returns_promptly_with_a_stalled_stream(faulty: Any) -> None:
    srv = faulty("stall")
    started = threading.Event()
    outcome: list[BaseException] = []

    def hang() -> None:
        body = {"model": MODEL, "messages": chat_messages(3)}
        try:
            with httpx.stream("POST", f"{srv.url}/api/chat", json=body, timeout=600) as r:
                for _ in r.iter_lines():
                    started.set()
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=hang, daemon=True)
    thread.start()
    assert started.wait(HANG_S)
    # The stall holds until the client gives up (600 s): stop returning is the evidence.
    returns(srv.stop, "SimServer.stop()")
    thread.join(HANG_S)
    assert not thread.is_alive() and isinstance(outcome[0], httpx.RemoteProtocolError)


# --- pacing and determinism over the wire -------------------------------------------


def test_same_seed_same_content_over_http() -> None:
    def content(seed: int) -> list[str]:
        out = []
        with SimServer(preset="instant", seed=seed, faults=FaultConfig.uniform(0.3)) as srv:
            for n in (1, 4, 6):
                body = {"model": MODEL, "messages": chat_messages(n), "stream": False}
                r = httpx.post(f"{srv.url}/api/chat", json=body)
                out.append(f"{r.status_code} {r.text if r.status_code != 200 else ''}")
                if r.status_code == 200:
                    out.append(r.json()["message"]["content"])
        return out

    assert content(21) == content(21)


def test_gpu_preset_paces_the_first_token_over_http() -> None:
    clock = VirtualClock()  # the server waits on it: every wait is recorded, none is real
    with SimServer(preset="gpu", clock=clock) as srv:
        body = {"model": "sim-gpu", "messages": chat_messages(1), "stream": True}
        with httpx.stream("POST", f"{srv.url}/api/chat", json=body) as r:
            lines = [line for line in r.iter_lines() if line]
    final = json.loads(lines[-1])
    # Overhead + prefill before the first token, and the decode of all tokens at 110 t/s
    # before the end.
    assert clock.sleeps[0] >= 0.030
    assert clock.now() >= 0.030 + (final["eval_count"] - 1) / 110


# --- the command line ---------------------------------------------------------------


@pytest.mark.usefixtures("interruptible_children")
def test_python_dash_m_simserver_serves_and_exits_on_ctrl_c() -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner.sim.server", "--port", "0", "--preset", "instant"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        url = banner.split("listening on ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        body = {"model": MODEL, "messages": chat_messages(2), "stream": True}
        with httpx.stream("POST", f"{url}/api/chat", json=body, timeout=5) as r:
            lines = [json.loads(line) for line in r.iter_lines() if line]
        assert lines[-1]["done"] is True
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=5) as r:
            assert r.headers["content-type"] == "text/event-stream"
            assert sse_data(r)[-1] == "[DONE]"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
