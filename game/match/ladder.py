"""Win rates of the LLM squad against the rule planner, by sim preset:
`python -m game.match.ladder` (the older, smaller table; `python -m game.ladder` plays
any matchup with sides swapped and flipped maps, Wilson intervals, resume and a chart).

Every match is a headless match on the simulated LLM's virtual clock (deterministic: the
same arguments give the same table). For each scenario, seed, side (the LLM plays red
against the rule planner's blue, then blue against its red), start tier and sim preset,
one match; the table gives the LLM squad's win rate (draws, and its mean margin of units
alive at the end) per cell, and how far each
preset's win rate is from `instant`'s (a server with no latency at all), which is what
planning latency costs.

    python -m game.match.ladder --seeds 20 --presets gpu instant --tiers simplified full
    python -m game.match.ladder --seeds 20 --no-interim   # the old pacing
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from game.ladder.stats import wilson
from game.match.cli import (
    SIM_PRESETS,
    TIERS,
    OneLineParser,
    add_game_flags,
    build_parser,
    game_flags,
)
from game.match.launch import build, read_cache
from game.match.maps import load
from game.match.planlog import percentile

SIDES = ("red", "blue")
"""The LLM's squad; the other is the rule planner's."""


@dataclass(frozen=True)
class Entry:
    scenario: str
    seed: int
    llm: str
    tier: str
    preset: str
    flags: tuple[str, ...] = ()
    turns: int | None = None


@dataclass(frozen=True)
class Outcome:
    entry: Entry
    winner: str
    margin: int
    """Units the LLM squad has alive at the end minus the rule planner's."""
    act_waits_ms: tuple[float, ...] = ()
    """Turn start -> acting on an LLM plan, per LLM plan applied."""
    cache_lookups: tuple[int, int] = (0, 0)
    """Cache hits and misses."""


def play(entry: Entry) -> Outcome:
    """One headless match on the sim's virtual clock."""
    other = "blue" if entry.llm == "red" else "red"
    argv = [
        "--headless",
        "--backend",
        "sim",
        "--scenario",
        entry.scenario,
        "--seed",
        str(entry.seed),
        f"--{entry.llm}",
        "llm",
        f"--{other}",
        "heuristic",
        "--sim-preset",
        entry.preset,
        "--tier",
        entry.tier,
        *entry.flags,
    ]
    if entry.turns is not None:
        argv += ["--turns", str(entry.turns)]
    args = build_parser().parse_args(argv)
    session = build(args, load(entry.scenario), window=False).session
    try:
        session.run_to_end()
    finally:
        session.close()
    alive = session.world.alive_counts()
    summary = session.result_summary()
    return Outcome(
        entry,
        session.winner or "draw",
        alive[entry.llm] - alive[other],
        tuple(session.act_waits_ms),
        (summary["cache_hits"], summary["cache_misses"]),
    )


def waits_line(outcomes: Sequence[Outcome]) -> str:
    """act_wait and the cache's hit rate over every match, one line per preset."""
    lines = []
    for preset in dict.fromkeys(o.entry.preset for o in outcomes):
        mine = [o for o in outcomes if o.entry.preset == preset]
        waits = [w for o in mine for w in o.act_waits_ms]
        hits = sum(o.cache_lookups[0] for o in mine)
        lookups = hits + sum(o.cache_lookups[1] for o in mine)
        avg = f"{sum(waits) / len(waits):.0f}" if waits else "-"
        p50, p95 = percentile(waits, 50), percentile(waits, 95)
        lines.append(
            f"{preset}: act_wait (turn start -> acting on an LLM plan) avg {avg} ms, "
            f"p50 {'-' if p50 is None else f'{p50:.0f}'} ms, "
            f"p95 {'-' if p95 is None else f'{p95:.0f}'} ms; "
            f"cache hit rate {hits / lookups if lookups else 0:.0%} ({hits}/{lookups})"
        )
        won = sum(o.winner == o.entry.llm for o in mine)
        low, high = wilson(won, len(mine))
        lines.append(
            f"{preset}: LLM wins, both sides, every map: {won}/{len(mine)} "
            f"({won / len(mine):.1%}, 95% interval {low:.1%}-{high:.1%})"
        )
    return "\n".join(lines)


def entries(
    scenarios: Sequence[str],
    seeds: Iterable[int],
    tiers: Sequence[str],
    presets: Sequence[str],
    flags: tuple[str, ...] = (),
    turns: int | None = None,
) -> list[Entry]:
    return [
        Entry(scenario, seed, llm, tier, preset, flags, turns)
        for tier in tiers
        for llm in SIDES
        for scenario in scenarios
        for preset in presets
        for seed in seeds
    ]


def table(outcomes: Sequence[Outcome], presets: Sequence[str]) -> str:
    """A Markdown table: one row per tier, side and scenario (and their totals), one
    column per preset with the LLM's win rate, its draws and its mean margin of units
    alive at the end (finer than the win rate when one side nearly always wins), and each
    preset's win-rate gap to instant."""
    wins: Counter[tuple[str, str, str, str]] = Counter()
    draws: Counter[tuple[str, str, str, str]] = Counter()
    games: Counter[tuple[str, str, str, str]] = Counter()
    margin: Counter[tuple[str, str, str, str]] = Counter()
    rows: list[tuple[str, str, str]] = []
    for o in outcomes:
        e = o.entry
        for scenario in (e.scenario, "all"):
            key = (e.tier, e.llm, scenario, e.preset)
            games[key] += 1
            wins[key] += o.winner == e.llm
            draws[key] += o.winner == "draw"
            margin[key] += o.margin
            if (e.tier, e.llm, scenario) not in rows:
                rows.append((e.tier, e.llm, scenario))
    rows.sort(key=lambda r: (r[0], SIDES.index(r[1]), r[2] == "all"))
    gaps = [p for p in presets if p != "instant"] if "instant" in presets else []
    head = ["tier", "LLM plays", "scenario"]
    head += [f"{p}: LLM wins (draws), alive margin" for p in presets]
    head += [f"{p} - instant" for p in gaps]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def rate(key: tuple[str, str, str, str]) -> float:
        return 100 * wins[key] / games[key] if games[key] else 0.0

    for tier, llm, scenario in rows:
        cells = [tier, f"{llm} vs heuristic", f"**{scenario}**" if scenario == "all" else scenario]
        for p in presets:
            key = (tier, llm, scenario, p)
            n = games[key]
            cells.append(f"{rate(key):.0f}% ({draws[key]}), {margin[key] / n:+.1f}" if n else "-")
        for p in gaps:
            diff = rate((tier, llm, scenario, p)) - rate((tier, llm, scenario, "instant"))
            cells.append(f"{diff:+.0f} pts")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_ladder_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m game.match.ladder",
        description="LLM squad vs the rule planner: win rates by sim preset, both sides.",
    )
    p.add_argument("--seeds", type=int, default=20, metavar="N", help="seeds 0..N-1 (20)")
    p.add_argument("--scenarios", nargs="+", default=["skirmish", "village", "siege"])
    p.add_argument("--presets", nargs="+", choices=SIM_PRESETS, default=["gpu", "instant"])
    p.add_argument("--tiers", nargs="+", choices=TIERS, default=["simplified", "full"])
    p.add_argument("--turns", type=int, default=None, metavar="N", help="default: the map's")
    p.add_argument("--no-interim", action="store_true", help="as the match flag")
    p.add_argument("--no-plan-ahead", action="store_true", help="as the match flag")
    p.add_argument(
        "--cache",
        default="on",
        metavar="on|off|PATH",
        help="the prompt cache: on (each match starts empty; the default), off, or a file "
        "saved by --cache-save that every match starts from (warm)",
    )
    add_game_flags(p)
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="processes (all CPUs)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_ladder_parser()
    args = parser.parse_args(argv)
    flags = game_flags(parser, args.flags) + tuple(
        flag
        for flag, on in (("--no-interim", args.no_interim), ("--no-plan-ahead", args.no_plan_ahead))
        if on
    )
    if args.cache == "off":
        flags += ("--no-cache",)
    elif args.cache != "on":
        read_cache(args.cache)  # a bad file: one line and exit 2 here, not in every worker
        flags += ("--cache-load", args.cache)
    todo = entries(args.scenarios, range(args.seeds), args.tiers, args.presets, flags, args.turns)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(play, todo, chunksize=4))
    pacing = " ".join(flags) or "the defaults"
    print(f"{len(outcomes)} matches, {args.seeds} seeds per map and cell; pacing: {pacing}")
    print(table(outcomes, args.presets))
    print(waits_line(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
