"""Telemetry: counters, histogram percentiles, snapshot, Chrome trace shape."""

from __future__ import annotations

import json
import math
import random

import pytest

from planner.telemetry import (
    COUNTERS,
    EXACT_SAMPLES,
    GROWTH,
    METRICS,
    Histogram,
    RoundTrace,
    Telemetry,
    to_chrome_trace,
    trace_json,
)


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
    r1 = RoundTrace(round_id=1, squad="red", mode="batched", start=100.0)
    a = r1.agent(3)
    a.requested_at, a.first_token_at, a.delivered_at, a.tier = 100.0, 100.2, 100.5, "simplified_llm"
    b = r1.agent(5)
    b.requested_at, b.delivered_at, b.tier, b.from_cache = 100.0, 100.001, "simplified_llm", True
    r1.agent(7).requested_at = 100.0  # never delivered
    r2 = RoundTrace(round_id=2, squad="blue", mode="parallel", start=101.0)
    c = r2.agent(2)
    c.requested_at, c.delivered_at, c.tier, c.cause = 101.0, 103.0, "heuristic", "deadline"

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
    assert plans[(2, 2)]["args"]["cause"] == "deadline"
    instants = [(e["tid"], e["name"]) for e in events if e["ph"] == "i"]
    assert instants == [(3, "first token"), (7, "no plan")]
    names = {(e["pid"], e["tid"], e["args"]["name"]) for e in events if e["ph"] == "M"}
    assert (1, 0, "squad red") in names and (1, 3, "agent 3") in names
    assert to_chrome_trace([]) == []
