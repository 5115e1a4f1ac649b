"""Stress: back-to-back rounds of many agents, a set cache hit rate, a tight budget.

    python -m planner.bench --stress --agents 100 --duration 30 --hit-rate 0.7 --budget-ms 50

A pool of `agents` snapshots is planned once through the LLM first (not measured), so
the cache holds their plans. Then, for `duration` seconds, every round asks for
`agents` agents: round(hit_rate * agents) of them drawn from the pool (the situation
repeats: a cache hit) and the rest new (fresh ids, never seen: a miss that goes to
the LLM and, past the budget, to the heuristic). Reported: plans delivered per second
(all tiers), plan_wait p50/p95 (request sent to plan delivered, per agent), the hit
rate reached, and what tier the plans came from.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from planner.backends.openai import OpenAIBackend
from planner.bench import data as bench_data
from planner.bench.rounds import delivered, run_round
from planner.bench.server import ChildSimServer, InProcessSimServer
from planner.bench.stats import fmt, percentile, table
from planner.events import Mode
from planner.service import PlannerService
from planner.settings import PlannerSettings

WARM_BUDGET_MS = 120_000.0
FRESH_FIRST_CLONE = 100
"""Fresh agents are clones from here on (the pool uses the first few)."""


def run_stress(
    *,
    preset: str,
    agents: int,
    duration_s: float,
    hit_rate: float,
    budget_ms: float,
    mode: Mode = "batched",
    num_parallel: int = 16,
    in_process: bool = False,
    seed: int = 0,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    if not 0.0 <= hit_rate <= 1.0:
        raise ValueError("hit rate must be within 0..1")
    rng = random.Random(seed)
    hits_per_round = round(hit_rate * agents)
    pool = bench_data.agents(agents)
    server_cm = (
        InProcessSimServer(preset, num_parallel, seed)
        if in_process
        else ChildSimServer(preset, num_parallel, seed)
    )
    with server_cm as server:
        backend = OpenAIBackend(server.url, server.model, profile="vllm")
        # exact keys only: the pool's repeat rate is the hit rate this bench is asked for
        warm = PlannerSettings(
            mode="parallel",
            cache=True,
            similarity=False,
            budget_ms=WARM_BUDGET_MS,
            concurrency=num_parallel,
        )
        env = {"LLM_TIMEOUT_MS": str(WARM_BUDGET_MS)}
        with PlannerService(backend, warm, seed=seed, env=env) as service:
            progress(f"stress: warming the cache with {len(pool)} agents (not measured)")
            run_round(service, 1, pool, timeout_s=WARM_BUDGET_MS / 1000)
            cached = len(service.core.cache)
            service.set_settings(warm.with_(mode=mode, budget_ms=budget_ms, concurrency=agents))
            waits: list[float] = []
            hit_waits: list[float] = []
            round_ms: list[float] = []
            tiers: Counter[str] = Counter()
            causes: Counter[str] = Counter()
            hits = plans = rounds = 0
            clone = FRESH_FIRST_CLONE
            step = math.ceil(agents / len(bench_data.base_snapshots()))
            started = time.perf_counter()
            next_report = started + 5.0
            round_id = 1
            while time.perf_counter() - started < duration_s:
                round_id += 1
                fresh = (
                    bench_data.agents(agents - hits_per_round, first_clone=clone)
                    if (agents > hits_per_round)
                    else ()
                )
                clone += step
                snaps = (*rng.sample(pool, hits_per_round), *fresh)
                t = time.perf_counter()
                events = run_round(service, round_id, snaps, timeout_s=budget_ms / 1000 + 30)
                round_ms.append((time.perf_counter() - t) * 1000)
                for p in delivered(events):
                    plans += 1
                    waits.append(p.plan_wait_ms)
                    tiers["cache" if p.outcome.from_cache else p.outcome.tier.value] += 1
                    if p.outcome.cause is not None:
                        causes[p.outcome.cause] += 1
                    if p.outcome.from_cache:
                        hits += 1
                        hit_waits.append(p.plan_wait_ms)
                rounds += 1
                now = time.perf_counter()
                if now >= next_report:
                    progress(
                        f"  stress {now - started:4.0f} s: {rounds} rounds,"
                        f" {plans / (now - started):.0f} plans/s"
                    )
                    next_report = now + 5.0
            elapsed = time.perf_counter() - started
    return {
        "preset": preset,
        "mode": mode,
        "num_parallel": num_parallel,
        "agents": agents,
        "duration_s": elapsed,
        "budget_ms": budget_ms,
        "hit_rate_asked": hit_rate,
        "hit_rate": hits / plans if plans else math.nan,
        "warm_cache_entries": cached,
        "rounds": rounds,
        "plans": plans,
        "plans_per_s": plans / elapsed if elapsed > 0 else math.nan,
        "plan_wait_p50_ms": percentile(waits, 50),
        "plan_wait_p95_ms": percentile(waits, 95),
        "hit_wait_p95_ms": percentile(hit_waits, 95),
        "round_p95_ms": percentile(round_ms, 95),
        "tiers": dict(tiers),
        "fallback_causes": dict(causes),
    }


def render(s: dict[str, Any]) -> str:
    tiers = ", ".join(f"{k} {v}" for k, v in sorted(s["tiers"].items()))
    causes = ", ".join(f"{k} {v}" for k, v in sorted(s["fallback_causes"].items())) or "none"
    row = [
        str(s["agents"]),
        f"{s['mode']} np={s['num_parallel']}",
        fmt(s["budget_ms"], 0),
        fmt(s["hit_rate"], 2),
        str(s["rounds"]),
        fmt(s["plans_per_s"], 0),
        fmt(s["plan_wait_p50_ms"], 1),
        fmt(s["plan_wait_p95_ms"], 1),
        fmt(s["hit_wait_p95_ms"], 2),
        fmt(s["round_p95_ms"], 1),
    ]
    headers = (
        "agents",
        "mode",
        "budget ms",
        "hit rate",
        "rounds",
        "plans/s",
        "wait p50",
        "wait p95",
        "hit wait p95",
        "round p95",
    )
    return (
        f"Stress ({s['duration_s']:.0f} s, preset {s['preset']})\n"
        + table(headers, [row])
        + f"\nplans by source: {tiers}; fallback causes: {causes}"
    )
