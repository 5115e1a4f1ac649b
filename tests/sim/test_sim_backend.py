"""The in-process sim backend: virtual-time pacing, stamps, emissions, faults."""

from __future__ import annotations

import anyio
import pytest

from planner.backends.base import Finished, LLMRequest, StreamEvent, TextDelta, Usage
from planner.clock import MonotonicClock, VirtualClock
from planner.errors import BackendConnectError, BackendHTTPStatus, BackendTimeout
from planner.schema import PlanBatch
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig, FaultKind, Preset
from tests.sim_prompts import request

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def collect(backend: SimBackend, req: LLMRequest) -> list[StreamEvent]:
    return [event async for event in backend.stream(req)]


def deltas(events: list[StreamEvent]) -> list[TextDelta]:
    return [e for e in events if isinstance(e, TextDelta)]


def test_profile_and_description() -> None:
    backend = SimBackend.create("mac", seed=1, clock=VirtualClock())
    assert (backend.name, backend.model) == ("sim", "sim-mac")
    assert backend.describe() == "built-in simulated LLM, mac preset"
    caps = backend.capabilities
    assert caps.json_schema and caps.schema_outside_prompt_cache and caps.seed
    assert caps.cached_tokens


async def test_virtual_stream_stamps_every_token_at_its_scheduled_instant() -> None:
    clock = VirtualClock(start=50.0)
    backend = SimBackend.create("gpu", seed=4, clock=clock)
    req = request(3)
    events = await collect(backend, req)
    assert clock.now() == 50.0 and clock.sleeps == []  # virtual mode never sleeps

    ds = deltas(events)
    prompt_tokens = -(-len(f"<|system|>\n{req.system}\n<|user|>\n{req.prompt}\n") // 4)
    first = 50.0 + 0.030 + prompt_tokens / 3500
    assert ds[0].emitted_at == pytest.approx(first)  # ttft = overhead + prefill
    for i, d in enumerate(ds):
        assert d.emitted_at == pytest.approx(first + i / 110)
        assert 1 <= len(d.text) <= 4
    batch = PlanBatch.model_validate_json("".join(d.text for d in ds))
    assert [p.agent_id for p in batch.plans] == [1, 2, 3]

    usage, finished = events[-2], events[-1]
    assert isinstance(usage, Usage) and isinstance(finished, Finished)
    assert finished.reason == "stop"
    assert usage.prompt_tokens == prompt_tokens and usage.completion_tokens == len(ds)
    assert set(usage.server_timings) >= {"prefill_ms", "decode_ms", "queue_ms"}


async def test_emissions_match_the_delta_carrying_each_closing_brace() -> None:
    backend = SimBackend.create("gpu", seed=4, clock=VirtualClock())
    ds = deltas(await collect(backend, request(3)))
    rid = backend.last_request_id
    assert rid is not None
    emitted = backend.sim.emissions_copy()[rid]
    assert [agent for agent, _ in emitted] == [1, 2, 3]
    text = ""
    for d in ds:
        text += d.text
        for agent, at in emitted:
            if at == d.emitted_at:
                # This delta closes agent's plan object: the text so far holds it whole.
                assert "}" in d.text and f'"agent_id":{agent}' in text


async def test_queueing_and_prefix_cache_across_requests() -> None:
    clock = VirtualClock()
    backend = SimBackend.create("gpu", clock=clock, num_parallel=1)
    first = deltas(await collect(backend, request(2)))
    second_events = await collect(backend, request(3))
    second = deltas(second_events)
    assert second[0].emitted_at is not None and first[-1].emitted_at is not None
    assert second[0].emitted_at > first[-1].emitted_at  # queued behind the first
    usage = next(e for e in second_events if isinstance(e, Usage))
    assert usage.cached_tokens > 0
    assert usage.server_timings["queue_ms"] == pytest.approx(first[-1].emitted_at * 1000)


async def test_non_stream_returns_the_whole_text_at_the_end() -> None:
    backend = SimBackend.create("gpu", seed=4, clock=VirtualClock())
    streamed = deltas(await collect(backend, request(3)))
    whole_backend = SimBackend.create("gpu", seed=4, clock=VirtualClock())
    events = await collect(whole_backend, request(3, stream=False))
    ds = deltas(events)
    assert len(ds) == 1
    assert ds[0].text == "".join(d.text for d in streamed)
    assert ds[0].emitted_at == streamed[-1].emitted_at
    assert [a for a, _ in whole_backend.sim.emissions_copy()[1]] == [1, 2, 3]


async def test_same_seed_same_stream() -> None:
    async def run(seed: int) -> list[tuple[str, float | None]]:
        backend = SimBackend.create("cpu", seed=seed, clock=VirtualClock())
        return [(d.text, d.emitted_at) for d in deltas(await collect(backend, request(6)))]

    assert await run(11) == await run(11)


def _faulty(kind: FaultKind) -> SimBackend:
    return SimBackend.create("gpu", seed=5, clock=VirtualClock(), faults=FaultConfig.only(kind))


async def test_http_faults_raise_backend_http_status() -> None:
    with pytest.raises(BackendHTTPStatus) as info:
        await collect(_faulty("http_500"), request())
    assert info.value.status == 500 and info.value.transient
    with pytest.raises(BackendHTTPStatus) as info:
        await collect(_faulty("http_429"), request())
    assert info.value.status == 429 and info.value.retry_after == 1.0
    assert info.value.at == pytest.approx(0.030)


async def test_virtual_stall_raises_timeout_at_the_read_deadline() -> None:
    backend = SimBackend.create(
        "gpu", clock=VirtualClock(), faults=FaultConfig.only("stall"), read_timeout=2.5
    )
    got: list[TextDelta] = []
    with pytest.raises(BackendTimeout) as info:
        async for event in backend.stream(request()):
            assert isinstance(event, TextDelta)
            got.append(event)
    assert got, "some text leaves before the stall"
    last = got[-1].emitted_at
    assert last is not None and info.value.at == pytest.approx(last + 2.5)


async def test_disconnect_raises_connect_error_after_some_text() -> None:
    got: list[TextDelta] = []
    with pytest.raises(BackendConnectError) as info:
        async for event in _faulty("disconnect").stream(request()):
            assert isinstance(event, TextDelta)
            got.append(event)
    assert got and info.value.at is not None
    assert info.value.at > (got[-1].emitted_at or 0)


async def test_text_faults_arrive_as_text() -> None:
    events = await collect(_faulty("truncation"), request())
    assert events[-1] == Finished("length")
    text = "".join(d.text for d in deltas(events))
    assert text.startswith('{"plans":[') and not text.endswith("]}")

    events = await collect(_faulty("prose_fences"), request())
    assert "```json" in "".join(d.text for d in deltas(events))


async def test_wall_stall_waits_until_the_caller_gives_up() -> None:
    backend = SimBackend.create("instant", clock=MonotonicClock(), faults=FaultConfig.only("stall"))
    got: list[StreamEvent] = []
    with anyio.move_on_after(0.05) as scope:
        async for event in backend.stream(request()):
            got.append(event)
    assert scope.cancelled_caught
    assert got and all(isinstance(e, TextDelta) for e in got)


class _OversleepingClock(MonotonicClock):
    """A real clock whose sleeps overshoot, like a busy scheduler: summing sleeps drifts."""

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            seconds += 0.001
        await super().sleep(seconds)


async def test_real_time_pacing_does_not_drift() -> None:
    clock = _OversleepingClock()
    fast = Preset("fast", prefill_tps=float("inf"), decode_tps=1000.0, overhead_s=0.0)
    backend = SimBackend.create(fast, seed=1, clock=clock)
    arrivals: list[tuple[float, float]] = []
    async for event in backend.stream(request(6)):
        if isinstance(event, TextDelta):
            assert event.emitted_at is not None
            arrivals.append((clock.now(), event.emitted_at))
    assert len(arrivals) >= 200
    # Never early; and the last token is near its absolute deadline although every one
    # of ~200 sleeps overshot by a millisecond (summed sleeps would be ~0.2 s late).
    assert all(real >= deadline for real, deadline in arrivals)
    real, deadline = arrivals[-1]
    assert real - deadline < 0.1
