"""`python -m game.match.soak`: play headless matches back to back and watch resident memory.

    python -m game.match.soak [--turns 2000] [--faults 0.2] [--scenario village] [--every 200]

Matches run on the simulated LLM's virtual clock (deterministic, no waiting) with
faults injected at the given rate; a match that ends is restarted (same session,
planner and server state) until the turn count is reached. Resident memory is printed
at the start, every `--every` turns and at the end, then the growth: anything that
piles up per round (events, traces, logs, caches, the sim's records) shows here.

Exit codes: 0 when the growth is within --max-growth-mb (default 20), 1 when not,
2 for bad arguments.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from game.match.cli import OneLineParser
from game.match.cli import build_parser as game_parser
from game.match.launch import build
from game.match.maps import load, names
from game.rules.scenarios import MapError
from game.rules.world import TICKS_PER_TURN

MIB = 1024 * 1024


def rss_bytes() -> int:
    """Resident memory now (Linux: /proc/self/statm); elsewhere the peak from getrusage."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            resident_pages = int(f.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB else


@dataclass
class SoakResult:
    turns: int = 0
    matches: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)
    """(turns played, resident bytes), the first at 0 turns."""

    @property
    def growth_bytes(self) -> int:
        return self.samples[-1][1] - self.samples[0][1] if self.samples else 0


def _sample(result: SoakResult, run: Soak, report: Callable[[str], None]) -> None:
    gc.collect()  # count what is still referenced, not what awaits collection
    rss = rss_bytes()
    result.turns, result.matches = run.turns, run.matches
    result.samples.append((result.turns, rss))
    report(f"turn {result.turns:>6}: rss {rss / MIB:8.1f} MiB ({result.matches} matches)")


class Soak:
    """Headless LLM-vs-heuristic matches, one after another, on one session."""

    def __init__(self, faults: float, scenario: str = "village", *, seed: int = 0) -> None:
        args = game_parser().parse_args(
            ["--headless", "--backend", "sim", "--scenario", scenario, "--seed", str(seed)]
            + (["--faults", str(faults)] if faults else [])
        )
        self.session = build(args, load(scenario), window=False).session
        self.seed = seed
        self.turns = 0
        """Turns played in all (a match's last turn counts once it has started)."""
        self.matches = 0
        self._match_start = 0

    def play(self, turns: int) -> None:
        """Play on until `turns` more turns have been played."""
        target = self.turns + turns
        session = self.session
        while self.turns < target:
            session.step_tick()
            self.turns = self._match_start + -(-session.world.tick // TICKS_PER_TURN)
            if session.finished:
                self.matches += 1
                self._match_start = self.turns
                # A new seed per match: the same match again would be served from the
                # plan cache, and the server (and its faults) would hardly be asked.
                session.restart(seed=self.seed + self.matches)

    def close(self) -> None:
        self.session.close()


def soak(
    turns: int,
    faults: float,
    scenario: str = "village",
    *,
    seed: int = 0,
    every: int = 200,
    report: Callable[[str], None] = print,
) -> SoakResult:
    """Play at least `turns` turns, sampling resident memory every `every` turns."""
    run = Soak(faults, scenario, seed=seed)
    result = SoakResult()
    try:
        _sample(result, run, report)
        while run.turns < turns:
            run.play(min(every - run.turns % every, turns - run.turns))
            _sample(result, run, report)
    finally:
        run.close()
    report(
        f"{result.turns} turns, {result.matches} matches, faults {faults:.0%}: "
        f"rss {result.samples[0][1] / MIB:.1f} -> {result.samples[-1][1] / MIB:.1f} MiB, "
        f"growth {result.growth_bytes / MIB:+.1f} MiB"
    )
    return result


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m game.match.soak",
        description="Headless matches back to back with injected faults; prints resident "
        "memory as they go, to show it stays flat.",
        epilog="Exit codes: 0 growth within bound, 1 growth past it, 2 bad arguments.",
    )
    p.add_argument("--turns", type=int, default=2000, metavar="N", help="turns in all")
    p.add_argument("--faults", type=float, default=0.2, metavar="RATE", help="0..1 (0.2)")
    p.add_argument("--scenario", default="village", metavar="NAME", help="(default: village)")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--every", type=int, default=200, metavar="N", help="print every N turns")
    p.add_argument("--max-growth-mb", type=float, default=20.0, metavar="MB")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.turns <= 0 or args.every <= 0:
        parser.error("--turns and --every must be positive")
    if not 0.0 <= args.faults <= 1.0:
        parser.error(f"--faults must be between 0 and 1, got {args.faults}")
    try:
        load(args.scenario)
    except MapError:
        parser.error(f"unknown scenario {args.scenario!r}; choose from {', '.join(names())}")
    try:
        result = soak(args.turns, args.faults, args.scenario, seed=args.seed, every=args.every)
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    return 0 if result.growth_bytes < args.max_growth_mb * MIB else 1


if __name__ == "__main__":
    sys.exit(main())
