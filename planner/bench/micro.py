"""Micro-benchmarks of the planner's pure cores: stream parser, prompt cache, prompts,
and what each plan format costs in output tokens.

Each time is a per-operation wall time measured with perf_counter_ns around many
calls on this machine; nothing here does I/O.
"""

from __future__ import annotations

import functools
import gc
import itertools
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from planner.bench import data as bench_data
from planner.bench.stats import fmt, percentile, table
from planner.cache import PlanCache, cache_key, situation_key
from planner.fallback import Tier
from planner.prompts import (
    SINGLE_PROMPT_LIMIT,
    build_batch_prompt,
    decode_agents,
    prompt_chars,
)
from planner.schema import PLAN_FORMATS, PlanFormat
from planner.sim.model import (
    CHARS_PER_TOKEN,
    asks_intent,
    compose_plans,
    offered_tools,
    serialise,
    tokenize,
)
from planner.stream import PlanStreamParser

PARSER_AGENTS = (10, 100, 1000)
CACHE_ENTRIES = 4096
MODEL = "sim-gpu"
OPTIONS = {"scenario": bench_data.SCENARIO, "size": [49, 32]}


def _best_of(repeats: int, run: Callable[[], None]) -> float:
    """Seconds of the fastest of `repeats` runs (the least disturbed by other load), with
    the garbage collector paused as timeit does: a collection landing in one run is noise
    about the heap, not a cost of the code measured."""
    best = float("inf")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t)
    finally:
        if was_enabled:
            gc.enable()
    return best


def parser(
    agents: Sequence[int] = PARSER_AGENTS,
    repeats: int = 5,
    formats: Sequence[PlanFormat] = PLAN_FORMATS,
) -> list[dict[str, Any]]:
    """Feed a sim answer for N agents in its ~4-character tokens, as a stream arrives."""
    rows = []
    for form in formats:
        rows += _parser_rows(form, agents, repeats)
    return rows


def _parser_rows(form: PlanFormat, agents: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for n in agents:
        snaps = bench_data.agents(n)
        text = serialise(compose_plans(snaps, random.Random(n)), form).text
        tokens = tokenize(text)
        ids = bench_data.ids(snaps)
        plans = 0

        loops = max(1, 1000 // n)  # small answers: several per timing, for resolution

        def run(tokens: list[str] = tokens, ids: list[int] = ids, loops: int = loops) -> None:
            nonlocal plans
            for _ in range(loops):
                p = PlanStreamParser(expected_ids=ids)
                plans = sum(len(p.feed(tok)) for tok in tokens)
                p.finish()

        run()  # warm-up
        seconds = _best_of(repeats, run) / loops
        rows.append(
            {
                "format": form,
                "agents": n,
                "chars": len(text),
                "tokens": len(tokens),
                "plans": plans,
                "us_per_token": seconds / len(tokens) * 1e6,
                "us_per_agent": seconds / n * 1e6,
                "mb_per_s": len(text.encode()) / seconds / 1e6,
            }
        )
    return rows


def _timed_calls(calls: Sequence[Callable[[], object]]) -> list[float]:
    """Microseconds of each call (perf_counter_ns around each)."""
    out = []
    now = time.perf_counter_ns
    for call in calls:
        t = now()
        call()
        out.append((now() - t) / 1000)
    return out


def cache(entries: int = CACHE_ENTRIES, lookups: int = 20_000) -> list[dict[str, Any]]:
    """Hit, miss and situation lookups in a cache holding `entries` plans."""
    rng = random.Random(7)
    snaps = bench_data.agents(entries)
    tier = Tier.simplified_llm.value
    keys = [cache_key(MODEL, tier, OPTIONS, f"block {s.me.id}") for s in snaps]
    similar = [situation_key(MODEL, tier, OPTIONS, s) for s in snaps]
    exact: PlanCache[int] = PlanCache(entries)
    fuzzy: PlanCache[int] = PlanCache(entries)
    for i, (k, sk) in enumerate(zip(keys, similar, strict=True)):
        exact.put(k, i)
        fuzzy.put(k, i, sk)
    missing = [cache_key(MODEL, tier, OPTIONS, f"absent {i}") for i in range(lookups)]
    picks = [rng.randrange(entries) for _ in range(lookups)]

    def accept(v: int) -> int:
        return v

    part = functools.partial
    cases: dict[str, list[Callable[[], object]]] = {
        "hit": [part(exact.lookup, keys[i]) for i in picks],
        "miss": [part(exact.lookup, k) for k in missing],
        "situation hit": [
            part(fuzzy.lookup, missing[j], similar[i], accept) for j, i in enumerate(picks)
        ],
        "exact key (sha256)": [
            part(cache_key, MODEL, tier, OPTIONS, f"block {snaps[i].me.id}") for i in picks
        ],
        "situation key": [part(situation_key, MODEL, tier, OPTIONS, snaps[i]) for i in picks],
    }
    rows = []
    for name, calls in cases.items():
        _timed_calls(calls[:1000])  # warm-up
        us = _timed_calls(calls)
        rows.append(
            {
                "case": name,
                "entries": entries,
                "p50_us": percentile(us, 50),
                "p95_us": percentile(us, 95),
            }
        )
    assert len(exact) == entries
    return rows


def prompts(agents: Sequence[int] = (1, 10, 100), repeats: int = 5) -> list[dict[str, Any]]:
    """build_batch_prompt for N agents, per agent."""
    rows = []
    for n in agents:
        snaps = bench_data.agents(n)
        loops = max(1, 200 // n)

        def run(snaps: tuple[Any, ...] = snaps, loops: int = loops) -> None:
            for _ in range(loops):
                build_batch_prompt(snaps, Tier.simplified_llm)

        run()
        seconds = _best_of(repeats, run) / loops
        parts = build_batch_prompt(snaps, Tier.simplified_llm)
        rows.append(
            {
                "agents": n,
                "us_per_agent": seconds / n * 1e6,
                "user_chars_per_agent": len(parts.user) / n,
            }
        )
    return rows


def prompt_sizes(turns: int = 20) -> list[dict[str, Any]]:
    """Characters sent, over every agent of `turns` seeded turns of village: the single-agent
    prompt per tier, and what each agent adds to a batch; as a match sends them (the
    terrain near each agent, intents asked for), and bare (neither)."""
    rows = []
    rounds = bench_data.played_rounds("village", turns)
    grid = bench_data.grid_of("village")
    for tier, sent in itertools.product((Tier.simplified_llm, Tier.full_llm), (True, False)):
        build = functools.partial(
            build_batch_prompt, tier=tier, grid=grid if sent else None, intent=sent
        )
        singles = [prompt_chars(build((s,))) for r in rounds for s in r]
        added = [
            (prompt_chars(build(r)) - prompt_chars(build(r[:1]))) / (len(r) - 1)
            for r in rounds
            if len(r) > 1
        ]
        rows.append(
            {
                "tier": tier.value,
                "prompt": "terrain+intent" if sent else "bare",
                "agents_seen": len(singles),
                "single_max": max(singles),
                "single_mean": statistics.fmean(singles),
                "system_chars": len(build(rounds[0][:1]).system),
                "per_agent_max": max(added),
                "per_agent_mean": statistics.fmean(added),
            }
        )
    return rows


def plan_tokens(turns: int = 20) -> list[dict[str, Any]]:
    """Output tokens per plan in each format, over every agent of `turns` seeded turns of
    village: the sim's plans for what each tier's batched prompt shows (the same plans in
    both formats), counted as the sim does (~4 characters a token). `plan` is one plan
    element; `answer` the whole batched answer (wrapper and commas too) per plan."""
    rows = []
    rounds = bench_data.played_rounds("village", turns)
    grid = bench_data.grid_of("village")
    for tier, intent in itertools.product((Tier.simplified_llm, Tier.full_llm), (True, False)):
        for form in PLAN_FORMATS:
            plans = answer_chars = element_chars = 0
            for k, rnd in enumerate(rounds):
                parts = build_batch_prompt(rnd, tier, fmt=form, grid=grid, intent=intent)
                tools = offered_tools(parts.system)
                agents = decode_agents(parts.user)
                composed = compose_plans(
                    [a.snap for a in agents],
                    random.Random(k),
                    tools,
                    terrains=[a.terrain for a in agents],
                    intent=asks_intent(parts.system),
                )
                reply = serialise(composed, form)
                starts = [len('{"plans":[')] + [end + 2 for _, end in reply.plan_ends[:-1]]
                element_chars += sum(
                    end + 1 - start for start, (_, end) in zip(starts, reply.plan_ends, strict=True)
                )
                answer_chars += len(reply.text)
                plans += len(composed)
            rows.append(
                {
                    "tier": tier.value,
                    "format": form,
                    "intent": intent,
                    "plans": plans,
                    "chars_per_plan": element_chars / plans,
                    "tokens_per_plan": element_chars / plans / CHARS_PER_TOKEN,
                    "answer_tokens_per_plan": answer_chars / plans / CHARS_PER_TOKEN,
                }
            )
    return rows


def run_all(quick: bool = False) -> dict[str, list[dict[str, Any]]]:
    return {
        "parser": parser(repeats=2 if quick else 5),
        "cache": cache(lookups=5_000 if quick else 20_000),
        "prompts": prompts(repeats=2 if quick else 5),
        "prompt_sizes": prompt_sizes(),
        "plan_tokens": plan_tokens(),
    }


def render(micro: dict[str, list[dict[str, Any]]]) -> str:
    parser_rows = [
        [
            r["format"],
            str(r["agents"]),
            str(r["tokens"]),
            fmt(r["us_per_token"], 2),
            fmt(r["us_per_agent"], 1),
            fmt(r["mb_per_s"], 2),
        ]
        for r in micro["parser"]
    ]
    cache_rows = [
        [r["case"], str(r["entries"]), fmt(r["p50_us"], 2), fmt(r["p95_us"], 2)]
        for r in micro["cache"]
    ]
    prompt_rows = [
        [str(r["agents"]), fmt(r["us_per_agent"], 1), fmt(r["user_chars_per_agent"], 0)]
        for r in micro["prompts"]
    ]
    size_rows = [
        [
            r["tier"],
            r["prompt"],
            str(r["agents_seen"]),
            str(r["single_max"]),
            fmt(r["single_mean"], 0),
            str(r["system_chars"]),
            fmt(r["per_agent_max"], 0),
            fmt(r["per_agent_mean"], 0),
        ]
        for r in micro["prompt_sizes"]
    ]
    simplified, full = (r for r in micro["prompt_sizes"] if r["prompt"] == "terrain+intent")
    ratio = simplified["single_max"] / full["single_max"]
    verbose = {
        (r["tier"], r["intent"]): r["tokens_per_plan"]
        for r in micro["plan_tokens"]
        if r["format"] == "verbose"
    }
    token_rows = [
        [
            r["tier"],
            r["format"],
            "on" if r["intent"] else "off",
            str(r["plans"]),
            fmt(r["chars_per_plan"], 1),
            fmt(r["tokens_per_plan"], 1),
            fmt(r["answer_tokens_per_plan"], 1),
            fmt(r["tokens_per_plan"] / verbose[r["tier"], r["intent"]], 2),
        ]
        for r in micro["plan_tokens"]
    ]
    return "\n\n".join(
        [
            "Stream parser (answer fed in ~4-char tokens)\n"
            + table(("format", "agents", "tokens", "us/token", "us/agent", "MB/s"), parser_rows),
            "Prompt cache lookups\n" + table(("lookup", "entries", "p50 us", "p95 us"), cache_rows),
            "Prompt building (simplified tier)\n"
            + table(("agents", "us/agent", "prompt chars/agent"), prompt_rows),
            "Prompt sizes, 20 seeded turns of village (characters; limits: single simplified "
            f"<= {SINGLE_PROMPT_LIMIT}, each agent added <= 220)\n"
            + table(
                (
                    "tier",
                    "prompt",
                    "agents",
                    "single max",
                    "single mean",
                    "system",
                    "per agent max",
                    "per agent mean",
                ),
                size_rows,
            )
            + f"\nsimplified / full (largest single prompts): {ratio:.3f}",
            "Output tokens per plan by plan format, 20 seeded turns of village (the sim's"
            " plans, ~4 chars/token; answer = whole batched answer per plan)\n"
            + table(
                (
                    "tier",
                    "format",
                    "intent",
                    "plans",
                    "chars/plan",
                    "tokens/plan",
                    "answer",
                    "x verbose",
                ),
                token_rows,
            ),
        ]
    )
