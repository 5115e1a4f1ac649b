"""Shared pieces for planner tests: real snapshots of a scenario, a scripted backend,
and waiting for a planner thread without asserting how fast it is.

The scripted backend is a real implementation of the backend seam (`stream(request)`)
that answers from a list of scripted replies, one per request, and records what it was
asked: tests of dispatch logic need exact control of what the "server" says.

Waiting: a test that runs a real thread waits for an event (`wait_until`, `wait_for`)
and bounds the wait only to turn a hang into a failure (HANG_S, far above anything a
slow machine needs). How fast something happens is the bench's business, not a test's.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

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
from planner.events import PlanEvent, RoundDone
from planner.resilience import CircuitBreaker, RetryPolicy, Timeouts
from planner.service import PlannerService
from planner.settings import PlannerSettings

T = TypeVar("T")

HANG_S = 10.0
"""How long a test waits for what must happen before calling it a hang (not a speed bound)."""
POLL_S = 0.002


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


class Stalled:
    """A scripted reply: the server takes the request and never answers (until cancelled)."""


STALL = Stalled()

Reply = str | PlannerError | Stalled | Callable[[LLMRequest], str]


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
        if isinstance(reply, Stalled):
            await anyio.sleep_forever()
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


# --------------------------------------------------------------------------- waiting


def wait_until(
    ready: Callable[[], bool], what: Callable[[], object] = lambda: "", *, hang_s: float = HANG_S
) -> None:
    """Poll `ready()` until it holds; a failure naming `what()` if it has not after hang_s."""
    limit = time.monotonic() + hang_s
    while not ready():
        assert time.monotonic() < limit, f"still waiting after {hang_s:g} s: {what()}"
        time.sleep(POLL_S)


def wait_for(
    service: PlannerService,
    done: Callable[[list[PlanEvent]], bool],
    seen: list[PlanEvent] | None = None,
) -> list[PlanEvent]:
    """Drain `service` into `seen` (a new list if None) until `done(seen)`; returns `seen`."""
    events: list[PlanEvent] = [] if seen is None else seen

    def ready() -> bool:
        events.extend(service.drain())
        return done(events)

    wait_until(ready, lambda: f"events so far: {events}")
    return events


def round_done(round_id: int | None = None) -> Callable[[list[PlanEvent]], bool]:
    """`done` for wait_for: the round (any round if None) has ended."""
    return lambda seen: any(
        isinstance(e, RoundDone) and (round_id is None or e.round_id == round_id) for e in seen
    )


def returns(call: Callable[[], T], what: str) -> T:
    """`call()` on a helper thread; fails if it has not returned within HANG_S.

    For "does not wait" claims (close with a stalled stream in flight): the thing it must
    not wait for lasts far longer than HANG_S, so returning at all is the evidence, and
    no wall-clock number is asserted."""
    result: list[T] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, name=f"test-{what}", daemon=True)
    thread.start()
    thread.join(HANG_S)
    assert not thread.is_alive(), f"{what} still blocked after {HANG_S:g} s: it waited"
    if error:
        raise error[0]
    return result[0]


class FakePlanner:
    """A planner stand-in: keeps the rounds it is given, hands out the events a test queues."""

    backend_description = "test planner"

    def __init__(self) -> None:
        self.settings = PlannerSettings()
        self.submitted: list[PlanningRound] = []
        self.queued: list[PlanEvent] = []
        self.closed = False

    def submit(self, planning: PlanningRound) -> None:
        self.submitted.append(planning)

    def drain(self) -> list[PlanEvent]:
        out, self.queued = self.queued, []
        return out

    def set_settings(self, settings: PlannerSettings) -> None:
        self.settings = settings

    def breaker_state(self) -> str:
        return "closed"

    def close(self) -> None:
        self.closed = True
