"""One ladder match (a Cell), the matrix of them, and playing one headless.

Sides: for each ladder seed a matchup A:B is played twice, A as blue then A as red,
with distinct match seeds (2*seed and 2*seed+1: with A == B the two would otherwise
be the same match). Odd ladder seeds play the map flipped left to right (colours kept),
so blue starts on the right: a colour and a map position are told apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from game.match.cli import SIM_PRESETS, build_parser
from game.match.headless import step_counts
from game.match.launch import build
from game.match.maps import load
from game.rules.scenarios import SQUADS, Scenario, flipped
from game.rules.world import TICKS_PER_TURN

RULE_CONTROLLERS: Final = ("heuristic", "random")
LLM_TIERS: Final = ("full", "simplified")
"""The simulated LLM at its start tier (labelled `sim-` in tables: simulated, not a model)."""
CONTROLLERS: Final = (*RULE_CONTROLLERS, *LLM_TIERS)
NO_PRESET: Final = "-"
"""The preset of a matchup with no LLM squad (latency does not apply)."""


@dataclass(frozen=True)
class Cell:
    a: str
    b: str
    scenario: str
    preset: str
    seed: int
    swap: int
    """0: A plays blue; 1: A plays red."""
    turns: int | None = None

    @property
    def key(self) -> str:
        return f"{self.a}:{self.b}|{self.scenario}|{self.preset}|{self.seed}|{self.swap}"

    @property
    def flipped(self) -> bool:
        return self.seed % 2 == 1

    @property
    def match_seed(self) -> int:
        return 2 * self.seed + self.swap

    @property
    def a_squad(self) -> str:
        return SQUADS[self.swap]


def is_llm(name: str) -> bool:
    return name in LLM_TIERS


def parse_matchup(text: str) -> tuple[str, str]:
    """'full:heuristic' -> ('full', 'heuristic'); ValueError with one line if not."""
    a, sep, b = text.partition(":")
    if not sep:
        raise ValueError(f"matchup {text!r} must look like A:B (e.g. full:heuristic)")
    for name in (a, b):
        if name not in CONTROLLERS:
            raise ValueError(f"unknown controller {name!r} (choose from: {', '.join(CONTROLLERS)})")
    if is_llm(a) and is_llm(b):
        raise ValueError(f"matchup {text!r}: at most one simulated LLM squad per match")
    return a, b


def matrix(
    matchups: list[tuple[str, str]],
    scenarios: list[str],
    presets: list[str],
    seeds: range,
    turns: int | None = None,
) -> list[Cell]:
    cells = []
    for a, b in matchups:
        for preset in presets if is_llm(a) or is_llm(b) else [NO_PRESET]:
            for scenario in scenarios:
                for seed in seeds:
                    for swap in (0, 1):
                        cells.append(Cell(a, b, scenario, preset, seed, swap, turns))
    return cells


def left_squad(scenario: Scenario) -> str:
    """The squad whose spawns lie on the left half (by their mean x)."""
    mean = {
        s: sum(p.x for p in scenario.spawns if p.squad == s)
        / max(1, sum(1 for p in scenario.spawns if p.squad == s))
        for s in SQUADS
    }
    return min(SQUADS, key=lambda s: mean[s])


def play(cell: Cell) -> dict[str, Any]:
    """Play one cell headless (the sim on its virtual clock: deterministic) -> its row."""
    assert cell.preset in (NO_PRESET, *SIM_PRESETS)
    owners = {cell.a_squad: cell.a, SQUADS[1 - cell.swap]: cell.b}
    argv = ["--headless", "--seed", str(cell.match_seed)]
    for squad, name in owners.items():
        argv += [f"--{squad}", "llm" if is_llm(name) else name]
        if is_llm(name):
            argv += ["--backend", "sim", "--sim-preset", cell.preset, "--tier", name]
    if cell.turns is not None:
        argv += ["--turns", str(cell.turns)]
    scenario = load(cell.scenario)
    if cell.flipped:
        scenario = flipped(scenario)
    session = build(build_parser().parse_args(argv), scenario, window=False).session
    try:
        session.run_to_end()
    finally:
        session.close()
    world = session.world
    summary = session.result_summary() if session.llm_squads else {}
    role = {cell.a_squad: "a", SQUADS[1 - cell.swap]: "b"}
    counts = step_counts(world)

    def by_role(per_squad: dict[str, Any]) -> dict[str, Any]:
        return {role[s]: per_squad.get(s, 0) for s in SQUADS}

    return {
        "key": cell.key,
        "a": cell.a,
        "b": cell.b,
        "scenario": cell.scenario,
        "preset": cell.preset,
        "seed": cell.seed,
        "swap": cell.swap,
        "flipped": cell.flipped,
        "match_seed": cell.match_seed,
        "a_squad": cell.a_squad,
        "left_squad": left_squad(scenario),
        "winner": world.winner or "draw",
        "win_reason": world.win_reason,
        "turns": -(-world.tick // TICKS_PER_TURN),
        "unit_ticks": by_role(dict(session.unit_ticks)),
        "idle_ticks": by_role(dict(session.idle_ticks)),
        "stale_steps": by_role(counts["stale_steps"]),
        "illegal_steps": by_role(counts["illegal_steps"]),
        "retargeted_steps": by_role(counts["retargeted_steps"]),
        "actions": by_role(counts["actions"]),
        "llm_plan_share": summary.get("llm_plan_share"),
        "prompt_tokens": summary.get("prompt_tokens", 0),
        "completion_tokens": summary.get("completion_tokens", 0),
        "state_hash": world.state_hash(),
    }
