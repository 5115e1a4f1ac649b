"""The seed documents' targets, measured in play: `python -m planner.bench.targets`.

For each map, headless matches on the sim's virtual clock (deterministic: the same
arguments give the same table), seeds 0..N-1, each match starting with an empty cache as
the game does by default; `--warm` plays them one after another like a player's evenings,
each match starting with the cache the previous one left (what `--cache-save` and
`--cache-load` carry between games). The table puts each figure beside its target:

- cache hit rate (hits / lookups; an adapted situation hit is a hit, a rejected one a
  miss, and so is an agent asked afresh because it is still in the situation of the
  cached plan it was last given: refreshed) >= 30%;
- beside it, the lookups whose situation the match had not looked up before: on an empty
  cache each one misses, so 1 - new / lookups is the most a cold cache could hit (with
  the situation key as it is; a coarser one raises it and fits plans less well);
- fallback rate (plans not from an LLM tier) < 20%;
- act_wait (a turn's start -> the tick its agent starts acting on an LLM plan: 0 for a
  plan made ahead or a cache hit in place) average < 200 ms and p95 < 500 ms; beside it,
  a second figure, act_wait from the second turn on (the first turn's round cannot start
  ahead of it, and its misses wait for the LLM).

    python -m planner.bench.targets                      # the defaults, gpu, 10 seeds
    python -m planner.bench.targets --warm --seeds 10
    python -m planner.bench.targets --flags="--no-opening"   # any `python -m game` flags
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from game.match.cli import OneLineParser, add_game_flags, build_parser, game_flags
from game.match.launch import build
from game.match.maps import load
from planner.bench.stats import fmt, mean, percentile, table
from planner.cache_store import dump_cache, load_into, parse_cache
from planner.fallback import LLM_TIERS

TARGET_HIT_RATE = 0.30
TARGET_FALLBACK = 0.20
TARGET_WAIT_AVG_MS = 200.0
TARGET_WAIT_P95_MS = 500.0


@dataclass
class MapFigures:
    scenario: str
    matches: int = 0
    llm_wins: int = 0
    hits: int = 0
    misses: int = 0
    adapted: int = 0
    rejected: int = 0
    refreshed: int = 0
    new_situations: int = 0
    """Lookups of a situation the match had not looked up before (cold: each one misses)."""
    plans: int = 0
    llm_plans: int = 0
    act_waits: list[float] = field(default_factory=list)
    later_act_waits: list[float] = field(default_factory=list)
    """act_wait from the second turn on: the first turn's round cannot start ahead."""
    plan_waits: list[float] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    @property
    def hit_ceiling(self) -> float:
        """The most a cold cache could hit: every lookup but the first of each situation."""
        lookups = self.hits + self.misses
        return 1 - self.new_situations / lookups if lookups else 0.0

    @property
    def fallback_rate(self) -> float:
        return 1 - self.llm_plans / self.plans if self.plans else 0.0

    def met(self) -> dict[str, bool]:
        return {
            "hit rate": self.hit_rate >= TARGET_HIT_RATE,
            "fallback": self.fallback_rate < TARGET_FALLBACK,
            "act_wait avg": mean(self.act_waits) < TARGET_WAIT_AVG_MS,
            "act_wait p95": percentile(self.act_waits, 95) < TARGET_WAIT_P95_MS,
        }


def play_map(
    scenario: str, seeds: Sequence[int], flags: Sequence[str], *, warm: bool
) -> MapFigures:
    """Seeds in order on one map, LLM red against the rule planner's blue."""
    figures = MapFigures(scenario)
    saved: str | None = None
    for seed in seeds:
        argv = ["--headless", "--backend", "sim", "--scenario", scenario, "--seed", str(seed)]
        args = build_parser().parse_args([*argv, "--red", "llm", "--blue", "heuristic", *flags])
        launch = build(args, load(scenario), window=False)
        if saved is not None and launch.cache is not None:
            load_into(launch.cache, parse_cache(saved, "the previous match's cache"))
        session = launch.session
        try:
            session.run_to_end()
        finally:
            session.close()
        if warm and launch.cache is not None:
            saved = dump_cache(launch.cache)
        summary = session.result_summary()
        figures.matches += 1
        figures.llm_wins += session.winner == "red"
        figures.hits += summary["cache_hits"]
        figures.misses += summary["cache_misses"]
        figures.adapted += summary["cache_adapted"]
        figures.rejected += summary["cache_rejected"]
        figures.refreshed += summary["cache_refreshed"]
        figures.new_situations += summary["cache_new_situations"]
        figures.plans += summary["plans"]
        figures.llm_plans += sum(summary["plans_by_tier"][t.value] for t in LLM_TIERS)
        figures.act_waits += session.act_waits_ms
        figures.later_act_waits += [
            w for w, t in zip(session.act_waits_ms, session.act_wait_turns, strict=True) if t > 0
        ]
        figures.plan_waits += list(session.log.samples["plan_wait"])
    return figures


def render(rows: Sequence[MapFigures]) -> str:
    headers = [
        "map",
        "matches",
        "LLM wins",
        "cache hit rate (>= 30%)",
        "adapted / rejected / refreshed",
        "new situations (cold ceiling)",
        "fallback (< 20%)",
        "act_wait avg (< 200 ms)",
        "act_wait p50",
        "act_wait p95 (< 500 ms)",
        "from turn 1: act_wait avg / p95",
        "plan_wait p50 / p95",
        "targets met",
    ]
    lines = []
    for f in rows:
        met = f.met()
        lines.append(
            [
                f.scenario,
                str(f.matches),
                f"{f.llm_wins}/{f.matches}",
                f"{f.hit_rate:.0%} ({f.hits}/{f.hits + f.misses})",
                f"{f.adapted} / {f.rejected} / {f.refreshed}",
                f"{f.new_situations} ({f.hit_ceiling:.0%})",
                f"{f.fallback_rate:.1%}",
                f"{fmt(mean(f.act_waits), 0)} ms",
                f"{fmt(percentile(f.act_waits, 50), 0)} ms",
                f"{fmt(percentile(f.act_waits, 95), 0)} ms",
                f"{fmt(mean(f.later_act_waits), 0)} / "
                f"{fmt(percentile(f.later_act_waits, 95), 0)} ms",
                f"{fmt(percentile(f.plan_waits, 50), 0)} / "
                f"{fmt(percentile(f.plan_waits, 95), 0)} ms",
                f"{sum(met.values())}/4"
                + (
                    ""
                    if all(met.values())
                    else f" (not: {', '.join(k for k, v in met.items() if not v)})"
                ),
            ]
        )
    return table(headers, lines)


def build_targets_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m planner.bench.targets",
        description="Cache hit rate, fallback rate and act_wait per map beside the targets.",
    )
    p.add_argument("--seeds", type=int, default=10, metavar="N", help="seeds 0..N-1 (10)")
    p.add_argument("--scenarios", nargs="+", default=["skirmish", "village", "siege"])
    p.add_argument(
        "--warm",
        action="store_true",
        help="each match starts with the cache the one before left (default: empty, as the "
        "game starts)",
    )
    add_game_flags(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_targets_parser()
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    flags = game_flags(parser, args.flags)
    rows = [play_map(s, range(args.seeds), flags, warm=args.warm) for s in args.scenarios]
    start = (
        "warm (each match starts with the last one's cache)"
        if args.warm
        else "cold (each match starts empty, as the game does)"
    )
    print(
        f"gpu sim preset unless --flags says otherwise; seeds 0..{args.seeds - 1} per map; "
        f"cache {start}; flags: {' '.join(flags) or '(defaults)'}"
    )
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
