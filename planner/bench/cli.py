"""`python -m planner.bench`: where the project's performance claims come from.

    python -m planner.bench [--quick] [--agents N] [--preset gpu|mac|cpu|instant]
                            [--num-parallel K] [--rounds R] [--json PATH]
    python -m planner.bench --frames [N]
    python -m planner.bench --stress --agents 100 --duration 30 --hit-rate 0.7 --budget-ms 50
    python -m planner.bench --scale         # every mode, auto and the ideal, 2-200 agents
    python -m planner.bench --backend openai|ollama --url URL --model M   # your server

The default run prints the mode table (every dispatch mode, streaming on and off, on a
server like a default Ollama and one like vLLM, against the sim's physical limit) and
the micro-benchmarks, then checks the targets of docs/BENCHMARKS.md. Progress goes to
stderr, tables to stdout, everything to --json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from planner.backends.base import THINK_CHOICES, Backend
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.backends.profiles import PROFILES
from planner.backends.select import choose_backend
from planner.bench import frames as bench_frames
from planner.bench import micro as bench_micro
from planner.bench import modes as bench_modes
from planner.bench import scale as bench_scale
from planner.bench import stress as bench_stress
from planner.bench.stats import fmt, percentile, table
from planner.errors import ConfigError
from planner.events import MODES
from planner.settings import PlannerSettings
from planner.sim.model import PRESETS

DEFAULT_ROUNDS = 3
QUICK_ROUNDS = 1
DEFAULT_FRAMES = 600


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m planner.bench",
        description="Measure every dispatch mode against the sim's physical limit, the "
        "planner's pure cores, frame time, and throughput under stress.",
    )
    p.add_argument("--quick", action="store_true", help="one round per configuration")
    p.add_argument("--agents", type=int, default=None, metavar="N", help="agents per round")
    p.add_argument("--preset", choices=sorted(PRESETS), default="gpu", help="sim latency")
    p.add_argument(
        "--num-parallel",
        type=int,
        default=None,
        metavar="K",
        help="only this server concurrency (default: 1 like Ollama and 16 like vLLM)",
    )
    p.add_argument("--rounds", type=int, default=None, metavar="R", help="rounds per config")
    p.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    p.add_argument(
        "--frames",
        type=int,
        nargs="?",
        const=DEFAULT_FRAMES,
        default=None,
        metavar="N",
        help=f"frame time of the real UI with planning in flight (default N: {DEFAULT_FRAMES})",
    )
    p.add_argument("--stress", action="store_true", help="the stress harness")
    p.add_argument(
        "--scale",
        action="store_true",
        help="only the scale table: every mode, auto and the ideal split, 2-200 agents",
    )
    p.add_argument("--duration", type=float, default=30.0, metavar="S", help="stress seconds")
    p.add_argument("--hit-rate", type=float, default=0.7, metavar="F", help="stress hit rate")
    p.add_argument("--budget-ms", type=float, default=50.0, metavar="MS", help="stress budget")
    p.add_argument("--mode", choices=MODES, default="batched", help="dispatch mode under stress")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run the sim server on a thread of this process (its thread then competes "
        "with the planner's for the GIL; the default is a child process, like a real server)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--backend",
        choices=("openai", "ollama"),
        default=None,
        help="run the mode table against your own server instead of the sim",
    )
    p.add_argument("--url", default=None, help="your server's URL (with --backend)")
    p.add_argument("--model", default=None, help="the model to ask (with --backend)")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="what your OpenAI-compatible server is, instead of detecting it",
    )
    p.add_argument(
        "--think",
        choices=THINK_CHOICES,
        default="auto",
        help="a reasoning model's thinking on or off, where the server has a switch",
    )
    return p


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------- targets


def _target(
    name: str,
    measured: float,
    limit: float,
    unit: str,
    *,
    at_least: bool = False,
    also: bool = True,
) -> dict[str, Any]:
    """`also`: a condition the figure alone does not show (it must hold as well)."""
    met = (measured >= limit if at_least else measured <= limit) and also
    return {
        "target": name,
        "measured": measured,
        "limit": limit,
        "unit": unit,
        "at_least": at_least,
        "met": met,
    }


def mode_targets(
    modes: list[dict[str, Any]], overheads: dict[bool, list[float]]
) -> list[dict[str, Any]]:
    out = []
    for stream, values in sorted(overheads.items(), reverse=True):
        if values:
            p99 = percentile(values, 99)
            kind = "streaming" if stream else "non-streaming"
            name = f"overhead p99, every plan of the {kind} configs"
            out.append(_target(name, p99, 2.0, "ms"))
    excess = [m["ttfp_excess_ms"] for m in modes if math.isfinite(m["ttfp_excess_ms"])]
    if excess:
        worst = max(excess)
        out.append(_target("ttfp - its limit, worst config", worst, 5.0, "ms"))
    for np in sorted({m["num_parallel"] for m in modes}):
        on = [
            m for m in modes if m["mode"] == "batched" and m["stream"] and m["num_parallel"] == np
        ]
        off = [
            m
            for m in modes
            if m["mode"] == "batched" and not m["stream"] and m["num_parallel"] == np
        ]
        if on and off and off[0]["ttfp_ms"]:
            ratio = on[0]["ttfp_ms"] / off[0]["ttfp_ms"]
            name = f"batched streaming / non-streaming ttfp, np={np}, {on[0]['agents']} agents"
            out.append(_target(name, ratio * 100, 30.0, "%"))
    return out


def micro_targets(micro: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    parser = micro["parser"]
    worst = max(r["us_per_token"] for r in parser)
    by_format: dict[str, list[dict[str, Any]]] = {}
    for row in parser:
        by_format.setdefault(row["format"], []).append(row)
    growth = max(rows[-1]["us_per_token"] / rows[0]["us_per_token"] for rows in by_format.values())
    most, fewest = parser[-1]["agents"], parser[0]["agents"]
    hit = next(r for r in micro["cache"] if r["case"] == "hit")
    return [
        _target("parser cost per token, worst of 10..1000 agents", worst, 10.0, "us"),
        _target(
            f"parser linear: us/token at {most} / at {fewest} agents (worst format)",
            growth,
            1.5,
            "x",
        ),
        _target("cache hit lookup p95, 4096 entries", hit["p95_us"], 20.0, "us"),
    ]


def render_targets(targets: list[dict[str, Any]]) -> str:
    if not targets:
        return "Targets: none measured"
    rows = [
        [
            t["target"],
            f"{fmt(t['measured'], 2)} {t['unit']}",
            f"{'>=' if t['at_least'] else '<='} {fmt(t['limit'], 2)} {t['unit']}",
            "met" if t["met"] else "MISSED",
        ]
        for t in targets
    ]
    return "Targets\n" + table(("target", "measured", "target", ""), rows)


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.agents is not None and args.agents < 1:
        parser.error("--agents must be at least 1")
    if args.num_parallel is not None and args.num_parallel < 1:
        parser.error("--num-parallel must be at least 1")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 0.0 <= args.hit_rate <= 1.0:
        parser.error("--hit-rate must be within 0..1")
    if args.budget_ms <= 0 or args.duration <= 0:
        parser.error("--budget-ms and --duration must be positive")

    if args.backend is None and (args.url or args.model or args.profile):
        parser.error("--url, --model and --profile go with --backend openai|ollama")
    report: dict[str, Any] = {"machine": machine(), "argv": list(argv or sys.argv[1:])}
    targets: list[dict[str, Any]] = []
    started = time.perf_counter()
    if args.backend is not None:
        try:
            make_backend, described = user_backend(args)
        except ConfigError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 2
        rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
        agents = args.agents or 10
        _progress(f"mode table against {described}: {agents} agents, {rounds} round(s) each")
        results = bench_modes.run_user_table(
            make_backend,
            agents=agents,
            rounds=rounds,
            progress=_progress,
            settings=PlannerSettings(think=args.think),
        )
        report["modes"] = [r.summary() for r in results]
        print(
            f"Modes against {described}: {agents} agents, {rounds} round(s) each, cache off"
            " (times in ms; no limit: only the sim says when it sent each plan; overhead:"
            " delivery minus the arrival of the chunk that closed the plan)"
        )
        print(bench_modes.render(results), end="\n\n")
        fallbacks = ", ".join(
            f"{r.config.label} {sum(m.fallbacks for m in r.rounds)}" for r in results
        )
        print(f"Agents without an LLM plan: {fallbacks}", end="\n\n")
        overheads = {
            stream: [o for r in results if r.config.stream == stream for o in r.overheads]
            for stream in (True, False)
        }
        targets.extend(mode_targets([], overheads))  # the planner's own overhead only
    elif args.stress:
        stress = bench_stress.run_stress(
            preset=args.preset,
            agents=args.agents or 100,
            duration_s=args.duration,
            hit_rate=args.hit_rate,
            budget_ms=args.budget_ms,
            mode=args.mode,
            num_parallel=args.num_parallel or 16,
            in_process=args.in_process,
            seed=args.seed,
            progress=_progress,
        )
        report["stress"] = stress
        print(bench_stress.render(stress), end="\n\n")
        rate = stress["plans_per_s"]
        name = f"stress plans/s at {stress['hit_rate']:.0%} hit rate (at least)"
        targets.append(_target(name, rate, 100.0, "plans/s", at_least=True))
    elif args.scale:
        targets.extend(run_scale(report, args.preset, quick=args.quick))
    elif args.frames is not None:
        if args.frames < 1:
            parser.error("--frames must be at least 1")
        _progress(f"frames: running the game's window for {args.frames} frames, twice")
        frames = bench_frames.run_frames(args.frames, args.preset)
        report["frames"] = frames
        print(bench_frames.render(frames), end="\n\n")
        for row in frames:
            name = f"frame time p99, {row['planner']}"
            targets.append(_target(name, row["p99_ms"], 16.7, "ms"))
    else:
        rounds = args.rounds or (QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS)
        agents = args.agents or 10
        servers = (
            (args.num_parallel,)
            if args.num_parallel
            else tuple(np for np, _ in bench_modes.SERVERS)
        )
        _progress(
            f"mode table: preset {args.preset}, {agents} agents, {rounds} round(s) per config,"
            f" servers num_parallel {', '.join(map(str, servers))}"
        )
        results = bench_modes.run_table(
            preset=args.preset,
            agents=agents,
            rounds=rounds,
            servers=servers,
            progress=_progress,
            seed=args.seed,
            in_process=args.in_process,
        )
        summaries = [r.summary() for r in results]
        report["modes"] = summaries
        print(
            f"Modes: preset {args.preset}, {agents} agents, {rounds} round(s) each, cache off"
            " (times in ms; limit = when the sim sent the first / last plan's closing brace)"
        )
        print(bench_modes.render(results), end="\n\n")
        overheads = {
            stream: [o for r in results if r.config.stream == stream for o in r.overheads]
            for stream in (True, False)
        }
        targets.extend(mode_targets(summaries, overheads))
        _progress("micro-benchmarks: parser, cache, prompts")
        micro = bench_micro.run_all(quick=args.quick)
        report["micro"] = micro
        print(bench_micro.render(micro), end="\n\n")
        targets.extend(micro_targets(micro))
        targets.extend(run_scale(report, args.preset, quick=args.quick))
    report["targets"] = targets
    report["seconds"] = time.perf_counter() - started
    print(render_targets(targets))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n", "utf-8")
        _progress(f"wrote {path}")
    _progress(f"done in {report['seconds']:.0f} s")
    return 0


def user_backend(args: argparse.Namespace) -> tuple[Callable[[], Backend], str]:
    """A factory of backends for the user's server, once it has answered (else a
    ConfigError naming why: unreachable, refused key, no such model)."""

    def no_sim() -> Backend:
        raise ConfigError("the sim is not a choice here")

    async def check() -> tuple[Backend, str]:
        return await choose_backend(
            args.backend, args.url, args.model, os.environ, make_sim=no_sim, profile=args.profile
        )

    probe, _ = anyio.run(check)
    anyio.run(probe.aclose)
    if isinstance(probe, OpenAIBackend):
        url, model, profile = probe.url, probe.model, probe.profile.name
        return lambda: OpenAIBackend(url, model, profile=profile), probe.describe()
    if isinstance(probe, OllamaBackend):
        base, name = probe.url, probe.model
        return lambda: OllamaBackend(base, name), probe.describe()
    raise ConfigError(f"unexpected backend {probe.describe()}")


def run_scale(report: dict[str, Any], preset: str, *, quick: bool) -> list[dict[str, Any]]:
    agents = (2, 18, 100) if quick else bench_scale.AGENTS
    _progress(f"scale table: {', '.join(map(str, agents))} agents, virtual time, preset {preset}")
    scale = bench_scale.run_table(preset=preset, agents=agents, progress=_progress)
    report["scale"] = scale
    print(
        f"Scale: preset {preset}, budget {bench_scale.BUDGET_MS:.0f} ms, cache off, virtual time;"
        f" mean of the last {bench_scale.MEASURED} of {bench_scale.ROUNDS} rounds"
        " (time_to_all: to the last LLM plan; in budget: agents with an LLM plan)"
    )
    print(bench_scale.render(scale), end="\n\n")
    return [
        _target(
            f"auto np={row['num_parallel']} agents={row['agents']}: share >= best fixed, "
            f"time <= {bench_scale.FIXED_SLACK:.2f}x best fixed (same share), "
            f"<= {bench_scale.IDEAL_SLACK:.2f}x ideal",
            row["auto_vs_ideal"],
            bench_scale.IDEAL_SLACK,
            "x ideal",
            also=row["auto_ok"],  # the share and best-fixed conditions
        )
        for row in scale
    ]


def _json_default(value: object) -> object:
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
