"""Inputs for the benchmarks: real snapshots of a scenario, cloned past its squad size.

Benchmarks need rounds of 10, 100 or 1000 agents; the biggest scenario (`siege`) has
18 per squad. Beyond that we clone its red snapshots under fresh ids: each clone is a
real, legal situation on the real grid (so the sim's plans still validate), and its
prompt block differs from every other one (so the prompt cache sees distinct keys).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Sequence

from game.match.maps import load
from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from game.rules.world import World

SCENARIO = "siege"
SQUAD = "red"
ID_STRIDE = 1000
"""Clone k of agent i gets id i + k * ID_STRIDE (siege ids are all below it)."""


@functools.cache
def base_snapshots(scenario: str = SCENARIO, squad: str = SQUAD) -> tuple[Snapshot, ...]:
    world = World(load(scenario), random.Random(1))
    return tuple(world.snapshot_of(u.id) for u in world.living(squad))


@functools.cache
def grid_of(scenario: str = SCENARIO) -> Grid:
    return load(scenario).grid


def with_id(snap: Snapshot, agent_id: int, turn: int | None = None) -> Snapshot:
    me = snap.me.model_copy(update={"id": agent_id})
    update: dict[str, object] = {"me": me}
    if turn is not None:
        update["turn"] = turn
    return snap.model_copy(update=update)


def agents(n: int, turn: int = 0, first_clone: int = 0) -> tuple[Snapshot, ...]:
    """`n` snapshots with distinct ids; `turn` makes the whole prompt new (the header
    holds it), `first_clone` shifts the clone numbers so a later call gives new ids."""
    if n < 1:
        raise ValueError("a round needs at least one agent")
    base = base_snapshots()
    out: list[Snapshot] = []
    for k in range(first_clone, first_clone + math.ceil(n / len(base)) + 1):
        for snap in base:
            if len(out) == n:
                return tuple(out)
            out.append(with_id(snap, snap.me.id + k * ID_STRIDE, turn))
    return tuple(out)


def ids(snaps: Sequence[Snapshot]) -> list[int]:
    return [s.me.id for s in snaps]


@functools.cache
def played_rounds(scenario: str = "village", turns: int = 20) -> tuple[tuple[Snapshot, ...], ...]:
    """Each squad's snapshots at the start of each of `turns` turns of heuristic play.

    A match that ends early is followed by a fresh one with the next seed, so exactly
    `turns` turns are seen whatever the outcome of each match.
    """
    from game.match.controllers import HeuristicController  # the rule planner, only when needed

    rounds: list[tuple[Snapshot, ...]] = []
    played = 0
    seed = 0
    while played < turns:
        world = World(load(scenario), random.Random(seed))
        ctl = HeuristicController(random.Random(seed))
        while played < turns and world.winner is None:
            for squad in ("red", "blue"):
                rounds.append(tuple(world.snapshot_of(u.id) for u in world.living(squad)))
            for squad in ("red", "blue"):
                for uid, steps in ctl.plan_turn(world, squad).items():
                    world.assign_plan(uid, steps)
            world.step_turn()
            played += 1
        seed += 1
    return tuple(rounds)
