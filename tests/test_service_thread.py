"""The planner thread: rounds over real loopback HTTP, supersession, and a prompt exit.

These tests wait for events from a real thread (bounded polling), but never sleep to
make time pass and assert nothing about speed except the one-second shutdown bound the
design promises.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from planner.backends.openai import OpenAIBackend
from planner.events import FirstToken, PlanDelivered, PlanEvent, RoundCancelled, RoundDone
from planner.service import PlannerService
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from planner.sim.server import SimServer
from tests.planning_helpers import planning_round

WAIT_S = 10.0


def wait_for(
    service: PlannerService, seen: list[PlanEvent], done: Callable[[list[PlanEvent]], bool]
) -> None:
    limit = time.monotonic() + WAIT_S
    while not done(seen):
        assert time.monotonic() < limit, f"timed out; events so far: {seen}"
        seen.extend(service.drain())
        time.sleep(0.002)


def planner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "squadmind-planner" and t.is_alive()]


def test_a_round_over_real_http_delivers_every_agent() -> None:
    planning = planning_round()
    with SimServer(preset="instant", seed=2) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        with PlannerService(backend, PlannerSettings(mode="batched"), seed=2) as service:
            seen: list[PlanEvent] = []
            service.submit(planning)
            wait_for(service, seen, lambda s: any(isinstance(e, RoundDone) for e in s))
    plans = [e for e in seen if isinstance(e, PlanDelivered)]
    assert sorted(e.outcome.agent_id for e in plans) == sorted(s.me.id for s in planning.snapshots)
    assert all(e.outcome.tier.value == "simplified_llm" for e in plans)
    assert not planner_threads()


def test_close_during_a_stalled_stream_joins_within_a_second() -> None:
    with SimServer(preset="gpu", seed=3, faults=FaultConfig.only("stall")) as server:
        backend = OpenAIBackend(server.url, "sim-gpu", profile="vllm")
        service = PlannerService(backend, PlannerSettings(mode="batched", budget_ms=60_000), seed=3)
        seen: list[PlanEvent] = []
        service.submit(planning_round())
        wait_for(service, seen, lambda s: any(isinstance(e, FirstToken) for e in s))
        started = time.monotonic()
        service.close()
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"close took {elapsed:.3f}s"
    assert not planner_threads()


def test_a_new_round_cancels_the_squads_unfinished_one() -> None:
    sim = SimBackend.create("gpu", seed=4, faults=FaultConfig.only("stall"))
    with PlannerService(sim, PlannerSettings(mode="batched", budget_ms=60_000), seed=4) as service:
        seen: list[PlanEvent] = []
        service.submit(planning_round(1))
        wait_for(service, seen, lambda s: any(isinstance(e, FirstToken) for e in s))
        sim.sim.faults = FaultConfig.none()
        service.set_settings(PlannerSettings(budget_ms=60_000, mode="parallel"))
        service.submit(planning_round(2))
        wait_for(
            service,
            seen,
            lambda s: any(isinstance(e, RoundDone) and e.round_id == 2 for e in s),
        )
    assert any(isinstance(e, RoundCancelled) and e.round_id == 1 for e in seen)
    assert not any(isinstance(e, RoundDone) and e.round_id == 1 for e in seen)
    second = [e for e in seen if isinstance(e, PlanDelivered) and e.round_id == 2]
    assert len(second) == len(planning_round(2).snapshots)


def test_a_server_stalled_past_the_deadline_opens_the_breaker() -> None:
    # Default request timeout (10 s), a short round: the request is cut at the deadline,
    # and a server with nothing to show by then counts as failing.
    sim = SimBackend.create("gpu", seed=6, faults=FaultConfig.only("stall"))
    env = {"LLM_BREAKER_THRESHOLD": "2", "LLM_RETRY_MAX": "1"}
    settings = PlannerSettings(mode="batched", budget_ms=100)
    with PlannerService(sim, settings, seed=6, env=env) as service:
        seen: list[PlanEvent] = []
        for round_id in (1, 2, 3):
            service.submit(planning_round(round_id))
            wait_for(
                service,
                seen,
                lambda s, r=round_id: any(isinstance(e, RoundDone) and e.round_id == r for e in s),
            )
        assert service.breaker_state() == "open"
    causes = {
        e.round_id: {
            p.outcome.cause
            for p in seen
            if isinstance(p, PlanDelivered) and p.round_id == e.round_id
        }
        for e in seen
        if isinstance(e, RoundDone)
    }
    assert causes[1] == {"deadline"} and causes[2] == {"deadline"}
    assert causes[3] == {"circuit_open"}
