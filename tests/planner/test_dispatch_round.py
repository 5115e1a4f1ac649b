"""One planning round: delivery order, cache, re-requests, deadlines, every fault kind."""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from planner import timeline
from planner.clock import MonotonicClock, VirtualClock
from planner.dispatch import RoundRun
from planner.errors import BackendHTTPStatus
from planner.events import AgentFellBack, PlanDelivered, RequestSent, ResponseEnded, RoundDone
from planner.fallback import Tier
from planner.resilience import BreakerState, CircuitBreaker
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FAULT_KINDS, FaultConfig
from tests.planning_helpers import (
    STALL,
    ScriptedBackend,
    make_core,
    plan_json,
    planning_round,
    run_round,
)


def delivered(events: list[object]) -> list[PlanDelivered]:
    return [e for e in events if isinstance(e, PlanDelivered)]


def test_each_plan_is_delivered_in_stream_order_the_moment_it_closes() -> None:
    planning = planning_round()
    ids = [s.me.id for s in planning.snapshots]
    order = [ids[2], ids[0], ids[1], *ids[3:]]
    text = '{"plans":[' + ",".join(plan_json(i) for i in order) + "]}"
    backend = ScriptedBackend([text], chunk=5)
    seen_at: dict[int, int] = {}
    events: list[object] = []

    def emit(event: object) -> None:
        events.append(event)
        if isinstance(event, PlanDelivered):
            seen_at[event.outcome.agent_id] = backend.yielded

    anyio.run(
        RoundRun(
            make_core(backend), PlannerSettings(mode="batched", similarity=False), planning, emit
        ).run
    )
    assert [e.outcome.agent_id for e in delivered(events)] == order
    total = backend.yielded
    # Streaming: the first plan landed long before the answer was complete.
    assert seen_at[order[0]] < total // 2
    assert sorted(seen_at.values()) == [seen_at[i] for i in order]
    assert all(e.outcome.tier == Tier.simplified_llm for e in delivered(events))


def test_non_streaming_delivers_everything_at_the_end() -> None:
    planning = planning_round()
    ids = [s.me.id for s in planning.snapshots]
    sim = SimBackend.create("gpu", seed=3, clock=VirtualClock())
    core = make_core(sim, sim.clock)  # type: ignore[arg-type]
    events = run_round(core, PlannerSettings(mode="batched", stream=False), planning)
    plans = delivered(events)
    assert sorted(e.outcome.agent_id for e in plans) == sorted(ids)
    llm = [e for e in plans if e.outcome.tier == Tier.simplified_llm]
    assert len({e.at for e in llm}) == 1  # one whole answer, one instant


def test_cache_hits_skip_the_request() -> None:
    planning = planning_round()
    ids = [s.me.id for s in planning.snapshots]
    text = '{"plans":[' + ",".join(plan_json(i) for i in ids) + "]}"
    backend = ScriptedBackend([text])
    core = make_core(backend)
    # exact keys only: with the situation index, teammates served a plan of the first
    # round would be asked afresh in the same situation (test_cache_situation.py)
    exact = PlannerSettings(mode="batched", similarity=False)
    run_round(core, exact, planning)
    assert len(backend.requests) == 1
    second = run_round(core, exact, planning)
    assert len(backend.requests) == 1  # nothing left to ask
    plans = delivered(second)
    assert sorted(e.outcome.agent_id for e in plans) == sorted(ids)
    assert all(e.outcome.from_cache and e.request_id is None for e in plans)
    done = next(e for e in second if isinstance(e, RoundDone))
    assert done.stats.cache_hits == len(ids) and done.stats.requests == 0
    # With the cache off the same round goes back to the server.
    backend.replies.append(text)
    run_round(core, PlannerSettings(mode="batched", cache=False), planning)
    assert len(backend.requests) == 2


def test_a_missing_agent_is_re_requested_alone() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    missing = ids[1]
    first = '{"plans":[' + ",".join(plan_json(i) for i in ids if i != missing) + "]}"
    second = '{"plans":[' + plan_json(missing) + "]}"
    backend = ScriptedBackend([first, second])
    events = run_round(
        make_core(backend), PlannerSettings(mode="batched", similarity=False), planning
    )
    assert [r.agent_ids for r in backend.requests] == [tuple(ids), (missing,)]
    fell = [e for e in events if isinstance(e, AgentFellBack)]
    assert [(e.agent_id, e.cause) for e in fell] == [(missing, "missing_from_batch")]
    outcome = {e.outcome.agent_id: e.outcome for e in delivered(events)}[missing]
    assert outcome.tier == Tier.simplified_llm and outcome.cause == "missing_from_batch"


def test_full_tier_failure_is_re_requested_at_the_simplified_tier() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    replies = ["this is not json at all", '{"plans":[' + ",".join(map(plan_json, ids)) + "]}"]
    backend = ScriptedBackend(list(replies))
    settings = PlannerSettings(mode="batched", start_tier=Tier.full_llm, similarity=False)
    events = run_round(make_core(backend), settings, planning)
    sent = [e for e in events if isinstance(e, RequestSent)]
    assert [e.tier for e in sent] == [Tier.full_llm, Tier.simplified_llm]
    assert "Approach" in backend.requests[0].system
    assert "Approach" not in backend.requests[1].system
    assert {e.outcome.tier for e in delivered(events)} == {Tier.simplified_llm}
    assert {e.outcome.cause for e in delivered(events)} == {"parse_error"}


def test_an_illegal_plan_is_a_validation_error_and_falls_back() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    bad = (
        '{"plans":['
        + ",".join(f'{{"agent_id":{i},"steps":[{{"act":"Attack","target_id":999}}]}}' for i in ids)
        + "]}"
    )
    backend = ScriptedBackend([bad, bad])
    events = run_round(make_core(backend), PlannerSettings(mode="batched"), planning)
    plans = delivered(events)
    assert {e.outcome.tier for e in plans} <= {Tier.heuristic, Tier.emergency}
    assert {e.outcome.cause for e in plans} == {"validation_error"}
    assert len(plans) == len(ids)


def test_past_the_deadline_agents_get_a_heuristic_plan() -> None:
    planning = planning_round()
    clock = VirtualClock()
    sim = SimBackend.create("cpu", seed=1, clock=clock)  # 15 tokens/s: far too slow
    events = run_round(
        make_core(sim, clock), PlannerSettings(mode="batched", budget_ms=300), planning
    )  # type: ignore[arg-type]
    plans = delivered(events)
    assert len(plans) == len(planning.snapshots)
    assert {e.outcome.tier for e in plans} == {Tier.heuristic}
    assert {e.outcome.cause for e in plans} == {"deadline"}
    assert max(e.plan_wait_ms for e in plans) == pytest.approx(300)


def test_transient_errors_are_retried_and_4xx_is_not() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    good = '{"plans":[' + ",".join(map(plan_json, ids)) + "]}"
    backend = ScriptedBackend([BackendHTTPStatus("busy", 503), good])
    events = run_round(make_core(backend), PlannerSettings(mode="batched"), planning)
    assert len(backend.requests) == 2
    assert {e.outcome.tier for e in delivered(events)} == {Tier.simplified_llm}
    done = next(e for e in events if isinstance(e, RoundDone))
    assert done.stats.retries == 1

    backend = ScriptedBackend([BackendHTTPStatus("bad request", 400), good])
    events = run_round(make_core(backend), PlannerSettings(mode="batched"), planning)
    assert len(backend.requests) == 1
    assert {e.outcome.cause for e in delivered(events)} == {"http_status"}


def test_an_open_breaker_routes_straight_to_the_heuristic() -> None:
    planning = planning_round()
    backend = ScriptedBackend([])
    core = make_core(backend)
    for _ in range(core.breaker.threshold):
        core.breaker.record_failure()
    events = run_round(core, PlannerSettings(mode="batched"), planning)
    assert backend.requests == []
    assert not any(isinstance(e, RequestSent) for e in events)  # nothing left: nothing shown
    assert {e.outcome.cause for e in delivered(events)} == {"circuit_open"}
    assert {e.outcome.tier for e in delivered(events)} == {Tier.heuristic}


@pytest.mark.parametrize("mode", ["batched", "sequential", "parallel"])
@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_fault_kind_still_gives_every_agent_a_plan(mode: str, kind: str) -> None:
    clock = VirtualClock()
    sim = SimBackend.create("gpu", seed=7, clock=clock, faults=FaultConfig.only(kind))  # type: ignore[arg-type]
    core = make_core(sim, clock)  # type: ignore[arg-type]
    settings = PlannerSettings(mode=mode, cache=False)  # type: ignore[arg-type]
    for round_id in range(1, 4):
        planning = planning_round(round_id)
        events = run_round(core, settings, planning)
        plans = delivered(events)
        assert sorted(e.outcome.agent_id for e in plans) == sorted(
            s.me.id for s in planning.snapshots
        )
        for e in plans:
            assert e.outcome.steps
            if e.outcome.tier in (Tier.heuristic, Tier.emergency):
                assert e.outcome.cause is not None  # the reason is recorded
        assert any(isinstance(e, RoundDone) for e in events)
        clock.advance(3.0)


def test_similarity_mode_serves_a_near_identical_situation_from_the_cache() -> None:
    planning = planning_round()
    ids = sorted(s.me.id for s in planning.snapshots)
    text = '{"plans":[' + ",".join(plan_json(i) for i in ids) + "]}"
    settings = PlannerSettings(mode="batched", similarity=True)
    backend = ScriptedBackend([text, text])
    core = make_core(backend)
    first = delivered(run_round(core, settings, planning))
    # teammates of one situation were served the first plan of it to land
    shared = {e.outcome.agent_id for e in first if e.outcome.from_cache}
    assert shared and shared != set(ids)
    # One hp less for every agent: a different prompt line, the same quantised situation.
    nudged = tuple(
        s.model_copy(update={"me": s.me.model_copy(update={"hp": s.me.hp - 1})})
        for s in planning.snapshots
    )
    second = run_round(core, settings, replace(planning, round_id=2, snapshots=nudged))
    plans = delivered(second)
    assert len(plans) == len(ids)
    # Each agent whose own plan the model wrote is served it again from the cache; one
    # that was served a cached plan and is still in its situation is asked afresh.
    assert {e.outcome.agent_id for e in plans if e.outcome.from_cache} == set(ids) - shared
    assert len(backend.requests) == 2 and set(backend.requests[1].agent_ids) == shared
    stats = next(e.stats for e in second if isinstance(e, RoundDone))
    assert stats.cache_refreshed == len(shared)
    assert stats.cache_adapted == len(ids) - len(shared)
    # Without similarity the nudged round goes back to the server.
    backend.replies.append(text)
    run_round(
        core,
        PlannerSettings(mode="batched", similarity=False),
        replace(planning, round_id=3, snapshots=nudged),
    )
    assert len(backend.requests) == 3


def test_in_virtual_time_a_server_too_slow_for_the_budget_opens_the_breaker() -> None:
    clock = VirtualClock()
    sim = SimBackend.create("cpu", seed=2, clock=clock)  # no plan within 300 ms
    core = make_core(sim, clock)  # type: ignore[arg-type]
    settings = PlannerSettings(mode="batched", budget_ms=300)
    for round_id in range(1, core.breaker.threshold + 1):
        events = run_round(core, settings, planning_round(round_id))
        assert {e.outcome.cause for e in delivered(events)} == {"deadline"}
        clock.advance(3.0)
    assert core.breaker.state.value == "open"
    events = run_round(core, settings, planning_round(99))
    assert not any(isinstance(e, RequestSent) for e in events)
    assert {e.outcome.cause for e in delivered(events)} == {"circuit_open"}


def test_a_move_onto_water_is_delivered_repaired_and_the_inspector_says_so() -> None:
    from game.match.planlog import PlanningLog
    from game.ui.inspector import inspector_lines

    planning = planning_round()
    grid = planning.grid
    water = next(
        (x, y) for y in range(grid.height) for x in range(grid.width) if grid.tile(x, y) == "water"
    )
    ids = sorted(s.me.id for s in planning.snapshots)
    text = (
        '{"plans":['
        + ",".join(
            f'{{"agent_id":{i},"steps":[{{"act":"MoveTo","x":{water[0]},"y":{water[1]}}}]}}'
            for i in ids
        )
        + "]}"
    )
    events = run_round(
        make_core(ScriptedBackend([text])), PlannerSettings(mode="batched"), planning
    )
    first = delivered(events)[0]
    assert first.outcome.tier == Tier.simplified_llm and not first.outcome.dropped
    assert len(first.outcome.repaired) == 1 and "water" in first.outcome.repaired[0].reason
    log = PlanningLog()
    for event in events:
        log.apply(event)
    agent = first.outcome.agent_id
    lines = inspector_lines(agent, log.agents[agent], None, log, "red")
    assert any("repaired" in line.text and "water" in line.text for line in lines)


def test_on_the_wall_clock_a_deadline_that_fires_with_the_request_timeout_still_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request's own timeout fires just before the round's deadline. On a late event
    loop both timers run at once, and anyio then delivers the round's cancellation, not
    the request's TimeoutError. A negative margin makes the round's come first every
    time: the stalled server must still count against the breaker, cause 'deadline'."""
    monkeypatch.setattr(timeline, "DEADLINE_MARGIN_S", -1.0)
    core = make_core(ScriptedBackend([STALL]), seed=1)
    core.clock, core.virtual = MonotonicClock(), False
    core.breaker = CircuitBreaker(core.clock, threshold=1, cooldown_s=60.0)
    planning = planning_round()
    events: list[object] = []
    anyio.run(
        RoundRun(core, PlannerSettings(mode="batched", budget_ms=50), planning, events.append).run
    )
    assert core.breaker.state == BreakerState.open
    ended = [e for e in events if isinstance(e, ResponseEnded)]
    assert [(e.finish_reason, e.error_cause) for e in ended] == [("error", "deadline")]
    fell = [e for e in events if isinstance(e, AgentFellBack)]
    assert sorted(e.agent_id for e in fell) == sorted(s.me.id for s in planning.snapshots)
    assert {e.cause for e in fell} == {"deadline"}
