"""From command-line arguments to a running Session: backend, planner, controllers.

The one place that decides how a match is timed: the built-in sim in a headless match
runs on a virtual clock (deterministic, no waiting) unless `--realtime`; a real server,
and the window, always run on the wall clock with the planner's background thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio

from game.match.cli import CONTROLLERS, LLM, PROG, fail
from game.match.controllers import Controller, controller_rng
from game.match.files import write_whole
from game.match.otel import otlp_observer
from game.match.pacing import Pacing
from game.match.planlog import KEY_REFUSED_STATUSES, key_refused_line
from game.match.record import (
    RECORD_VERSION,
    HeaderLine,
    MatchRecordError,
    RecordedPlans,
    Recorder,
    load_record,
    recorded_settings,
)
from game.match.session import MatchConfig, MatchObserver, Planning, PlanOrigin, Session
from game.rules.scenarios import SQUADS, Scenario
from game.rules.steps import Step
from planner.backends.base import Backend
from planner.backends.http_edge import has_userinfo
from planner.backends.replay import ReplayBackend
from planner.backends.select import choose_backend
from planner.cache import PlanCache
from planner.cache_store import (
    MAX_CACHE_FILE_CHARS,
    CacheFileError,
    dump_cache,
    load_into,
    parse_cache,
)
from planner.clock import Clock, MonotonicClock, VirtualClock
from planner.config import PlannerConfig
from planner.core import CachedPlan, PlanningRound
from planner.errors import ConfigError
from planner.events import PlanEvent, ResponseEnded
from planner.fallback import Tier
from planner.service import Planner, PlannerService, VirtualPlanner
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig

TIER_NAMES = {"simplified": Tier.simplified_llm, "full": Tier.full_llm}


@dataclass(frozen=True)
class Launch:
    session: Session
    backend: Backend | None
    backend_reason: str
    virtual: bool
    record_hash: str | None = None
    """A replay's expected final state_hash (the record's)."""
    cache: PlanCache[CachedPlan] | None = None
    """The planner's prompt cache (what --cache-save writes), if the match has a planner."""


def planner_settings(args: argparse.Namespace) -> PlannerSettings:
    return PlannerSettings(
        mode=args.mode,
        stream=not args.no_stream,
        cache=not args.no_cache,
        start_tier=TIER_NAMES[args.tier],
        budget_ms=args.budget_ms,
        concurrency=args.concurrency,
        similarity=args.cache_similar,
        situation_near=args.situation_buckets[0],
        situation_hp_bands=args.situation_buckets[1],
        situation_enemies=args.situation_buckets[2],
        situation_allies=args.situation_buckets[3],
        plan_format=args.plan_format,
        intent=not args.no_intent,
        think=args.think,
        think_tokens=args.think_budget,
    )


def planner_config(env: Mapping[str, str]) -> PlannerConfig:
    """The planner's `LLM_*` variables, checked before any planner thread starts: a bad
    one is a one-line exit 2 naming the variable and what it accepts."""
    try:
        return PlannerConfig.from_env(env)
    except ConfigError as exc:
        fail(exc.message)


def pacing(args: argparse.Namespace) -> Pacing:
    return Pacing(
        interim=not args.no_interim, plan_ahead=args.plan_ahead, opening=not args.no_opening
    )


def _sim_factory(args: argparse.Namespace, clock: Clock) -> Callable[[], Backend]:
    faults = FaultConfig.uniform(args.faults) if args.faults else None

    def make() -> Backend:
        return SimBackend.create(
            args.sim_preset,
            args.seed,
            clock,
            num_parallel=args.num_parallel,
            faults=faults,
            persona=args.persona,
        )

    return make


def choose(args: argparse.Namespace, clock: Clock) -> tuple[Backend, str]:
    """The backend the arguments ask for; a one-line exit if it cannot be had."""
    _credentials_note(args, os.environ)
    try:
        return anyio.run(
            lambda: choose_backend(
                args.backend,
                args.url,
                args.model,
                os.environ,
                make_sim=_sim_factory(args, clock),
                profile=args.profile,
            )
        )
    except ConfigError as exc:
        fail(exc.message)


def fault_control(backend: Backend) -> Callable[[float], None] | None:
    if not isinstance(backend, SimBackend):
        return None
    sim = backend.sim

    def set_rate(rate: float) -> None:
        sim.faults = FaultConfig.uniform(rate) if rate > 0 else FaultConfig.none()

    return set_rate


PLAYER = "player"


class KeyRefusedNotice:
    """Says at once on stderr, once per match, that the server refused the API key."""

    def __init__(self) -> None:
        self.said = False

    def on_round_submitted(self, tick: int, planning: PlanningRound) -> None:
        pass

    def on_event(self, event: PlanEvent) -> None:
        if (
            not self.said
            and isinstance(event, ResponseEnded)
            and event.error_status in KEY_REFUSED_STATUSES
        ):
            self.said = True
            print(f"{PROG}: error: {key_refused_line(event.error_status)}", file=sys.stderr)

    def on_plan_applied(
        self, tick: int, unit_id: int, steps: tuple[Step, ...], source: PlanOrigin
    ) -> None:
        pass

    def on_match_end(self, tick: int, winner: str, state_hash: str) -> None:
        pass


def _credentials_note(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Credentials in the server URL are dropped (never sent, shown or recorded): say so."""
    name = "--url"
    value = args.url
    if not value:
        name = "OPENAI_BASE_URL" if args.backend == "openai" else "OLLAMA_HOST"
        value = env.get(name, "")
    if value and has_userinfo(value):
        print(
            f"{PROG}: note: the user:password in {name} is ignored (never sent nor shown); "
            "an OpenAI-compatible server gets OPENAI_API_KEY as a Bearer token",
            file=sys.stderr,
        )


def blue_owner(args: argparse.Namespace, *, window: bool) -> str:
    """Who plans blue: as asked; else the player in the window, the rule planner headless."""
    if args.blue is not None:
        return str(args.blue)
    return PLAYER if window else "heuristic"


def _controllers(owners: dict[str, str], seed: int) -> dict[str, Controller]:
    return {
        squad: CONTROLLERS[owner](controller_rng(seed, squad))
        for squad, owner in owners.items()
        if owner in CONTROLLERS
    }


def _recording(
    args: argparse.Namespace,
    config: MatchConfig,
    owners: dict[str, str],
    settings: PlannerSettings,
    backend: Backend | None,
) -> tuple[MatchObserver, ...]:
    """The session's observers: a recorder with its header written if `--record`, else none."""
    if not args.record:
        return ()
    scenario = config.scenario
    try:
        map_text = Path(scenario.source).read_text("utf-8")
        recorder = Recorder(args.record)
    except OSError as exc:
        fail(f"cannot record to {args.record}: {exc.strerror or exc}")
    if backend is not None:
        # The format the match asks for, not `auto`: a replay (whose backend is the
        # record) asks the same way, so its prompts are the recorded ones.
        settings = settings.with_(plan_format=settings.plan_format_for(backend.capabilities))
    settings_data = {**dataclasses.asdict(settings), "start_tier": settings.start_tier.value}
    recorder.header(
        HeaderLine(
            kind="header",
            version=RECORD_VERSION,
            scenario=scenario.name,
            map_text=map_text,
            seed=config.seed,
            turn_limit=config.turn_limit,
            owners=owners,
            settings=settings_data,
            backend=backend.name if backend is not None else "none",
            model=backend.model if backend is not None else "none",
            pacing=dataclasses.asdict(pacing(args)),
            capabilities=dataclasses.asdict(backend.capabilities) if backend is not None else {},
        )
    )
    return (recorder,)


def _otel(args: argparse.Namespace, backend: Backend) -> tuple[MatchObserver, ...]:
    """`--otel`: the OpenTelemetry observer (exit 2 naming the extra when missing)."""
    if not getattr(args, "otel", False):
        return ()
    profile = getattr(backend, "profile", None)
    provider = profile.name if profile is not None else backend.name
    try:
        return (otlp_observer(provider, backend.model),)
    except ConfigError as exc:
        fail(exc.message)


def build_replay(args: argparse.Namespace, *, window: bool) -> Launch:
    """A session that plays a record again: recorded streams stand in for the server."""
    try:
        record = load_record(args.replay)
        header = record.header
        scenario = record.scenario
        settings = recorded_settings(header)
        # records older than the opening started at the first tick
        recorded_pacing = Pacing(**{"opening": False, **header.pacing})
    except MatchRecordError as exc:
        fail(str(exc))
    except (TypeError, ValueError, KeyError) as exc:
        fail(f"{args.replay}:1: bad settings in the record header ({exc})")
    if record.end is not None and record.end.digest is None:
        print(
            f"replay: {args.replay} has no digest (an older record): its streams and "
            "snapshots are not checked",
            file=sys.stderr,
        )
    owners: dict[str, str] = {str(k): str(v) for k, v in header.owners.items()}
    llm_squads = tuple(s for s in SQUADS if owners.get(s) == LLM)
    env_config = planner_config(os.environ) if llm_squads else None
    clock = VirtualClock()
    # a match that started warm replays its hits only from the same saved cache
    warm = read_cache(args.cache_load) if args.cache_load else []

    def replay_planner() -> VirtualPlanner:
        backend = ReplayBackend(
            record.responses,
            clock,
            model=header.model,
            source=args.replay,
            capabilities=record.capabilities,
        )
        planner = VirtualPlanner(
            backend,
            settings,
            clock,
            seed=header.seed,
            config=env_config,
            schedules=record.schedules,
            replaying=settings.mode == "auto",
        )
        load_into(planner.core.cache, warm)
        return planner

    planner = replay_planner() if llm_squads else None
    config = MatchConfig(
        scenario,
        header.seed,
        header.turn_limit,
        llm_squads,
        player_squad="blue" if owners.get("blue") == PLAYER else None,
    )
    session = Session(
        config,
        _controllers(owners, header.seed),
        None if planner is None else Planning(planner, clock, renew=replay_planner),
        plans=RecordedPlans(record),
        pacing=recorded_pacing,
    )
    return Launch(
        session,
        None if planner is None else planner.core.backend,
        planner.backend_description if planner else f"replay of {args.replay}",
        virtual=True,
        record_hash=record.end.state_hash if record.end is not None else None,
    )


def build(args: argparse.Namespace, scenario: Scenario, *, window: bool) -> Launch:
    """A session for the window (blue is the player's) or for a headless match."""
    turn_limit = args.turns if args.turns is not None else scenario.turn_limit
    owners = {"red": args.red, "blue": blue_owner(args, window=window)}
    player = "blue" if owners["blue"] == PLAYER else None
    controllers = _controllers(owners, args.seed)
    llm_squads = tuple(s for s in SQUADS if owners[s] == LLM)
    if args.faults and args.backend in ("ollama", "openai"):
        fail("--faults injects faults into the built-in simulated LLM only")
    if args.persona and args.backend in ("ollama", "openai"):
        fail("--persona shapes the built-in simulated LLM only")
    config = MatchConfig(scenario, args.seed, turn_limit, llm_squads, player)
    if not llm_squads:
        observers = _recording(args, config, owners, PlannerSettings(), None)
        session = Session(config, controllers, observers=observers, pacing=pacing(args))
        return Launch(session, None, "no LLM squads", virtual=False)

    env_config = planner_config(os.environ)
    virtual_clock = VirtualClock() if not (window or args.realtime) else None
    backend, reason = choose(args, virtual_clock or MonotonicClock())
    settings = planner_settings(args)
    # the record's file is opened before any planner thread starts (a failure exits 2)
    recording = _recording(args, config, owners, settings, backend)
    planner: Planner
    if virtual_clock is not None and isinstance(backend, SimBackend):
        virtual = VirtualPlanner(
            backend, settings, virtual_clock, seed=args.seed, config=env_config
        )
        planner, cache = virtual, virtual.core.cache
        for observer in recording:
            if isinstance(observer, Recorder):
                virtual.unheard = observer.on_unheard
    else:
        virtual_clock = None
        service = PlannerService(
            backend, settings, seed=args.seed, config=env_config, backend_description=reason
        )
        planner, cache = service, service.core.cache
    warm_from = args.cache_load or _existing(getattr(args, "cache_file", None))
    if warm_from:
        # before the first round: nothing on the planner's loop has touched the cache yet
        load_into(cache, read_cache(warm_from))
    # a server may refuse the key; the built-in sim never does
    notice = () if isinstance(backend, SimBackend) else (KeyRefusedNotice(),)
    exported = _otel(args, backend)
    session = Session(
        config,
        controllers,
        Planning(planner, virtual_clock, fault_control(backend)),
        observers=(*recording, *notice, *exported),
        pacing=pacing(args),
    )
    if args.faults:
        session.fault_rate = args.faults
    return Launch(session, backend, reason, virtual=virtual_clock is not None, cache=cache)


def read_cache(path: str) -> list[tuple[str, str | None, CachedPlan]]:
    """A saved cache's entries; a missing, oversized or malformed file exits 2 in one line."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_CACHE_FILE_CHARS + 1)
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read cache {path}: {getattr(exc, 'strerror', None) or exc}")
    try:
        return parse_cache(text, path)
    except CacheFileError as exc:
        fail(str(exc))


def _existing(path: str | None) -> str | None:
    return path if path is not None and Path(path).exists() else None


def save_cache(args: argparse.Namespace, launch: Launch) -> None:
    """--cache-save (or --cache-file): write the planner's cache once the match is over
    (planner closed), whole or not at all (`write_whole`)."""
    path = getattr(args, "cache_save", None) or getattr(args, "cache_file", None)
    if not path or launch.cache is None:
        return
    try:
        write_whole(path, dump_cache(launch.cache))
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")
