"""Headless matches: play a whole match with no window and report the result.

Every match runs through `Session`, the same loop as the window: rule controllers
plan at each turn start and LLM squads go through the planner. With the sim on its
virtual clock the whole match is deterministic; `--realtime` paces ticks on the wall
clock (a real server needs that).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from game.match.controllers import Controller
from game.match.session import MatchConfig, Session
from game.rules.scenarios import SQUADS, Scenario
from game.rules.world import TICK_SECONDS, TICKS_PER_TURN, World


@dataclass(frozen=True)
class MatchResult:
    scenario: str
    seed: int
    turns: int
    """Turns actually played (fewer than asked if the match was won early)."""
    turn_limit: int
    winner: str
    state_hash: str
    units_alive: dict[str, int]
    invalid_steps: int
    invalid_by_squad: dict[str, int]
    ticks: int
    controllers: dict[str, str] = field(default_factory=dict)
    idle_ticks: dict[str, int] = field(default_factory=dict)
    """Per squad: ticks a living unit started with nothing to do (any controller)."""
    planning: dict[str, Any] = field(default_factory=dict)
    """Planner settings and statistics, for matches with LLM squads."""
    steps: dict[str, Any] = field(default_factory=dict)
    """Per squad: refused steps split into stale (the world changed them) and illegal,
    retargeted steps, and steps started by action (any controller)."""
    objective: dict[str, Any] = field(default_factory=dict)
    """How the match ended (win_reason) and each squad's hold count at the end."""

    def report(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "turns": self.turns,
            "turn_limit": self.turn_limit,
            "ticks": self.ticks,
            "winner": self.winner,
            "state_hash": self.state_hash,
            "units_alive": dict(self.units_alive),
            "invalid_steps": self.invalid_steps,
            "invalid_by_squad": dict(self.invalid_by_squad),
            "controllers": dict(self.controllers),
            "idle_ticks": dict(self.idle_ticks),
            **self.steps,
            **self.objective,
            **self.planning,
        }

    def summary(self) -> str:
        alive = " ".join(f"{s}={n}" for s, n in self.units_alive.items())
        line = (
            f"{self.scenario} seed={self.seed} turns={self.turns} winner={self.winner} "
            f"alive {alive} invalid_steps={self.invalid_steps} hash={self.state_hash[:16]}"
        )
        if self.steps:
            stale, illegal = self.steps["stale_steps"], self.steps["illegal_steps"]
            line += " stale " + " ".join(f"{s}={stale[s]}" for s in stale)
            line += " illegal " + " ".join(f"{s}={illegal[s]}" for s in illegal)
        if self.planning:
            p = self.planning
            share = p.get("llm_plan_share")
            ttfp = p.get("latency_ms", {}).get("ttfp_p50")
            idle = " ".join(f"{s}={n}" for s, n in self.idle_ticks.items())
            line += (
                f" | {p['mode']}{'' if p['stream'] else ' non-streaming'}"
                f" llm_plans={'-' if share is None else f'{share:.0%}'}"
                f" ttfp_p50={'-' if ttfp is None else f'{ttfp:.0f}ms'}"
                f" requests={p['llm_requests']} idle {idle}"
            )
        return line


def run_match(
    scenario: Scenario,
    seed: int,
    turns: int,
    controllers: dict[str, Controller],
    names: dict[str, str] | None = None,
) -> MatchResult:
    """Play up to `turns` turns between rule controllers (a draw if nobody has won)."""
    if turns <= 0:
        raise ValueError(f"turns must be positive, got {turns}")
    session = Session(MatchConfig(scenario, seed, turns), controllers)
    session.run_to_end()
    return result_of(session, names or {})


OPENING_POLL_S = 0.01
"""How often a wall-clock headless match looks whether its opening is done."""


def play(
    session: Session,
    *,
    realtime: bool,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run to the end; on the wall clock (`clock`, `sleep`) the opening first, then each
    tick waits for its absolute instant."""
    if not realtime:
        session.run_to_end()
        return
    last = clock()
    while session.opening_pending:  # the world waits for the first rounds
        sleep(OPENING_POLL_S)
        now = clock()
        session.update(now - last)
        last = now
    start = clock()
    while not session.finished:
        due = start + session.world.tick * TICK_SECONDS
        delay = due - clock()
        if delay > 0:
            sleep(delay)
        session.step_tick()


def result_of(
    session: Session,
    names: dict[str, str],
    planning: dict[str, Any] | None = None,
) -> MatchResult:
    world: World = session.world
    return MatchResult(
        scenario=world.scenario.name,
        seed=session.config.seed,
        turns=-(-world.tick // TICKS_PER_TURN),
        turn_limit=world.turn_limit,
        winner=world.winner or "unfinished",  # only a replay of a match left early
        state_hash=world.state_hash(),
        units_alive=world.alive_counts(),
        invalid_steps=world.invalid_steps,
        invalid_by_squad=dict(world.invalid_by_squad),
        ticks=world.tick,
        controllers=dict(names),
        idle_ticks={s: session.idle_ticks.get(s, 0) for s in SQUADS},
        planning=planning or {},
        steps=step_counts(world),
        objective={
            "win_reason": world.win_reason,
            "hold": dict(world.hold),
            "hold_turns": world.scenario.hold_turns,
        },
    )


def step_counts(world: World) -> dict[str, Any]:
    """The world's step books per squad, for the report."""
    return {
        "stale_steps": {s: world.stale_by_squad.get(s, 0) for s in SQUADS},
        "illegal_steps": {s: world.illegal_by_squad.get(s, 0) for s in SQUADS},
        "retargeted_steps": {s: world.retargeted_by_squad.get(s, 0) for s in SQUADS},
        "actions": {s: dict(sorted(world.actions_by_squad.get(s, {}).items())) for s in SQUADS},
    }


def write_report(path: str | Path, result: MatchResult) -> None:
    Path(path).write_text(json.dumps(result.report(), indent=2, sort_keys=True) + "\n", "utf-8")
