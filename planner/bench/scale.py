"""The scale table: every dispatch mode, `auto` and the ideal split, from 2 to 200 agents.

Runs in virtual time on the in-process sim (`VirtualClock`: deterministic, and the
client's concurrency cap holds there as on the wall clock), one planning round per game
turn (3 s apart) with the game's 2500 ms budget and the prompt cache off, on a server
that decodes one request at a time (like a default Ollama) and one that runs 16 (like
vLLM). Each row's figures are the mean of its last rounds (`auto` needs a few rounds to
learn the server; the fixed modes are the same every round).

- time_to_all: round start to the last plan that came from the LLM (a round cut by its
  deadline ends there);
- in budget: the share of agents whose plan came from the LLM before the deadline;
- ideal: the best split of the squad into k batched requests sent together, found by
  trying every k on the sim's own cost model (the same model the rows run against).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from planner.bench import data as bench_data
from planner.bench.stats import fmt, mean, table
from planner.clock import VirtualClock
from planner.core import PlanningRound
from planner.events import Mode, PlanDelivered, PlanEvent, RoundDone
from planner.fallback import Tier
from planner.prompts import build_batch_prompt
from planner.service import make_core, run_round
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import SimModel, get_preset

AGENTS = (2, 10, 18, 50, 100, 200)
SERVERS = (1, 16)
BUDGET_MS = 2500.0
TURN_S = 3.0
ROUNDS = 8
MEASURED = 4
"""The last rounds of each row are measured (auto has learned the server by then)."""
ENV = {"LLM_TIMEOUT_MS": "60000"}
FORMAT = SimBackend.capabilities.plan_format
"""The plan format the rows use (the sim's profile), so the ideal is written the same way."""
FIXED_SLACK = 1.10
"""auto's time_to_all at most this times the best fixed mode's (at the same share)."""
IDEAL_SLACK = 1.15
"""auto's time_to_all at most this times the ideal split's."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Row:
    name: str
    mode: Mode
    concurrency: int = 8


ROWS = (
    Row("batched", "batched"),
    Row("sequential", "sequential"),
    Row("parallel c=8", "parallel", 8),
    Row("parallel c=n", "parallel", 0),
    Row("auto", "auto"),
)


@dataclass(frozen=True)
class Cell:
    time_to_all_ms: float
    in_budget: float
    requests: float
    tokens_per_plan: float | None


def _round_figures(events: Sequence[PlanEvent], n: int) -> tuple[float, float, int, int]:
    llm = [e for e in events if isinstance(e, PlanDelivered) and e.request_id is not None]
    done = next(e for e in events if isinstance(e, RoundDone))
    last = max((e.plan_wait_ms for e in llm), default=0.0)
    cut = any(isinstance(e, PlanDelivered) and e.outcome.cause == "deadline" for e in events)
    tta = BUDGET_MS if cut else last
    return tta, len(llm) / n, done.stats.requests, done.stats.completion_tokens


def run_row(row: Row, agents: int, num_parallel: int, preset: str, seed: int = 0) -> Cell:
    clock = VirtualClock()
    sim = SimBackend.create(preset, seed, clock, num_parallel=num_parallel)
    core = make_core(sim, clock, seed, ENV, virtual=True)
    settings = PlannerSettings(
        mode=row.mode,
        cache=False,
        budget_ms=BUDGET_MS,
        concurrency=row.concurrency or agents,
    )
    grid = bench_data.grid_of()
    measured: list[tuple[float, float, int, int]] = []
    for r in range(ROUNDS):
        start = r * TURN_S
        clock.jump_to(start)
        planning = PlanningRound(r + 1, "red", bench_data.agents(agents, turn=r + 1), grid)
        events: list[PlanEvent] = []
        anyio.run(run_round, core, settings, planning, events.append)
        if r >= ROUNDS - MEASURED:
            measured.append(_round_figures(events, agents))
    llm_plans = sum(share * agents for _, share, _, _ in measured)
    tokens = sum(t for *_, t in measured)
    return Cell(
        mean([m[0] for m in measured]),
        mean([m[1] for m in measured]),
        mean([float(m[2]) for m in measured]),
        tokens / llm_plans if llm_plans else None,
    )


def ideal(agents: int, num_parallel: int, preset: str, seed: int = 0) -> tuple[Cell, int]:
    """The best k-way split on the sim's cost model, for each measured round's snapshots
    (the sim's answers depend on the prompt): most plans within the budget, then the
    earliest last plan. Each k is tried on a fresh server whose prefix cache holds the
    static system prompt, as it does for every row after its first round."""
    cells = [_ideal_round(agents, num_parallel, preset, seed, turn) for turn in _measured_turns()]
    ks = [k for _, k in cells]
    return (
        Cell(
            mean([c.time_to_all_ms for c, _ in cells]),
            mean([c.in_budget for c, _ in cells]),
            mean([float(k) for k in ks]),
            None,
        ),
        max(set(ks), key=ks.count),
    )


def _measured_turns() -> range:
    return range(ROUNDS - MEASURED + 1, ROUNDS + 1)


def _ideal_round(
    agents: int, num_parallel: int, preset: str, seed: int, turn: int
) -> tuple[Cell, int]:
    snaps = bench_data.agents(agents, turn=turn)
    # prompts as the rows' requests are built: the same terrain and the same intent ask
    grid, intent = bench_data.grid_of(), PlannerSettings().intent
    budget_s = BUDGET_MS / 1000
    best: tuple[float, float, int] = (-1.0, math.inf, 1)
    for k in range(1, min(agents, 64) + 1):
        sim = SimModel(get_preset(preset), seed=seed, num_parallel=num_parallel)
        groups = [snaps[i::k] for i in range(k)]
        warm = build_batch_prompt(
            groups[0][:1], Tier.simplified_llm, fmt=FORMAT, grid=grid, intent=intent
        )
        sim.respond(-100.0, [("system", warm.system), ("user", warm.user)])
        braces: list[float] = []
        for group in groups:
            parts = build_batch_prompt(
                tuple(group), Tier.simplified_llm, fmt=FORMAT, grid=grid, intent=intent
            )
            r = sim.respond(0.0, [("system", parts.system), ("user", parts.user)])
            braces.extend(r.token_times[index] for _, index in r.plan_tokens)
        landed = [t for t in braces if t <= budget_s]
        share = len(landed) / agents
        last = max(landed, default=budget_s) * 1000
        if share > best[0] + 1e-9 or (abs(share - best[0]) <= 1e-9 and last < best[1]):
            best = (share, last, k)
    share, last, k = best
    return Cell(last, share, float(k), None), k


def run_table(
    *,
    preset: str = "gpu",
    agents: Sequence[int] = AGENTS,
    servers: Sequence[int] = SERVERS,
    progress: Progress,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for np_ in servers:
        for n in agents:
            cells: dict[str, Cell] = {}
            for row in ROWS:
                cells[row.name] = run_row(row, n, np_, preset)
            cells["ideal"], k = ideal(n, np_, preset)
            fixed = [c for name, c in cells.items() if name not in ("auto", "ideal")]
            best_share = max(c.in_budget for c in fixed)
            best_tta = min(c.time_to_all_ms for c in fixed if c.in_budget >= best_share - 1e-9)
            auto = cells["auto"]
            # Time is compared at equal shares: delivering more plans takes longer.
            more = auto.in_budget > best_share + 1e-9
            verdict = {
                "auto_vs_best_fixed": _ratio(auto.time_to_all_ms, best_tta),
                "auto_vs_ideal": _ratio(auto.time_to_all_ms, cells["ideal"].time_to_all_ms),
                "auto_share_at_least_best_fixed": auto.in_budget >= best_share - 1e-9,
                "auto_more_plans_than_best_fixed": more,
            }
            verdict["auto_ok"] = bool(
                verdict["auto_share_at_least_best_fixed"]
                and (more or verdict["auto_vs_best_fixed"] <= FIXED_SLACK)
                and verdict["auto_vs_ideal"] <= IDEAL_SLACK
            )
            progress(
                f"  np={np_} agents={n}: auto {fmt(auto.time_to_all_ms, 0)} ms "
                f"{auto.in_budget:.0%}, best fixed {fmt(best_tta, 0)} ms {best_share:.0%}, "
                f"ideal {fmt(cells['ideal'].time_to_all_ms, 0)} ms "
                f"{cells['ideal'].in_budget:.0%} (k={k})"
            )
            out.append(
                {
                    "num_parallel": np_,
                    "agents": n,
                    "cells": {name: vars(c) for name, c in cells.items()},
                    "ideal_k": k,
                    **verdict,
                }
            )
    return out


def render(results: Sequence[dict[str, Any]]) -> str:
    names = [r.name for r in ROWS] + ["ideal"]
    rows = []
    for res in results:
        for name in names:
            c = res["cells"][name]
            rows.append(
                [
                    str(res["num_parallel"]),
                    str(res["agents"]),
                    name,
                    fmt(c["time_to_all_ms"], 0),
                    f"{c['in_budget']:.1%}",
                    fmt(c["requests"], 1),
                    fmt(c["tokens_per_plan"], 1) if c["tokens_per_plan"] else "",
                    _verdict(res) if name == "auto" else "",
                ]
            )
    columns = ("np", "agents", "mode", "time_to_all", "in budget", "req", "tok/plan",
               "auto: vs best fixed, vs ideal")  # fmt: skip
    return table(columns, rows)


def _ratio(value: float, reference: float) -> float:
    """value / reference; equal zeros (the instant preset) are a ratio of 1."""
    if reference > 0:
        return value / reference
    return 1.0 if value <= 0 else math.inf


def _verdict(res: dict[str, Any]) -> str:
    fixed = (
        "more plans"
        if res["auto_more_plans_than_best_fixed"]
        else f"{res['auto_vs_best_fixed']:.2f}"
        if res["auto_share_at_least_best_fixed"]
        else "FEWER plans"
    )
    return f"{fixed}, {res['auto_vs_ideal']:.2f} {'ok' if res['auto_ok'] else 'MISSED'}"
