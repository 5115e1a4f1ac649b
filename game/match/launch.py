"""From command-line arguments to a running Session: backend, planner, controllers.

The one place that decides how a match is timed: the built-in sim in a headless match
runs on a virtual clock (deterministic, no waiting) unless `--realtime`; a real server,
and the window, always run on the wall clock with the planner's background thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from game.match.cli import CONTROLLERS, LLM, fail
from game.match.controllers import Controller, controller_rng
from game.match.record import (
    RECORD_VERSION,
    HeaderLine,
    MatchRecordError,
    RecordedPlans,
    Recorder,
    load_record,
)
from game.match.session import MatchConfig, MatchObserver, Planning, Session
from game.rules.scenarios import SQUADS, MapError, Scenario, parse
from planner.backends.base import Backend
from planner.backends.replay import ReplayBackend
from planner.backends.select import choose_backend
from planner.clock import Clock, MonotonicClock, VirtualClock
from planner.errors import ConfigError
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


def planner_settings(args: argparse.Namespace) -> PlannerSettings:
    return PlannerSettings(
        mode=args.mode,
        stream=not args.no_stream,
        cache=not args.no_cache,
        start_tier=TIER_NAMES[args.tier],
        budget_ms=args.budget_ms,
        concurrency=args.concurrency,
        similarity=args.cache_similar,
        plan_format=args.plan_format,
    )


def _sim_factory(args: argparse.Namespace, clock: Clock) -> Callable[[], Backend]:
    faults = FaultConfig.uniform(args.faults) if args.faults else None

    def make() -> Backend:
        return SimBackend.create(
            args.sim_preset, args.seed, clock, num_parallel=args.num_parallel, faults=faults
        )

    return make


def choose(args: argparse.Namespace, clock: Clock) -> tuple[Backend, str]:
    """The backend the arguments ask for; a one-line exit if it cannot be had."""
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
        )
    )
    return (recorder,)


def build_replay(args: argparse.Namespace, *, window: bool) -> Launch:
    """A session that plays a record again: recorded streams stand in for the server."""
    try:
        record = load_record(args.replay)
        header = record.header
        scenario = parse(header.map_text, args.replay, header.scenario)
        settings = PlannerSettings(
            **{**header.settings, "start_tier": Tier(header.settings["start_tier"])}
        )
    except (MatchRecordError, MapError) as exc:
        fail(str(exc))
    except (TypeError, ValueError, KeyError) as exc:
        fail(f"{args.replay}:1: bad settings in the record header ({exc})")
    owners = dict(header.owners)
    llm_squads = tuple(s for s in SQUADS if owners.get(s) == LLM)
    clock = VirtualClock()

    def replay_planner() -> VirtualPlanner:
        backend = ReplayBackend(record.responses, clock, model=header.model, source=args.replay)
        return VirtualPlanner(
            backend, settings, clock, seed=header.seed, schedules=record.schedules
        )

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
    config = MatchConfig(scenario, args.seed, turn_limit, llm_squads, player)
    if not llm_squads:
        observers = _recording(args, config, owners, PlannerSettings(), None)
        session = Session(config, controllers, observers=observers)
        return Launch(session, None, "no LLM squads", virtual=False)

    virtual_clock = VirtualClock() if not (window or args.realtime) else None
    backend, reason = choose(args, virtual_clock or MonotonicClock())
    settings = planner_settings(args)
    planner: Planner
    if virtual_clock is not None and isinstance(backend, SimBackend):
        planner = VirtualPlanner(backend, settings, virtual_clock, seed=args.seed)
    else:
        virtual_clock = None
        planner = PlannerService(backend, settings, seed=args.seed, backend_description=reason)
    session = Session(
        config,
        controllers,
        Planning(planner, virtual_clock, fault_control(backend)),
        observers=_recording(args, config, owners, settings, backend),
    )
    if args.faults:
        session.fault_rate = args.faults
    return Launch(session, backend, reason, virtual=virtual_clock is not None)
