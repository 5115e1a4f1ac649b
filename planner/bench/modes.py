"""The mode table: every dispatch mode against the physical limit, over real sockets.

For each (mode, streaming, server concurrency) the real `PlannerService` talks to the
sim server on loopback through `OpenAIBackend` (real httpx, real SSE) on the wall
clock. The sim records the instant each plan's closing brace left the server
(`SimModel.emissions_copy()`, perf_counter, the planner's clock too), which gives per round:

- the limit: when the first and the last plan's brace left, relative to the round's
  start; no client can deliver a plan before its brace was sent;
- overhead per plan: delivery to the world minus that plan's emission instant.

The prompt cache is off (later rounds would be free) and every round has a new turn
number, so no round's prompt repeats an earlier one past the static system prefix.

`run_user_table` plays the same table against the user's own server (`--backend openai|
ollama --url URL --model M`): no emission instants there, so no limit; overhead is the
runner's own (delivery minus the arrival of the chunk that closed the plan), and tokens a
server did not report are unknown, not 0.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.backends.base import Backend
from planner.backends.openai import OpenAIBackend
from planner.bench import data as bench_data
from planner.bench.rounds import delivered, done_of, run_round
from planner.bench.server import BenchServer, ChildSimServer, InProcessSimServer
from planner.bench.stats import fmt, mean, percentile, table
from planner.events import MODES, Mode, PlanEvent, RoundStarted
from planner.fallback import is_llm_tier
from planner.service import PlannerService
from planner.settings import PlannerSettings

BUDGET_MS = 60_000.0
"""Large enough that no round of the table is cut short by its deadline."""
SERVERS: tuple[tuple[int, str], ...] = ((1, "like default Ollama"), (16, "like vLLM"))
EMISSION_WAIT_S = 1.0
"""The server records a brace right after sending it; allow it that long to catch up."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ModeConfig:
    mode: Mode
    stream: bool
    num_parallel: int
    """The sim server's concurrency; 0: the user's own server (unknown)."""

    @property
    def label(self) -> str:
        np = f"np={self.num_parallel}" if self.num_parallel else "your server"
        return f"{self.mode} {'stream' if self.stream else 'whole'} {np}"


@dataclass(frozen=True)
class RoundMeasure:
    ttft_ms: float | None
    ttfp_ms: float | None
    time_to_all_ms: float
    ttfp_limit_ms: float | None
    all_limit_ms: float | None
    plan_waits_ms: tuple[float, ...]
    overheads_ms: tuple[float, ...]
    requests: int
    prompt_tokens: int | None
    """None (and the two below): no answer of the round reported usage (unknown)."""
    cached_tokens: int | None
    completion_tokens: int | None
    fallbacks: int
    """Agents that did not get an LLM plan (should be 0: no faults, no deadline)."""


@dataclass
class ModeResult:
    config: ModeConfig
    agents: int
    rounds: list[RoundMeasure] = field(default_factory=list)

    def _mean(self, pick: Callable[[RoundMeasure], float | int | None]) -> float:
        return mean([float(v) for r in self.rounds if (v := pick(r)) is not None])

    @property
    def overheads(self) -> list[float]:
        return [o for r in self.rounds for o in r.overheads_ms]

    def summary(self) -> dict[str, Any]:
        ttfp, ttfp_limit = self._mean(lambda r: r.ttfp_ms), self._mean(lambda r: r.ttfp_limit_ms)
        tta, tta_limit = (
            self._mean(lambda r: r.time_to_all_ms),
            self._mean(lambda r: r.all_limit_ms),
        )
        overheads = self.overheads
        return {
            "mode": self.config.mode,
            "stream": self.config.stream,
            "num_parallel": self.config.num_parallel,
            "agents": self.agents,
            "rounds": len(self.rounds),
            "ttft_ms": self._mean(lambda r: r.ttft_ms),
            "ttfp_ms": ttfp,
            "ttfp_limit_ms": ttfp_limit,
            "ttfp_ratio": ttfp / ttfp_limit if ttfp_limit else None,
            "ttfp_excess_ms": ttfp - ttfp_limit,
            "time_to_all_ms": tta,
            "time_to_all_limit_ms": tta_limit,
            "time_to_all_ratio": tta / tta_limit if tta_limit else None,
            "plan_wait_mean_ms": mean([w for r in self.rounds for w in r.plan_waits_ms]),
            "overhead_p50_ms": percentile(overheads, 50),
            "overhead_p99_ms": percentile(overheads, 99),
            "overhead_max_ms": max(overheads, default=float("nan")),
            "requests": self._mean(lambda r: r.requests),
            "prompt_tokens": self._mean(lambda r: r.prompt_tokens),
            "cached_tokens": self._mean(lambda r: r.cached_tokens),
            "completion_tokens": self._mean(lambda r: r.completion_tokens),
            "fallbacks": sum(r.fallbacks for r in self.rounds),
        }


def configs(modes: Sequence[Mode] = MODES, servers: Sequence[int] = (1, 16)) -> list[ModeConfig]:
    return [
        ModeConfig(mode, stream, np) for np in servers for mode in modes for stream in (True, False)
    ]


def _emissions_by_agent(
    server: BenchServer, before: set[int], want: set[int]
) -> dict[int, list[float]]:
    """Brace instants of this round's requests, per agent (waits briefly for the
    server thread to record the last ones)."""
    give_up = time.perf_counter() + EMISSION_WAIT_S
    while True:
        by_agent: dict[int, list[float]] = {}
        for request_id, emitted in server.emissions().items():
            if request_id in before:
                continue
            for agent_id, at in emitted:
                by_agent.setdefault(agent_id, []).append(at)
        if want <= by_agent.keys() or time.perf_counter() > give_up:
            return by_agent
        time.sleep(0.005)


def measure(events: Sequence[PlanEvent], server: BenchServer, before: set[int]) -> RoundMeasure:
    t0 = next(e for e in events if isinstance(e, RoundStarted)).at
    stats = done_of(events).stats
    plans = delivered(events)
    from_llm = {p.outcome.agent_id: p.at for p in plans if p.request_id is not None}
    emissions = _emissions_by_agent(server, before, set(from_llm))
    overheads: list[float] = []
    for agent_id, at in from_llm.items():
        instants = emissions.get(agent_id)
        if not instants:
            continue
        # a re-requested agent has several: the one delivered is the latest before delivery
        sent = max((t for t in instants if t <= at), default=min(instants))
        overheads.append((at - sent) * 1000)
    all_instants = [t for instants in emissions.values() for t in instants]
    return RoundMeasure(
        ttft_ms=stats.ttft_ms,
        ttfp_ms=stats.ttfp_ms,
        time_to_all_ms=stats.time_to_all_ms,
        ttfp_limit_ms=(min(all_instants) - t0) * 1000 if all_instants else None,
        all_limit_ms=(max(all_instants) - t0) * 1000 if all_instants else None,
        plan_waits_ms=tuple(p.plan_wait_ms for p in plans),
        overheads_ms=tuple(overheads),
        requests=stats.requests,
        prompt_tokens=stats.prompt_tokens,
        cached_tokens=stats.cached_tokens,
        completion_tokens=stats.completion_tokens,
        fallbacks=len(plans) - len(from_llm),
    )


def run_config(
    server: BenchServer,
    config: ModeConfig,
    agents: int,
    rounds: int,
    turns: Iterator[int],
    progress: Progress,
) -> ModeResult:
    backend = OpenAIBackend(server.url, server.model, profile="vllm")
    settings = PlannerSettings(
        mode=config.mode,
        stream=config.stream,
        cache=False,
        budget_ms=BUDGET_MS,
        concurrency=max(1, agents),  # parallel: every agent's request in flight at once
    )
    env = {"LLM_TIMEOUT_MS": str(BUDGET_MS)}
    result = ModeResult(config, agents)
    with PlannerService(backend, settings, seed=0, env=env) as service:
        # Warm-up (not measured): opens the connection, builds the schemas.
        run_round(service, 0, bench_data.agents(1, turn=next(turns)))
        for r in range(1, rounds + 1):
            before = set(server.emissions())
            events = run_round(service, r, bench_data.agents(agents, turn=next(turns)))
            m = measure(events, server, before)
            result.rounds.append(m)
            progress(
                f"  {config.label:<26} round {r}/{rounds}: ttfp {fmt(m.ttfp_ms)} ms"
                f" (limit {fmt(m.ttfp_limit_ms)}), all {fmt(m.time_to_all_ms)} ms"
                f" (limit {fmt(m.all_limit_ms)})"
            )
    return result


def run_table(
    *,
    preset: str,
    agents: int,
    rounds: int,
    servers: Sequence[int],
    modes: Sequence[Mode] = MODES,
    progress: Progress,
    seed: int = 0,
    in_process: bool = False,
) -> list[ModeResult]:
    results: list[ModeResult] = []
    turns = itertools.count(1)
    for num_parallel in servers:
        server_cm = (
            InProcessSimServer(preset, num_parallel, seed)
            if in_process
            else ChildSimServer(preset, num_parallel, seed)
        )
        with server_cm as server:
            progress(f"sim server {server.url}: preset {preset}, num_parallel {num_parallel}")
            for config in configs(modes, (num_parallel,)):
                results.append(run_config(server, config, agents, rounds, turns, progress))
    return results


def measure_user(events: Sequence[PlanEvent]) -> RoundMeasure:
    """A round against the user's server: its figures as the planner saw them."""
    stats = done_of(events).stats
    plans = delivered(events)
    from_llm = [p for p in plans if p.request_id is not None]
    known = stats.usage_reported > 0 or stats.requests == 0
    return RoundMeasure(
        ttft_ms=stats.ttft_ms,
        ttfp_ms=stats.ttfp_ms,
        time_to_all_ms=stats.time_to_all_ms,
        ttfp_limit_ms=None,
        all_limit_ms=None,
        plan_waits_ms=tuple(p.plan_wait_ms for p in plans),
        overheads_ms=tuple(p.overhead_ms for p in from_llm if p.overhead_ms is not None),
        requests=stats.requests,
        prompt_tokens=stats.prompt_tokens if known else None,
        cached_tokens=stats.cached_tokens if known else None,
        completion_tokens=stats.completion_tokens if known else None,
        fallbacks=sum(1 for p in plans if not is_llm_tier(p.outcome.tier)),
    )


def run_user_table(
    make_backend: Callable[[], Backend],
    *,
    agents: int,
    rounds: int,
    progress: Progress,
    modes: Sequence[Mode] = MODES,
    budget_ms: float = BUDGET_MS,
    settings: PlannerSettings | None = None,
) -> list[ModeResult]:
    """Every mode, streaming on and off, against the user's server (a fresh backend per
    configuration, so format discovery and connections start the same way each time)."""
    results: list[ModeResult] = []
    turns = itertools.count(1)
    base = settings or PlannerSettings()
    for config in configs(modes, (0,)):
        planner_settings = base.with_(
            mode=config.mode,
            stream=config.stream,
            cache=False,
            budget_ms=budget_ms,
            concurrency=max(1, agents),
        )
        result = ModeResult(config, agents)
        env = {"LLM_TIMEOUT_MS": str(budget_ms)}
        with PlannerService(make_backend(), planner_settings, seed=0, env=env) as service:
            run_round(service, 0, bench_data.agents(1, turn=next(turns)))  # warm-up
            for r in range(1, rounds + 1):
                events = run_round(service, r, bench_data.agents(agents, turn=next(turns)))
                m = measure_user(events)
                result.rounds.append(m)
                progress(
                    f"  {config.label:<26} round {r}/{rounds}: ttfp {fmt(m.ttfp_ms)} ms,"
                    f" all {fmt(m.time_to_all_ms)} ms, {m.fallbacks} without an LLM plan"
                )
        results.append(result)
    return results


COLUMNS = (
    "mode",
    "stream",
    "np",
    "ttft",
    "ttfp",
    "limit",
    "ratio",
    "all",
    "limit",
    "ratio",
    "wait",
    "ovh p50",
    "ovh p99",
    "req",
    "prompt tok (cached)",
    "compl tok",
)


def render(results: Sequence[ModeResult]) -> str:
    rows = []
    for res in results:
        s = res.summary()
        rows.append(
            [
                s["mode"],
                "on" if s["stream"] else "off",
                str(s["num_parallel"] or "-"),
                fmt(s["ttft_ms"], 0),
                fmt(s["ttfp_ms"], 0),
                fmt(s["ttfp_limit_ms"], 0),
                fmt(s["ttfp_ratio"], 3),
                fmt(s["time_to_all_ms"], 0),
                fmt(s["time_to_all_limit_ms"], 0),
                fmt(s["time_to_all_ratio"], 3),
                fmt(s["plan_wait_mean_ms"], 0),
                fmt(s["overhead_p50_ms"], 2),
                fmt(s["overhead_p99_ms"], 2),
                fmt(s["requests"], 0),
                f"{fmt(s['prompt_tokens'], 0)} ({fmt(s['cached_tokens'], 0)})",
                fmt(s["completion_tokens"], 0),
            ]
        )
    return table(COLUMNS, rows)
