"""The planner thread: rounds over real loopback HTTP, supersession, and a prompt exit.

These tests wait for events from a real thread (bounded polling), but never sleep to
make time pass and assert nothing about speed: "close does not wait for a stalled
stream" is shown by close returning while the stream would stall for ten minutes.
Settings cross to the planner's loop only with a round: a change made from another
thread never touches what the loop owns (the cache).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

import anyio

from planner.backends.base import LLMRequest, StreamEvent
from planner.backends.openai import OpenAIBackend
from planner.cache import CacheHit, PlanCache
from planner.core import CachedPlan, PlanningRound
from planner.events import FirstToken, PlanDelivered, PlanEvent, RoundCancelled, RoundDone
from planner.service import PlannerService
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from planner.sim.server import SimServer
from tests.planning_helpers import (
    HANG_S,
    STALL,
    ScriptedBackend,
    plan_json,
    planning_round,
    returns,
    round_done,
    wait_for,
)

LONG = {"LLM_TIMEOUT_MS": "600000"}
"""Ten minutes: a request that is not cancelled outlives any hang bound."""


def planner_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "squadmind-planner" and t.is_alive()]


def test_a_round_over_real_http_delivers_every_agent() -> None:
    planning = planning_round()
    with SimServer(preset="instant", seed=2) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        with PlannerService(backend, PlannerSettings(mode="batched"), seed=2) as service:
            seen: list[PlanEvent] = []
            service.submit(planning)
            wait_for(service, lambda s: any(isinstance(e, RoundDone) for e in s), seen)
    plans = [e for e in seen if isinstance(e, PlanDelivered)]
    assert sorted(e.outcome.agent_id for e in plans) == sorted(s.me.id for s in planning.snapshots)
    assert all(e.outcome.tier.value == "simplified_llm" for e in plans)
    assert not planner_threads()


def test_close_during_a_stalled_stream_does_not_wait_for_it() -> None:
    # The server holds the stalled stream open until the client leaves, and neither the
    # request's timeout nor the round's budget ends it for ten minutes: close returning
    # at all means it cancelled the stream instead of waiting for it.
    with SimServer(preset="gpu", seed=3, faults=FaultConfig.only("stall")) as server:
        backend = OpenAIBackend(server.url, "sim-gpu", profile="vllm")
        service = PlannerService(
            backend, PlannerSettings(mode="batched", budget_ms=600_000), seed=3, env=LONG
        )
        service.submit(planning_round())
        seen = wait_for(service, lambda s: any(isinstance(e, FirstToken) for e in s))
        returns(service.close, "PlannerService.close()")
        seen += service.drain()
    assert not any(isinstance(e, RoundDone) for e in seen), "the stalled round never ended"
    assert not planner_threads()


def test_a_new_round_cancels_the_squads_unfinished_one() -> None:
    sim = SimBackend.create("gpu", seed=4, faults=FaultConfig.only("stall"))
    with PlannerService(sim, PlannerSettings(mode="batched", budget_ms=60_000), seed=4) as service:
        seen: list[PlanEvent] = []
        service.submit(planning_round(1))
        wait_for(service, lambda s: any(isinstance(e, FirstToken) for e in s), seen)
        sim.sim.faults = FaultConfig.none()
        service.set_settings(PlannerSettings(budget_ms=60_000, mode="parallel"))
        service.submit(planning_round(2))
        wait_for(
            service,
            lambda s: any(isinstance(e, RoundDone) and e.round_id == 2 for e in s),
            seen,
        )
    assert any(isinstance(e, RoundCancelled) and e.round_id == 1 for e in seen)
    assert not any(isinstance(e, RoundDone) and e.round_id == 1 for e in seen)
    second = [e for e in seen if isinstance(e, PlanDelivered) and e.round_id == 2]
    assert len(second) == len(planning_round(2).snapshots)


def test_a_server_stalled_past_the_deadline_opens_the_breaker() -> None:
    # Default request timeout (10 s), a short round: the request is cut at the deadline,
    # and a server with nothing to show by then (it never answers) counts as failing.
    # The breaker's cooldown (10 min) cannot end between rounds on a slow machine.
    stalled = ScriptedBackend([STALL, STALL, STALL])
    env = {"LLM_BREAKER_THRESHOLD": "2", "LLM_RETRY_MAX": "1", "LLM_BREAKER_COOLDOWN_MS": "600000"}
    settings = PlannerSettings(mode="batched", budget_ms=100)
    with PlannerService(stalled, settings, seed=6, env=env) as service:  # type: ignore[arg-type]
        seen: list[PlanEvent] = []
        for round_id in (1, 2, 3):
            service.submit(planning_round(round_id))
            wait_for(
                service,
                lambda s, r=round_id: any(isinstance(e, RoundDone) and e.round_id == r for e in s),
                seen,
            )
        assert service.breaker_state() == "open"
    causes = {
        e.round_id: {
            p.outcome.cause
            for p in seen
            if isinstance(p, PlanDelivered) and p.round_id == e.round_id
        }
        for e in seen
        if isinstance(e, RoundDone)
    }
    assert causes[1] == {"deadline"} and causes[2] == {"deadline"}
    assert causes[3] == {"circuit_open"}


class WatchedCache(PlanCache[CachedPlan]):
    """A real cache that notes the thread of every use, and whether each lookup and
    store came with a similarity key (the round's settings had similarity on)."""

    def __init__(self) -> None:
        super().__init__(64)
        self.calls: list[tuple[str, bool]] = []
        self.threads: set[int] = set()
        """Every thread that called or set anything on the cache from here on."""

    def __setattr__(self, name: str, value: object) -> None:
        if "threads" in self.__dict__:
            self.threads.add(threading.get_ident())
        super().__setattr__(name, value)

    def lookup(
        self,
        key: str,
        similar_key: str | None = None,
        adapt: Callable[[CachedPlan], CachedPlan | None] | None = None,
    ) -> CacheHit[CachedPlan] | None:
        self.threads.add(threading.get_ident())
        self.calls.append(("lookup", similar_key is not None))
        return super().lookup(key, similar_key, adapt)

    def put(self, key: str, value: CachedPlan, similar_key: str | None = None) -> None:
        self.threads.add(threading.get_ident())
        self.calls.append(("put", similar_key is not None))
        super().put(key, value, similar_key)


@dataclass
class GatedBackend(ScriptedBackend):
    """Answers every agent; its first request waits for `gate` (so a round can be held
    open while the test changes the settings) and says so through `entered`."""

    gate: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    loop_thread: int = 0

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        self.loop_thread = threading.get_ident()
        self.replies.append('{"plans":[' + ",".join(plan_json(i) for i in request.agent_ids) + "]}")
        return self._gated(super().stream(request))

    async def _gated(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        if not self.entered.is_set():
            self.entered.set()
            opened = await anyio.to_thread.run_sync(self.gate.wait, HANG_S, abandon_on_cancel=True)
            assert opened, "gate never opened"
        async for event in events:
            yield event


def hurt(planning: PlanningRound, round_id: int, hp_lost: int) -> PlanningRound:
    """The same situation a little worse: new prompt lines, the same similarity keys."""
    snaps = tuple(
        s.model_copy(update={"me": s.me.model_copy(update={"hp": s.me.hp - hp_lost})})
        for s in planning.snapshots
    )
    return replace(planning, round_id=round_id, snapshots=snaps)


def test_similarity_set_from_another_thread_reaches_the_cache_only_with_the_next_round() -> None:
    backend = GatedBackend([])
    settings = PlannerSettings(mode="batched", budget_ms=60_000, similarity=False)
    first = planning_round(1)
    n = len(first.snapshots)
    with PlannerService(backend, settings, seed=7) as service:
        cache = WatchedCache()
        service.core.cache = cache  # set up before any round: the loop has not used it yet
        seen: list[PlanEvent] = []
        service.submit(first)
        try:
            assert backend.entered.wait(HANG_S)  # round 1 looked its agents up and waits
            setter = threading.Thread(
                target=service.set_settings, args=(settings.with_(similarity=True),)
            )
            setter.start()
            setter.join(HANG_S)
            assert not setter.is_alive()
            assert setter.ident not in cache.threads  # the setting did not touch the cache
        finally:
            backend.gate.set()
        wait_for(service, round_done(1), seen)
        # Round 1 keeps the settings it started with: no similarity key, in or out.
        assert cache.calls == [("lookup", False)] * n + [("put", False)] * n
        # Round 2 started after the setting crossed (with the round, through the portal).
        service.submit(hurt(first, 2, 1))
        wait_for(service, round_done(2), seen)
        # (an agent served from a teammate's plan of its situation is not stored again)
        asked = [e for e in seen if isinstance(e, PlanDelivered) and e.round_id == 2]
        stored = sum(not e.outcome.from_cache for e in asked)
        assert cache.calls[2 * n :] == [("lookup", True)] * n + [("put", True)] * stored
        # Round 3: a near-identical situation is now served from the similar index (an
        # agent served a teammate's plan in round 2 and still in its situation is asked
        # afresh instead).
        service.submit(hurt(first, 3, 2))
        wait_for(service, round_done(3), seen)
    shared = {e.outcome.agent_id for e in asked if e.outcome.from_cache}
    third = [e for e in seen if isinstance(e, PlanDelivered) and e.round_id == 3]
    assert len(third) == n
    assert {e.outcome.agent_id for e in third if not e.outcome.from_cache} == shared
    assert len(backend.requests) == 2 + bool(shared)
    assert cache.similar_hits == n - len(shared)
    assert cache.threads == {backend.loop_thread}  # every use of the cache, on the loop
