"""Planner telemetry: counters and latency histograms (the rounds' timing record and its
Chrome-trace export live in planner/trace.py).

Histograms use exponential buckets (each bound GROWTH times the last, from MIN_MS), so
a p95 estimate is within one bucket (~19%) whatever the scale; while few samples have
been seen, percentiles come from the exact recent samples instead.

The telemetry object is owned by the planner thread; `snapshot()` returns plain copies
for the overlay and reports. Timing words are those of DESIGN.md (ttft, ttfp,
time_to_all, plan_wait, overhead) plus cache_lookup.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter, deque
from typing import Any

from planner.errors import CAUSES

METRICS: tuple[str, ...] = ("ttft", "ttfp", "time_to_all", "plan_wait", "overhead", "cache_lookup")
COUNTERS: tuple[str, ...] = (
    "requests",
    "successes",
    "errors",
    "retries",
    "breaker_openings",
    "cache_hits",
    "cache_misses",
    "cache_evictions",
)

MIN_MS = 0.001
GROWTH = 2**0.25
N_BUCKETS = 120
"""Upper bounds from 1 us to ~1.1e6 ms (18 minutes); larger values land in the last."""
EXACT_SAMPLES = 512
"""Recent samples kept exactly; percentiles are exact while the count is within this."""

_BOUNDS: tuple[float, ...] = tuple(MIN_MS * GROWTH**i for i in range(N_BUCKETS))


class Histogram:
    """Latency histogram in milliseconds."""

    def __init__(self) -> None:
        self.counts = [0] * (N_BUCKETS + 1)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._recent: deque[float] = deque(maxlen=EXACT_SAMPLES)

    def record(self, ms: float) -> None:
        if not math.isfinite(ms):
            return
        ms = max(0.0, ms)
        self.counts[bisect_left(_BOUNDS, ms)] += 1
        self.count += 1
        self.total += ms
        self.min = min(self.min, ms)
        self.max = max(self.max, ms)
        self._recent.append(ms)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def percentile(self, q: float) -> float:
        """q in [0, 100]; nan when empty. Nearest-rank on exact samples while they
        cover every sample, else the geometric middle of the bucket holding the rank."""
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(q / 100 * self.count))
        if self.count <= len(self._recent):
            return sorted(self._recent)[rank - 1]
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                lo = _BOUNDS[i - 1] if i > 0 else 0.0
                hi = _BOUNDS[i] if i < N_BUCKETS else self.max
                mid = math.sqrt(lo * hi) if lo > 0 else hi
                return min(max(mid, self.min), self.max)
        return self.max  # pragma: no cover - ranks never exceed the count

    def summary(self) -> dict[str, float | int]:
        return {
            "count": self.count,
            "mean": self.mean,
            "min": self.min if self.count else math.nan,
            "max": self.max if self.count else math.nan,
            "p50": self.percentile(50),
            "p95": self.percentile(95),
            "p99": self.percentile(99),
        }


class Telemetry:
    def __init__(self) -> None:
        self.counters: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self.fallbacks_by_tier: Counter[str] = Counter()
        self.fallbacks_by_cause: Counter[str] = Counter()
        self.histograms: dict[str, Histogram] = {m: Histogram() for m in METRICS}

    def incr(self, name: str, n: int = 1) -> None:
        if name not in COUNTERS:
            raise KeyError(f"unknown counter {name!r}")
        self.counters[name] += n

    def record(self, metric: str, ms: float) -> None:
        try:
            self.histograms[metric].record(ms)
        except KeyError:
            raise KeyError(f"unknown metric {metric!r}") from None

    def record_fallback(self, tier: str, cause: str) -> None:
        """An agent dropped to `tier` because of `cause` (one of planner.errors.CAUSES)."""
        if cause not in CAUSES:
            raise ValueError(f"unknown cause {cause!r}")
        self.fallbacks_by_tier[str(tier)] += 1
        self.fallbacks_by_cause[cause] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain, JSON-ready copies (nan percentiles become None)."""
        return {
            "counters": dict(self.counters),
            "fallbacks": {
                "by_tier": dict(self.fallbacks_by_tier),
                "by_cause": dict(self.fallbacks_by_cause),
            },
            "latency_ms": {
                m: {k: _json_number(v) for k, v in h.summary().items()}
                for m, h in self.histograms.items()
            },
        }


def _json_number(v: float | int) -> float | int | None:
    return None if isinstance(v, float) and not math.isfinite(v) else v
