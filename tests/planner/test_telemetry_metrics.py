"""Telemetry: counters, histogram percentiles, snapshot, Chrome trace shape."""

from __future__ import annotations

import json
import math
import random

import pytest

from game.match.planlog import PlanningLog
from planner.clock import VirtualClock
from planner.events import FirstToken, PlanDelivered, RequestSent, RoundDone, RoundStarted
from planner.fallback import Tier
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from planner.telemetry import (
    COUNTERS,
    EXACT_SAMPLES,
    GROWTH,
    METRICS,
    Histogram,
    Telemetry,
)
from planner.trace import RoundTrace, to_chrome_trace, trace_json
from tests.planning_helpers import make_core, planning_round, run_round


def test_exact_percentiles_for_small_counts() -> None:
    h = Histogram()
    for ms in range(1, 101):  # 1..100 ms, shuffled
        h.record(float((ms * 37) % 100 + 1))
    assert (h.percentile(50), h.percentile(95), h.percentile(99)) == (50.0, 95.0, 99.0)
    assert h.count == 100 and h.mean == pytest.approx(50.5)
    assert (h.min, h.max) == (1.0, 100.0)


def test_bucketed_percentiles_stay_within_one_bucket() -> None:
    h = Histogram()
    rng = random.Random(3)
    samples = [rng.lognormvariate(2.0, 1.0) for _ in range(EXACT_SAMPLES * 10)]
    for s in samples:
        h.record(s)
    samples.sort()
    for q in (50, 95, 99):
        exact = samples[math.ceil(q / 100 * len(samples)) - 1]
        assert exact / GROWTH <= h.percentile(q) <= exact * GROWTH


def test_empty_and_odd_values() -> None:
    h = Histogram()
    assert math.isnan(h.percentile(50)) and math.isnan(h.mean)
    h.record(math.nan)
    h.record(-3.0)  # clock skew: clamp to zero
    assert h.count == 1 and h.percentile(50) == 0.0


def test_counters_fallbacks_and_snapshot() -> None:
    t = Telemetry()
    t.incr("requests", 3)
    t.incr("cache_hits")
    t.record_fallback("heuristic", "deadline")
    t.record_fallback("heuristic", "timeout")
    t.record_fallback("emergency", "heuristic_error")
    t.record("ttft", 120.0)
    t.record("plan_wait", 200.0)
    snap = t.snapshot()
    assert set(snap["counters"]) == set(COUNTERS)
    assert snap["counters"]["requests"] == 3 and snap["counters"]["cache_hits"] == 1
    assert snap["fallbacks"]["by_tier"] == {"heuristic": 2, "emergency": 1}
    assert snap["fallbacks"]["by_cause"]["deadline"] == 1
    assert set(snap["latency_ms"]) == set(METRICS)
    assert snap["latency_ms"]["ttft"]["p50"] == 120.0
    assert snap["latency_ms"]["overhead"]["p95"] is None
    json.dumps(snap, allow_nan=False)  # JSON-ready for reports
    with pytest.raises(KeyError):
        t.incr("bogus")
    with pytest.raises(KeyError):
        t.record("bogus", 1.0)
    with pytest.raises(ValueError):
        t.record_fallback("heuristic", "gremlins")


def test_chrome_trace_shape() -> None:
    r1 = RoundTrace(round_id=1, squad="red", mode="batched", stream=True, start=100.0)
    a = r1.agent(3)
    a.requested_ms, a.first_token_ms, a.plan_wait_ms = 0.0, 200.0, 500.0
    a.tier = Tier.simplified_llm
    b = r1.agent(5)
    b.requested_ms, b.plan_wait_ms, b.tier, b.from_cache = 0.0, 1.0, Tier.simplified_llm, True
    r1.agent(7).requested_ms = 0.0  # never delivered
    r2 = RoundTrace(round_id=2, squad="blue", mode="parallel", stream=False, start=101.0)
    c = r2.agent(2)
    c.requested_ms, c.plan_wait_ms, c.tier, c.cause = 0.0, 2000.0, Tier.heuristic, "deadline"

    events = to_chrome_trace([r1, r2])
    json.loads(trace_json([r1, r2]))  # serialisable
    for e in events:
        assert e["ph"] in {"X", "i", "M"}
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert e["ts"] >= 0
    rounds = [e for e in events if e.get("cat") == "round"]
    assert [(e["pid"], e["ts"], e["dur"]) for e in rounds] == [
        (1, 0.0, 500_000.0),
        (2, 1_000_000.0, 2_000_000.0),
    ]
    plans = {(e["pid"], e["tid"]): e for e in events if e["ph"] == "X" and e["cat"] == "plan"}
    assert plans[(1, 3)]["dur"] == pytest.approx(500_000.0)
    assert plans[(1, 5)]["args"]["from_cache"] is True and "(cache)" in plans[(1, 5)]["name"]
    assert plans[(2, 2)]["args"] == {
        "round": 2,
        "tier": "heuristic",
        "cause": "deadline",
        "from_cache": False,
    }
    assert [e["name"] for e in rounds] == [
        "round 1 (batched streaming)",
        "round 2 (parallel non-streaming)",
    ]
    instants = [(e["tid"], e["name"]) for e in events if e["ph"] == "i"]
    assert instants == [(3, "first token"), (7, "no plan")]
    names = {(e["pid"], e["tid"], e["args"]["name"]) for e in events if e["ph"] == "M"}
    assert (1, 0, "squad red") in names and (1, 3, "agent 3") in names
    assert to_chrome_trace([]) == []


def test_the_planner_and_the_log_fold_the_same_events_into_the_same_trace() -> None:
    """One record, two folds: the trace the planner sends on RoundDone (Chrome export) is
    the one the PlanningLog builds live from the drained events (waterfall, inspector),
    and each figure in it is the event's own (first request and first token kept)."""
    clock = VirtualClock()
    sim = SimBackend.create("gpu", seed=5, clock=clock, faults=FaultConfig.uniform(0.5))
    core = make_core(sim, clock)
    log = PlanningLog()
    re_requested = 0
    for round_id, mode in enumerate(("batched", "sequential", "parallel", "batched"), start=1):
        # no situation hits: every faulty agent is re-asked, not served from a teammate
        settings = PlannerSettings(mode=mode, budget_ms=60_000, similarity=False)
        events = run_round(core, settings, planning_round(round_id))
        for event in events:
            log.apply(event)
        done = events[-1]
        assert isinstance(done, RoundDone) and isinstance(events[0], RoundStarted)
        folded = RoundTrace.started(events[0])
        for event in events[1:]:
            folded.apply(event)
        assert log.round_trace(round_id) == folded == log.rounds[-1]
        trace = folded
        assert (trace.mode, trace.stream, trace.done) == (mode, True, True)
        asked: dict[int, list[float]] = {}
        heard: dict[int, list[float]] = {}
        agents_of: dict[int, tuple[int, ...]] = {}
        for e in events:
            if isinstance(e, RequestSent):
                agents_of[e.request_id] = e.agent_ids
                for agent_id in e.agent_ids:
                    asked.setdefault(agent_id, []).append(trace.ms(e.at))
            if isinstance(e, FirstToken):
                for agent_id in agents_of[e.request_id]:
                    heard.setdefault(agent_id, []).append(trace.ms(e.at))
            if isinstance(e, PlanDelivered):
                bar = trace.bars[e.outcome.agent_id]
                assert bar.plan_wait_ms == e.plan_wait_ms and bar.tier == e.outcome.tier
                assert (bar.cause, bar.from_cache) == (e.outcome.cause, e.outcome.from_cache)
                assert log.agents[e.outcome.agent_id].timing is log.rounds[-1].bars[bar.agent_id]
        for agent_id, sent in asked.items():
            assert trace.bars[agent_id].requested_ms == sent[0]
            re_requested += len(sent) > 1
        for agent_id, tokens in heard.items():
            assert trace.bars[agent_id].first_token_ms == tokens[0]
        assert trace.end_ms() == done.stats.time_to_all_ms
        clock.advance(3.0)
    assert re_requested, "the faults should have made at least one re-request"
    chrome = to_chrome_trace(log.rounds)
    assert len([e for e in chrome if e.get("cat") == "round"]) == 4
