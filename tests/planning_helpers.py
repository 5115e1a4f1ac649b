"""Shared pieces for planner tests: real snapshots of a scenario, and a scripted backend.

The scripted backend is a real implementation of the backend seam (`stream(request)`)
that answers from a list of scripted replies, one per request, and records what it was
asked: tests of dispatch logic need exact control of what the "server" says.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import anyio

from game.match.maps import load
from game.rules.snapshot import Snapshot
from game.rules.world import World
from planner.backends.base import (
    Capabilities,
    Finished,
    LLMRequest,
    StreamEvent,
    TextDelta,
    Usage,
)
from planner.cache import PlanCache
from planner.clock import VirtualClock
from planner.core import CachedPlan, PlannerCore, PlanningRound
from planner.dispatch import RoundRun
from planner.errors import PlannerError
from planner.events import PlanEvent
from planner.resilience import CircuitBreaker, RetryPolicy, Timeouts
from planner.settings import PlannerSettings


def squad_snapshots(
    scenario: str = "village", squad: str = "red", seed: int = 1
) -> tuple[Snapshot, ...]:
    world = World(load(scenario), random.Random(seed))
    return tuple(world.snapshot_of(u.id) for u in world.living(squad))


def planning_round(
    round_id: int = 1, scenario: str = "village", squad: str = "red"
) -> PlanningRound:
    return PlanningRound(round_id, squad, squad_snapshots(scenario, squad), load(scenario).grid)


def plan_json(agent_id: int, snap: Snapshot | None = None) -> str:
    """A legal one-step plan (Scan is always legal)."""
    return f'{{"agent_id":{agent_id},"steps":[{{"act":"Scan"}},{{"act":"Wait"}}]}}'


Reply = str | PlannerError | Callable[[LLMRequest], str]


@dataclass
class ScriptedBackend:
    replies: list[Reply]
    chunk: int = 7
    name: str = "scripted"
    model: str = "scripted-1"
    capabilities: Capabilities = field(default_factory=Capabilities)
    requests: list[LLMRequest] = field(default_factory=list)
    yielded: int = 0
    """Text deltas handed out so far (tests read it from inside `emit`)."""

    def describe(self) -> str:
        return "scripted test backend"

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        reply = self.replies.pop(0) if self.replies else '{"plans":[]}'
        return self._play(reply, request)

    async def _play(self, reply: Reply, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        await anyio.lowlevel.checkpoint()
        if isinstance(reply, PlannerError):
            raise reply
        text = reply(request) if callable(reply) else reply
        for i in range(0, len(text), self.chunk):
            self.yielded += 1
            yield TextDelta(text[i : i + self.chunk])
        yield Usage(prompt_tokens=10, completion_tokens=len(text) // 4)
        yield Finished("stop")

    async def aclose(self) -> None:
        return None


def make_core(backend: object, clock: VirtualClock | None = None, seed: int = 0) -> PlannerCore:
    clock = clock or VirtualClock()
    return PlannerCore(
        backend=backend,  # type: ignore[arg-type]
        clock=clock,
        cache=PlanCache[CachedPlan](64),
        breaker=CircuitBreaker(clock),
        retry=RetryPolicy(),
        timeouts=Timeouts(),
        rng=random.Random(seed),
        virtual=True,
    )


def run_round(
    core: PlannerCore, settings: PlannerSettings, planning: PlanningRound
) -> list[PlanEvent]:
    events: list[PlanEvent] = []
    anyio.run(RoundRun(core, settings, planning, events.append).run)
    return events


def ids_of(snaps: Sequence[Snapshot]) -> list[int]:
    return [s.me.id for s in snaps]
