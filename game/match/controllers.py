"""Squad controllers: who decides a squad's plans at each turn start.

A controller is anything with `plan_turn(world, squad) -> {unit_id: steps}`.
AI squads and (later) the human player and the LLM planner all fit this shape.
"""

from __future__ import annotations

import random
from typing import Protocol

from game.rules import heuristic
from game.rules.actions import THROW_RANGE, check_step
from game.rules.snapshot import Snapshot
from game.rules.steps import (
    AoEAttack,
    Approach,
    Attack,
    Block,
    Distract,
    Heal,
    MarkTarget,
    MoveTo,
    Reload,
    Retreat,
    Scan,
    Step,
    TakeCover,
    ThrowExplosive,
    ThrowSmoke,
    Wait,
)
from game.rules.world import World


def controller_rng(seed: int, squad: str) -> random.Random:
    """A squad's RNG derived from the match seed (str seeds hash with sha512, not hash())."""
    return random.Random(f"{seed}:{squad}")


class Controller(Protocol):
    rng: random.Random
    """Reseeded from the match seed at every new match (so a restart replays exactly)."""

    def plan_turn(self, world: World, squad: str) -> dict[int, list[Step]]:
        """Plans for (some of) the squad's living units; units left out keep their queue."""
        ...


class HeuristicController:
    """Every unit plans with the rule planner on its own snapshot."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def plan_turn(self, world: World, squad: str) -> dict[int, list[Step]]:
        return {
            u.id: heuristic.plan(world.snapshot_of(u.id), self.rng) for u in world.living(squad)
        }


class RandomController:
    """Every unit gets a few random steps that are legal on its snapshot (a baseline)."""

    def __init__(self, rng: random.Random, max_steps: int = 3, tries: int = 12) -> None:
        self.rng = rng
        self.max_steps = max_steps
        self.tries = tries

    def plan_turn(self, world: World, squad: str) -> dict[int, list[Step]]:
        plans: dict[int, list[Step]] = {}
        for u in world.living(squad):
            snap = world.snapshot_of(u.id)
            steps: list[Step] = []
            for _ in range(self.rng.randint(1, self.max_steps)):
                step = self._legal_step(snap, world)
                steps.append(step)
            plans[u.id] = steps
        return plans

    def _legal_step(self, snap: Snapshot, world: World) -> Step:
        for _ in range(self.tries):
            step = self._candidate(snap)
            if check_step(step, snap, world.grid) is None:
                return step
        return Wait()

    def _candidate(self, snap: Snapshot) -> Step:
        r = self.rng
        me = snap.me
        kind = r.randrange(15)
        near = (
            me.x + r.randint(-THROW_RANGE, THROW_RANGE),
            me.y + r.randint(-THROW_RANGE, THROW_RANGE),
        )
        others = [*snap.enemies, *snap.allies]
        target = r.choice(others).id if others else me.id
        enemy = r.choice(snap.enemies).id if snap.enemies else me.id
        match kind:
            case 0:
                return MoveTo(x=near[0], y=near[1])
            case 1:
                c = r.choice(snap.cover) if snap.cover else near
                return TakeCover(x=c[0], y=c[1])
            case 2:
                return ThrowSmoke(x=near[0], y=near[1])
            case 3:
                return ThrowExplosive(x=near[0], y=near[1])
            case 4:
                return AoEAttack(x=near[0], y=near[1])
            case 5:
                return Attack(target_id=enemy)
            case 6:
                return Approach(target_id=target)
            case 7:
                return Retreat(target_id=enemy)
            case 8:
                return MarkTarget(target_id=enemy)
            case 9:
                return Distract(target_id=enemy)
            case 10:
                return Reload()
            case 11:
                return Scan()
            case 12:
                return Wait()
            case 13:
                return Block()
            case _:
                return Heal()
