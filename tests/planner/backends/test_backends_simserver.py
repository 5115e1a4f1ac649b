"""Both real clients end to end against `planner.sim.server` over loopback sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from planner.backends.base import Backend, Finished, LLMRequest, StreamEvent, TextDelta, Usage
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.backends.select import choose_backend
from planner.errors import BackendConnectError, BackendHTTPStatus
from planner.schema import PlanBatch
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from planner.sim.server import SimServer
from tests.sim_prompts import request

SCHEMA = PlanBatch.model_json_schema()


def sim(preset: str, seed: int) -> Callable[[], Backend]:
    return lambda: SimBackend.create(preset, seed)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server() -> Iterator[SimServer]:
    with SimServer(preset="instant", seed=3) as srv:
        yield srv


async def run(backend: Backend, req: LLMRequest) -> list[StreamEvent]:
    try:
        return [event async for event in backend.stream(req)]
    finally:
        await backend.aclose()


def check_plans(events: list[StreamEvent], req: LLMRequest) -> None:
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    batch = PlanBatch.model_validate_json(text)
    assert sorted(p.agent_id for p in batch.plans) == sorted(req.agent_ids)
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1 and usage[0].prompt_tokens > 0 and usage[0].completion_tokens > 0
    assert events[-1] == Finished("stop")


@pytest.mark.parametrize("stream", [True, False])
async def test_ollama_client_against_simserver(server: SimServer, stream: bool) -> None:
    req = replace(request(3, stream=stream, seed=5), schema=SCHEMA)
    events = await run(OllamaBackend(server.url, server.sim.model_name), req)
    check_plans(events, req)
    if stream:
        assert sum(isinstance(e, TextDelta) for e in events) > 3  # it really streamed


@pytest.mark.parametrize("stream", [True, False])
async def test_openai_client_against_simserver(server: SimServer, stream: bool) -> None:
    req = replace(request(4, stream=stream, seed=5), schema=SCHEMA)
    backend = OpenAIBackend(server.url, server.sim.model_name, env={})
    events = await run(backend, req)
    check_plans(events, req)
    assert backend.format_mode == "json_schema"


async def test_auto_finds_the_simserver_as_ollama(server: SimServer) -> None:
    env = {"OLLAMA_HOST": server.url}
    backend, reason = await choose_backend(
        "auto", None, None, env, make_sim=lambda: SimBackend.create("gpu", 1)
    )
    assert isinstance(backend, OllamaBackend)
    assert reason == f"Ollama at {server.url}, model {server.sim.model_name}:latest (found by auto)"
    events = await run(backend, request(2))
    check_plans(events, request(2))


async def test_sim_faults_arrive_as_planner_errors() -> None:
    with (
        SimServer(preset="instant", seed=1, faults=FaultConfig.only("http_429")) as srv,
        pytest.raises(BackendHTTPStatus) as info,
    ):
        await run(OpenAIBackend(srv.url, srv.sim.model_name, env={}), request(2))
    assert info.value.status == 429 and info.value.retry_after == 1.0
    with (
        SimServer(preset="instant", seed=1, faults=FaultConfig.only("disconnect")) as srv,
        pytest.raises(BackendConnectError),
    ):
        await run(OllamaBackend(srv.url, srv.sim.model_name), request(3))
