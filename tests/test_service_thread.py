"""The planner thread: rounds over real loopback HTTP, supersession, and a prompt exit.

These tests wait for events from a real thread (bounded polling), but never sleep to
make time pass and assert nothing about speed: "close does not wait for a stalled
stream" is shown by close returning while the stream would stall for ten minutes.
"""

from __future__ import annotations

import threading

from planner.backends.openai import OpenAIBackend
from planner.events import FirstToken, PlanDelivered, PlanEvent, RoundCancelled, RoundDone
from planner.service import PlannerService
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from planner.sim.server import SimServer
from tests.planning_helpers import STALL, ScriptedBackend, planning_round, returns, wait_for

LONG = {"LLM_TIMEOUT_MS": "600000"}
"""Ten minutes: a request that is not cancelled outlives any hang bound."""


def planner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "squadmind-planner" and t.is_alive()]


def test_a_round_over_real_http_delivers_every_agent() -> None:
    planning = planning_round()
    with SimServer(preset="instant", seed=2) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        with PlannerService(backend, PlannerSettings(), seed=2) as service:
            seen: list[PlanEvent] = []
            service.submit(planning)
            wait_for(service, lambda s: any(isinstance(e, RoundDone) for e in s), seen)
    plans = [e for e in seen if isinstance(e, PlanDelivered)]
    assert sorted(e.outcome.agent_id for e in plans) == sorted(s.me.id for s in planning.snapshots)
    assert all(e.outcome.tier.value == "simplified_llm" for e in plans)
    assert not planner_threads()


def test_close_during_a_stalled_stream_does_not_wait_for_it() -> None:
    # The server holds the stalled stream open until the client leaves, and neither the
    # request's timeout nor the round's budget ends it for ten minutes: close returning
    # at all means it cancelled the stream instead of waiting for it.
    with SimServer(preset="gpu", seed=3, faults=FaultConfig.only("stall")) as server:
        backend = OpenAIBackend(server.url, "sim-gpu", profile="vllm")
        service = PlannerService(backend, PlannerSettings(budget_ms=600_000), seed=3, env=LONG)
        service.submit(planning_round())
        seen = wait_for(service, lambda s: any(isinstance(e, FirstToken) for e in s))
        returns(service.close, "PlannerService.close()")
        seen += service.drain()
    assert not any(isinstance(e, RoundDone) for e in seen), "the stalled round never ended"
    assert not planner_threads()


def test_a_new_round_cancels_the_squads_unfinished_one() -> None:
    sim = SimBackend.create("gpu", seed=4, faults=FaultConfig.only("stall"))
    with PlannerService(sim, PlannerSettings(budget_ms=60_000), seed=4) as service:
        seen: list[PlanEvent] = []
        service.submit(planning_round(1))
        wait_for(service, lambda s: any(isinstance(e, FirstToken) for e in s), seen)
        sim.sim.faults = FaultConfig.none()
        service.set_settings(PlannerSettings(budget_ms=60_000, mode="parallel"))
        service.submit(planning_round(2))
        wait_for(
            service,
            lambda s: any(isinstance(e, RoundDone) and e.round_id == 2 for e in s),
            seen,
        )
    assert any(isinstance(e, RoundCancelled) and e.round_id == 1 for e in seen)
    assert not any(isinstance(e, RoundDone) and e.round_id == 1 for e in seen)
    second = [e for e in seen if isinstance(e, PlanDelivered) and e.round_id == 2]
    assert len(second) == len(planning_round(2).snapshots)


def test_a_server_stalled_past_the_deadline_opens_the_breaker() -> None:
    # Default request timeout (10 s), a short round: the request is cut at the deadline,
    # and a server with nothing to show by then (it never answers) counts as failing.
    # The breaker's cooldown (10 min) cannot end between rounds on a slow machine.
    stalled = ScriptedBackend([STALL, STALL, STALL])
    env = {"LLM_BREAKER_THRESHOLD": "2", "LLM_RETRY_MAX": "1", "LLM_BREAKER_COOLDOWN_MS": "600000"}
    settings = PlannerSettings(budget_ms=100)
    with PlannerService(stalled, settings, seed=6, env=env) as service:  # type: ignore[arg-type]
        seen: list[PlanEvent] = []
        for round_id in (1, 2, 3):
            service.submit(planning_round(round_id))
            wait_for(
                service,
                lambda s, r=round_id: any(isinstance(e, RoundDone) and e.round_id == r for e in s),
                seen,
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
