"""Headless matches: play a whole match with no window and report the result.

Pure apart from `write_report`: controllers and the world get seeded RNGs, the
clock is only read for the printed elapsed time (never part of the report).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from game.controllers import Controller
from game.scenarios import SQUADS, Scenario
from game.world import TICKS_PER_TURN, World


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
        }

    def summary(self) -> str:
        alive = " ".join(f"{s}={n}" for s, n in self.units_alive.items())
        return (
            f"{self.scenario} seed={self.seed} turns={self.turns} winner={self.winner} "
            f"alive {alive} invalid_steps={self.invalid_steps} hash={self.state_hash[:16]}"
        )


def new_world(scenario: Scenario, seed: int, turn_limit: int) -> World:
    return World(scenario, random.Random(seed), turn_limit=turn_limit)


def controller_rng(seed: int, squad: str) -> random.Random:
    """A per-squad RNG derived from the match seed (str seeds hash with sha512, not hash())."""
    return random.Random(f"{seed}:{squad}")


def run_match(
    scenario: Scenario,
    seed: int,
    turns: int,
    controllers: dict[str, Controller],
    names: dict[str, str] | None = None,
) -> MatchResult:
    """Play up to `turns` turns (a draw if nobody has won by then)."""
    if turns <= 0:
        raise ValueError(f"turns must be positive, got {turns}")
    world = new_world(scenario, seed, turns)
    while world.winner is None:
        if world.tick % TICKS_PER_TURN == 0:
            for squad in SQUADS:
                for uid, steps in controllers[squad].plan_turn(world, squad).items():
                    world.assign_plan(uid, steps)
        world.step_tick()
    return result_of(world, seed, names or {})


def result_of(world: World, seed: int, names: dict[str, str]) -> MatchResult:
    turns_played = -(-world.tick // TICKS_PER_TURN)
    return MatchResult(
        scenario=world.scenario.name,
        seed=seed,
        turns=turns_played,
        turn_limit=world.turn_limit,
        winner=world.winner or "draw",
        state_hash=world.state_hash(),
        units_alive=world.alive_counts(),
        invalid_steps=world.invalid_steps,
        invalid_by_squad=dict(world.invalid_by_squad),
        ticks=world.tick,
        controllers=dict(names),
    )


def write_report(path: str | Path, result: MatchResult) -> None:
    Path(path).write_text(json.dumps(result.report(), indent=2, sort_keys=True) + "\n", "utf-8")
