"""The planner as the game sees it: submit a round, drain events, never block.

Two implementations of one small interface (`Planner`):

- `PlannerService`: the real thing. One background thread runs an anyio event loop
  (a blocking portal); the HTTP client, cache and breaker live inside it, and settings
  reach it only with a round, through the portal. Events go back on a
  `queue.SimpleQueue` that the frame loop drains without blocking. A new round for a
  squad cancels that squad's unfinished one. `close()` cancels everything and joins
  the thread in well under a second, even with a stalled server.
- `VirtualPlanner`: for deterministic headless matches on the sim's virtual clock.
  Each round runs to completion when submitted (no real waiting: the sim only stamps
  its tokens), and its events are released once the game's clock reaches their instant.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Protocol

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from planner.backends.base import Backend
from planner.cache import PlanCache
from planner.clock import Clock, MonotonicClock, VirtualClock
from planner.config import PlannerConfig
from planner.core import CachedPlan, PlannerCore, PlanningRound
from planner.dispatch import RoundRun
from planner.events import PlanEvent, RoundCancelled
from planner.schedule import Schedule
from planner.settings import PlannerSettings

log = logging.getLogger(__name__)

CLOSE_GRACE_S = 0.3
"""How long closing the backend's HTTP client may take before we stop waiting."""


class Planner(Protocol):
    settings: PlannerSettings
    backend_description: str

    def submit(self, planning: PlanningRound) -> None: ...

    def drain(self) -> list[PlanEvent]: ...

    def set_settings(self, settings: PlannerSettings) -> None: ...

    def breaker_state(self) -> str: ...

    def close(self) -> None: ...


def make_core(
    backend: Backend,
    clock: Clock,
    seed: int,
    env: Mapping[str, str] | None = None,
    *,
    virtual: bool = False,
    config: PlannerConfig | None = None,
) -> PlannerCore:
    """A core built from `config`, else from `env` (the process environment if None);
    a bad `LLM_*` value raises ConfigError here, before anything runs."""
    if config is None:
        config = PlannerConfig.from_env(os.environ if env is None else env)
    cache: PlanCache[CachedPlan] = PlanCache(config.cache_cap)
    return PlannerCore(
        backend=backend,
        clock=clock,
        cache=cache,
        breaker=config.breaker(clock),
        retry=config.retry(),
        timeouts=config.timeouts(),
        rng=random.Random(seed),
        virtual=virtual,
    )


class PlannerService:
    def __init__(
        self,
        backend: Backend,
        settings: PlannerSettings,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        config: PlannerConfig | None = None,
        backend_description: str | None = None,
    ) -> None:
        self.settings = settings
        self.backend_description = backend_description or backend.describe()
        # Built first: a bad configuration raises before the thread exists.
        self.core = make_core(backend, clock or MonotonicClock(), seed, env, config=config)
        self._events: queue.SimpleQueue[PlanEvent] = queue.SimpleQueue()
        self._stack = contextlib.ExitStack()
        self._portal: BlockingPortal = self._stack.enter_context(
            start_blocking_portal(name="squadmind-planner")
        )
        self._rounds: dict[str, Future[None]] = {}
        self._closed = False

    # -- called from the game thread -------------------------------------------------

    def submit(self, planning: PlanningRound) -> None:
        if self._closed:
            raise RuntimeError("planner service is closed")
        old = self._rounds.pop(planning.squad, None)
        if old is not None and not old.done():
            old.cancel()
        self._rounds[planning.squad] = self._portal.start_task_soon(
            self._run, self.settings, planning
        )

    def drain(self) -> list[PlanEvent]:
        events: list[PlanEvent] = []
        with contextlib.suppress(queue.Empty):
            while True:
                events.append(self._events.get_nowait())
        return events

    def set_settings(self, settings: PlannerSettings) -> None:
        """Takes effect from the next round (a running round keeps its settings).

        Only stored here: settings reach the loop with each round, through the portal
        (`submit`), so nothing the loop owns (the cache) is touched from this thread.
        """
        self.settings = settings

    def breaker_state(self) -> str:
        return self.core.breaker.state.value

    def idle(self) -> bool:
        return all(f.done() for f in self._rounds.values())

    def close(self) -> None:
        """Cancel in-flight rounds, close the client, stop and join the thread."""
        if self._closed:
            return
        self._closed = True
        for future in self._rounds.values():
            future.cancel()
        with contextlib.suppress(Exception):
            self._portal.call(self._close_backend)
        with contextlib.suppress(Exception):
            self._portal.call(self._portal.stop, True)
        self._stack.close()

    def __enter__(self) -> PlannerService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside the planner's event loop ---------------------------------------------

    async def _close_backend(self) -> None:
        with anyio.move_on_after(CLOSE_GRACE_S):
            await self.core.backend.aclose()

    async def _run(self, settings: PlannerSettings, planning: PlanningRound) -> None:
        await run_round(self.core, settings, planning, self._events.put)


async def run_round(
    core: PlannerCore,
    settings: PlannerSettings,
    planning: PlanningRound,
    emit: Callable[[PlanEvent], None],
) -> None:
    """Run one round; a cancelled round says so, and a bug still leaves every agent a plan."""
    run = RoundRun(core, settings, planning, emit)
    try:
        await run.run()
    except anyio.get_cancelled_exc_class():
        emit(RoundCancelled(planning.round_id, planning.squad, core.clock.now()))
        raise
    except Exception:
        log.exception("planning round %s failed; falling back", planning.round_id)
        for agent_id in list(run.pending):
            run.state.causes.setdefault(agent_id, ("heuristic_error", "planner error"))
        run.fall_back_rest()
        run.finish()


class VirtualPlanner:
    """Deterministic planning on a virtual clock (sim backend, headless)."""

    def __init__(
        self,
        backend: Backend,
        settings: PlannerSettings,
        clock: VirtualClock,
        *,
        seed: int = 0,
        env: Mapping[str, str] | None = None,
        config: PlannerConfig | None = None,
        schedules: Mapping[int, Sequence[Schedule]] | None = None,
        replaying: bool = False,
    ) -> None:
        self.settings = settings
        self.backend_description = backend.describe()
        self.clock = clock
        self.core = make_core(backend, clock, seed, env, virtual=True, config=config)
        if schedules or replaying:
            recorded = schedules or {}
            self.core.recorded_schedules = {r: deque(s) for r, s in recorded.items()}
        self._scheduled: list[PlanEvent] = []
        self.unheard: Callable[[PlanEvent], None] | None = None
        """Told each event the game will never see: a superseded round's events still ahead
        of the game's clock. The round ran to its end when it was submitted, so its later
        answers already shaped the planner (the cache, the breaker, the round's stats): a
        record keeps them, and a replay's planner is fed the same answers."""

    def submit(self, planning: PlanningRound) -> None:
        superseded = [e for e in self._scheduled if e.squad == planning.squad]
        if superseded:
            if self.unheard is not None:
                for event in superseded:
                    self.unheard(event)
            self._scheduled = [e for e in self._scheduled if e.squad != planning.squad]
            self._scheduled.append(
                RoundCancelled(superseded[0].round_id, planning.squad, self.clock.now())
            )
        events: list[PlanEvent] = []
        start = self.clock.now()
        anyio.run(run_round, self.core, self.settings, planning, events.append)
        # The round ran ahead in virtual time (sequential requests advance the clock);
        # the game's clock, not the round's, decides when its events are seen.
        self.clock.jump_to(start)
        self._scheduled.extend(events)
        self._scheduled.sort(key=lambda e: e.at)

    def drain(self) -> list[PlanEvent]:
        now = self.clock.now()
        due = [e for e in self._scheduled if e.at <= now]
        if due:
            self._scheduled = [e for e in self._scheduled if e.at > now]
        return due

    def set_settings(self, settings: PlannerSettings) -> None:
        """Takes effect from the next round (each round is given the settings)."""
        self.settings = settings

    def breaker_state(self) -> str:
        return self.core.breaker.state.value

    def close(self) -> None:
        anyio.run(self.core.backend.aclose)
