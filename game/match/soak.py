"""`python -m game.match.soak`: play headless matches back to back and watch resident memory.

    python -m game.match.soak [--turns 2000] [--faults 0.2] [--scenario village] [--every 200]
    python -m game.match.soak --realtime [--protocol openai|ollama] [--preset instant|gpu]
                              [--budget-ms 1000] [...]

Matches run on the simulated LLM's virtual clock (deterministic, no waiting) with
faults injected at the given rate; a match that ends is restarted (same session,
planner and server state) until the turn count is reached. Resident memory is printed
at the start, every `--every` turns and at the end, then the growth: anything that
piles up per round (events, traces, logs, caches, the sim's records) shows here.

`--realtime` runs the real thing instead: the threaded `PlannerService` with its HTTP
client, over loopback HTTP to a sim server (`planner.sim.server.SimServer`, in this
process) that injects the faults, on the wall clock. Each turn waits for the planner to
finish its round (every agent has a plan, within --budget-ms) and then plays its ticks
at once, so turns go as fast as the planner answers. Each sample also says the
process's threads, open file descriptors and sockets (from /proc: to the server, of the
server), and at the end, once the planner and the server are closed, what is left.

Exit codes: 0 when the growth is within --max-growth-mb (default 20) and, with
--realtime, the thread count stayed flat, no socket is left open and the planner never
raised; 1 when not; 2 for bad arguments.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import random
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from game.match.cli import OneLineParser
from game.match.cli import build_parser as game_parser
from game.match.controllers import HeuristicController
from game.match.launch import build
from game.match.maps import load, names
from game.match.session import MatchConfig, Planning, PlanOrigin, Session
from game.rules.scenarios import MapError
from game.rules.steps import Step
from game.rules.world import TICKS_PER_TURN
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.core import PlanningRound
from planner.events import AgentFellBack, PlanDelivered, PlanEvent, RoundCancelled, RoundDone
from planner.fallback import LLM_TIERS
from planner.service import PlannerService
from planner.settings import PlannerSettings
from planner.sim.model import FaultConfig
from planner.sim.server import SimServer

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


# ---------------------------------------------------------------------- over real HTTP

ROUND_HANG_S = 30.0
"""How long past its budget a round may take before the soak calls the planner stuck."""


def os_threads() -> int:
    """Threads of this process (Linux: /proc/self/status), else Python's own."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return threading.active_count()


@dataclass(frozen=True)
class Descriptors:
    """This process's open file descriptors, its TCP sockets among them, and which of
    those are connections to a server port and which are that server's own."""

    fds: int
    sockets: int
    to_server: int
    """Client sockets connected to the port (the planner's HTTP connections)."""
    of_server: int
    """Sockets on the port itself (its listener and its side of each connection)."""


def _tcp_ports() -> dict[str, tuple[int, int]]:
    """Socket inode -> (local port, remote port), for this network namespace's TCP."""
    ports: dict[str, tuple[int, int]] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table, encoding="ascii") as f:
                next(f, None)  # the header
                for line in f:
                    cols = line.split()
                    if len(cols) > 9:
                        local = int(cols[1].rsplit(":", 1)[1], 16)
                        remote = int(cols[2].rsplit(":", 1)[1], 16)
                        ports[cols[9]] = (local, remote)
        except (OSError, ValueError, IndexError):
            continue
    return ports


def descriptors(port: int = 0) -> Descriptors | None:
    """Open descriptors of this process now (None where /proc/self/fd is not there)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    inodes: list[str] = []
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor, for one)
        if target.startswith("socket:["):
            inodes.append(target[len("socket:[") : -1])
    ports = _tcp_ports() if port else {}
    of_server = sum(1 for i in inodes if ports.get(i, (0, 0))[0] == port)
    to_server = sum(1 for i in inodes if ports.get(i, (0, 0))[1] == port)
    return Descriptors(len(names), len(inodes), to_server if port else 0, of_server if port else 0)


@dataclass(frozen=True)
class Sample:
    turns: int
    elapsed_s: float
    rss: int
    threads: int
    fds: Descriptors | None


@dataclass
class RealtimeResult:
    turns: int = 0
    matches: int = 0
    elapsed_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    """The first at 0 turns (the server and the planner started, nothing asked yet)."""
    before: Descriptors | None = None
    """Before the server and the planner started."""
    after: Descriptors | None = None
    """Once both are closed."""
    threads_before: int = 0
    threads_after: int = 0
    plans: Counter[str] = field(default_factory=Counter)
    """Plans delivered by tier."""
    causes: Counter[str] = field(default_factory=Counter)
    """Fallback causes of the plans delivered (heuristic_error: the rule planner found
    nothing legal and the emergency plan was given)."""
    planner_errors: int = 0
    """Agents planned by a round's catch-all because the planner raised."""

    @property
    def growth_bytes(self) -> int:
        return self.samples[-1].rss - self.samples[0].rss if self.samples else 0

    @property
    def thread_counts(self) -> list[int]:
        return [s.threads for s in self.samples]

    @property
    def threads_flat(self) -> bool:
        """No more threads at the end of play than once play had begun, and none left
        after closing than before starting."""
        counts = self.thread_counts
        steady = counts[1] if len(counts) > 1 else counts[0]
        return counts[-1] <= steady and self.threads_after <= self.threads_before

    @property
    def sockets_left(self) -> int | None:
        """Sockets open after closing that were not open before starting (None: unknown)."""
        if self.before is None or self.after is None:
            return None
        return max(0, self.after.sockets - self.before.sockets)


class _Watch:
    """Observes the session: which planning rounds are still open, what was delivered."""

    def __init__(self) -> None:
        self.open_rounds: set[int] = set()
        self.plans: Counter[str] = Counter()
        self.causes: Counter[str] = Counter()
        self.planner_errors = 0
        """Agents a round's catch-all had to plan (the planner raised: a bug)."""

    def on_round_submitted(self, tick: int, planning: PlanningRound) -> None:
        self.open_rounds.add(planning.round_id)

    def on_event(self, event: PlanEvent) -> None:
        if isinstance(event, RoundDone | RoundCancelled):
            self.open_rounds.discard(event.round_id)
        elif isinstance(event, AgentFellBack) and event.cause == "heuristic_error":
            self.planner_errors += 1
        elif isinstance(event, PlanDelivered):
            outcome = event.outcome
            self.plans[outcome.tier.value] += 1
            if outcome.tier not in LLM_TIERS and outcome.cause is not None:
                self.causes[outcome.cause] += 1

    def on_plan_applied(
        self, tick: int, unit_id: int, steps: tuple[Step, ...], source: PlanOrigin
    ) -> None:
        pass

    def on_match_end(self, tick: int, winner: str, state_hash: str) -> None:
        pass


class PlannerStuck(RuntimeError):
    """A planning round did not finish long after its budget."""


class RealtimeSoak:
    """LLM-vs-heuristic matches on the wall clock: the threaded planner over loopback
    HTTP to a faulty sim server, each turn as soon as its round is done."""

    def __init__(
        self,
        faults: float,
        scenario: str = "village",
        *,
        seed: int = 0,
        protocol: str = "openai",
        preset: str = "instant",
        budget_ms: float = 1000.0,
    ) -> None:
        self.server = SimServer(
            preset=preset, seed=seed, faults=FaultConfig.uniform(faults) if faults else None
        ).start()
        try:
            model = self.server.sim.model_name
            backend: OpenAIBackend | OllamaBackend = (
                OpenAIBackend(self.server.url, model)
                if protocol == "openai"
                else OllamaBackend(self.server.url, model)
            )
            self.service = PlannerService(backend, PlannerSettings(budget_ms=budget_ms), seed=seed)
        except BaseException:
            self.server.stop()
            raise
        self.budget_s = budget_ms / 1000
        self.watch = _Watch()
        loaded = load(scenario)
        config = MatchConfig(loaded, seed, loaded.turn_limit, ("red",))
        blue = HeuristicController(random.Random(seed))
        self.session = Session(
            config, {"blue": blue}, Planning(self.service), observers=[self.watch]
        )
        self.seed = seed
        self.turns = 0
        self.matches = 0
        self._match_start = 0

    @property
    def port(self) -> int:
        return self.server.port

    def play(self, turns: int) -> None:
        """Play on until `turns` more turns have been played."""
        target = self.turns + turns
        session = self.session
        while self.turns < target:
            turn_start = session.world.tick % TICKS_PER_TURN == 0
            session.step_tick()  # at a turn's start: red's round goes to the planner
            if turn_start:
                self._wait_for_rounds()
            self.turns = self._match_start + -(-session.world.tick // TICKS_PER_TURN)
            if session.finished:
                self.matches += 1
                self._match_start = self.turns
                session.restart(seed=self.seed + self.matches)

    def _wait_for_rounds(self) -> None:
        """Drain the planner's events (never stepping the world) until no round is open."""
        give_up = time.monotonic() + self.budget_s + ROUND_HANG_S
        while self.watch.open_rounds:
            self.session.update(0.0)
            if not self.watch.open_rounds:
                return
            if time.monotonic() > give_up:
                raise PlannerStuck(
                    f"rounds {sorted(self.watch.open_rounds)} still open "
                    f"{self.budget_s + ROUND_HANG_S:.0f} s after they were sent"
                )
            time.sleep(0.0005)

    def close(self) -> None:
        try:
            self.session.close()
        finally:
            self.server.stop()


def _realtime_sample(
    result: RealtimeResult, run: RealtimeSoak, started: float, report: Callable[[str], None]
) -> None:
    gc.collect()
    sample = Sample(
        run.turns, time.monotonic() - started, rss_bytes(), os_threads(), descriptors(run.port)
    )
    previous = result.samples[-1] if result.samples else None
    result.samples.append(sample)
    result.turns, result.matches = run.turns, run.matches
    rate = ""
    if previous is not None and sample.elapsed_s > previous.elapsed_s:
        per_s = (sample.turns - previous.turns) / (sample.elapsed_s - previous.elapsed_s)
        rate = f", {per_s:.1f} turns/s"
    share = _llm_share(run.watch.plans)
    fds = sample.fds
    io = (
        "fds n/a"
        if fds is None
        else f"fds {fds.fds:3d}, sockets {fds.sockets} (to server {fds.to_server}, "
        f"server's {fds.of_server})"
    )
    report(
        f"turn {sample.turns:>6}: rss {sample.rss / MIB:8.1f} MiB, threads {sample.threads}, "
        f"{io}, {sample.elapsed_s:7.1f} s{rate}"
        f"{'' if share is None else f', llm plans {share:.0%}'} ({run.matches} matches)"
    )


def _llm_share(plans: Counter[str]) -> float | None:
    total = sum(plans.values())
    llm = sum(n for tier, n in plans.items() if tier in {t.value for t in LLM_TIERS})
    return llm / total if total else None


def realtime_soak(
    turns: int,
    faults: float,
    scenario: str = "village",
    *,
    seed: int = 0,
    every: int = 200,
    protocol: str = "openai",
    preset: str = "instant",
    budget_ms: float = 1000.0,
    report: Callable[[str], None] = print,
) -> RealtimeResult:
    """Play at least `turns` turns over loopback HTTP, sampling every `every` turns."""
    result = RealtimeResult()
    gc.collect()
    result.before = descriptors()
    result.threads_before = os_threads()
    run = RealtimeSoak(
        faults,
        scenario,
        seed=seed,
        protocol=protocol,
        preset=preset,
        budget_ms=budget_ms,
    )
    report(
        f"realtime soak: {run.service.backend_description} (sim server {preset} at "
        f"{run.server.url}, faults {faults:.0%}), budget {budget_ms:g} ms, {turns} turns"
    )
    started = time.monotonic()
    try:
        _realtime_sample(result, run, started, report)
        while run.turns < turns:
            run.play(min(every - run.turns % every, turns - run.turns))
            _realtime_sample(result, run, started, report)
    finally:
        run.close()
        result.elapsed_s = time.monotonic() - started
        result.plans, result.causes = run.watch.plans, run.watch.causes
        result.planner_errors = run.watch.planner_errors
        gc.collect()
        result.after = descriptors()
        result.threads_after = os_threads()
    share = _llm_share(result.plans) or 0.0
    causes = ", ".join(f"{c} {n}" for c, n in result.causes.most_common()) or "none"
    left = result.sockets_left
    report(
        f"{result.turns} turns, {result.matches} matches in {result.elapsed_s:.1f} s "
        f"({result.turns / max(result.elapsed_s, 1e-9):.1f} turns/s); llm plans {share:.0%}"
        f", fallback causes: {causes}; planner errors: {result.planner_errors}"
    )
    counts = result.thread_counts
    report(
        f"rss {result.samples[0].rss / MIB:.1f} -> {result.samples[-1].rss / MIB:.1f} MiB, "
        f"growth {result.growth_bytes / MIB:+.1f} MiB; threads {min(counts)}..{max(counts)} "
        f"while playing, {result.threads_before} before, {result.threads_after} after "
        f"({'flat' if result.threads_flat else 'NOT flat'}); sockets left open after close: "
        f"{'n/a' if left is None else left}"
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
    p.add_argument(
        "--realtime",
        action="store_true",
        help="the threaded planner over loopback HTTP to a faulty sim server, on the wall "
        "clock; also reports threads, descriptors and sockets",
    )
    p.add_argument(
        "--protocol",
        choices=("openai", "ollama"),
        default="openai",
        help="--realtime: the client and the protocol it speaks (default: openai)",
    )
    p.add_argument(
        "--preset",
        choices=("instant", "gpu"),
        default="instant",
        help="--realtime: the sim server's speed (default: instant)",
    )
    p.add_argument(
        "--budget-ms",
        type=float,
        default=1000.0,
        metavar="MS",
        help="--realtime: each round's budget (default: 1000)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.turns <= 0 or args.every <= 0:
        parser.error("--turns and --every must be positive")
    if not 0.0 <= args.faults <= 1.0:
        parser.error(f"--faults must be between 0 and 1, got {args.faults}")
    if not 0 < args.budget_ms < math.inf:
        parser.error(f"--budget-ms must be a positive number, got {args.budget_ms}")
    try:
        load(args.scenario)
    except MapError:
        parser.error(f"unknown scenario {args.scenario!r}; choose from {', '.join(names())}")
    report = functools.partial(print, flush=True)
    try:
        if args.realtime:
            realtime = realtime_soak(
                args.turns,
                args.faults,
                args.scenario,
                seed=args.seed,
                every=args.every,
                protocol=args.protocol,
                preset=args.preset,
                budget_ms=args.budget_ms,
                report=report,
            )
            return (
                0
                if realtime.growth_bytes < args.max_growth_mb * MIB
                and realtime.threads_flat
                and not realtime.sockets_left
                and not realtime.planner_errors
                else 1
            )
        result = soak(
            args.turns, args.faults, args.scenario, seed=args.seed, every=args.every, report=report
        )
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    except PlannerStuck as exc:
        print(f"soak: the planner is stuck: {exc}", file=sys.stderr)
        return 1
    return 0 if result.growth_bytes < args.max_growth_mb * MIB else 1


if __name__ == "__main__":
    sys.exit(main())
