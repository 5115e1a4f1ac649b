"""Fault survival over real loopback HTTP, through the real planner thread.

For every fault the sim server can inject, and for servers that refuse connections,
answer byte by byte, or never stop sending: no crash, every agent gets exactly one plan
every round, the cause is recorded, and for server-health failures the circuit breaker
opens, refuses requests while open (cause circuit_open) and closes again once the
server is healthy.

Time: the planner's clock is the real monotonic clock plus an offset the test can step
(`SteppableClock`). The breaker's cooldown is long (60 s of that clock), so it never
ends by itself during a test, and the test ends it by stepping the clock: no sleeps to
make time pass, and no race between a short cooldown and a slow CI machine. Waiting for
the planner thread's events is bounded polling (tests/planning_helpers.py: a hang
bound, not a speed bound).

Timeouts are long (a minute), so no healthy answer ever races one, however loaded the
machine. Only the tests whose fault is a server that stops sending use a short request
timeout (250 ms), and only while that server is failing: it stalls until the client
gives up, so only the timeout's lower bound matters. Healing the server restores the
long timeout before the round that must be answered.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import pytest

from game.match.controllers import HeuristicController
from game.match.maps import load
from game.match.session import MatchConfig, Planning, Session
from game.rules.world import TICK_SECONDS, TICKS_PER_TURN
from planner.backends.ollama import OllamaBackend
from planner.backends.openai import OpenAIBackend
from planner.clock import MonotonicClock
from planner.config import PlannerConfig
from planner.errors import Cause
from planner.events import (
    AgentFellBack,
    PlanDelivered,
    PlanEvent,
    RoundDone,
)
from planner.fallback import LLM_TIERS
from planner.prompts import decode_agent_blocks
from planner.service import PlannerService
from planner.settings import PlannerSettings
from planner.sim.model import FAULT_KINDS, FaultConfig, FaultKind
from planner.sim.server import SimServer
from tests.loopback import (
    Action,
    Endless,
    LoopbackServer,
    Pause,
    RefusingPort,
    Request,
    chunk,
    head,
)
from tests.planning_helpers import planning_round, returns, round_done, wait_for, wait_until

COOLDOWN_S = 60.0
ENV = {
    "LLM_BREAKER_THRESHOLD": "2",
    "LLM_BREAKER_COOLDOWN_MS": str(int(COOLDOWN_S * 1000)),
    "LLM_TIMEOUT_MS": "60000",
    "LLM_RETRY_MAX": "1",
}
SHORT_TIMEOUT = {"LLM_TIMEOUT_MS": "250", "LLM_CONNECT_TIMEOUT_MS": "250"}
"""For a server that stops sending: the request gives up long before the round's budget."""
SETTINGS = PlannerSettings(mode="batched", budget_ms=120_000, cache=False)
"""The round budget is longer than any request's timeout, so a failing request fails
(and counts against the breaker) before the round's deadline cancels it."""
AGENTS = tuple(s.me.id for s in planning_round().snapshots)

SERVER_FAULTS: frozenset[FaultKind] = frozenset({"http_500", "http_429", "stall", "disconnect"})
"""The sim's faults that are the server's failing (the others are the model's text)."""
CAUSES_OF: dict[FaultKind, set[Cause]] = {
    "malformed_json": {"parse_error"},
    "truncation": {"truncated"},  # finish_reason "length": cut by the output budget
    "wrong_ids": {"missing_from_batch"},
    "missing_agents": {"missing_from_batch"},
    "prose_fences": set(),  # the parser reads through prose and fences: nothing fails
    "http_500": {"http_status"},
    "http_429": {"http_status"},
    "stall": {"timeout"},
    "disconnect": {"connect"},
}

TEXT_CAUSES: set[Cause] = {"parse_error", "missing_from_batch", "validation_error"}


class SteppableClock(MonotonicClock):
    """Real time plus an offset that only the test moves (between rounds)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return super().now() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


# --------------------------------------------------------------------------- helpers


def play_round(service: PlannerService, round_id: int) -> list[PlanEvent]:
    """One round, to its RoundDone; asserts every agent got exactly one plan."""
    service.submit(planning_round(round_id))
    events = wait_for(service, round_done(round_id))
    delivered = sorted(e.outcome.agent_id for e in events if isinstance(e, PlanDelivered))
    assert delivered == sorted(AGENTS), f"round {round_id}: plans for {delivered}"
    assert all(e.outcome.steps for e in events if isinstance(e, PlanDelivered))
    return events


def causes(events: Sequence[PlanEvent]) -> set[str]:
    """Every cause recorded: fallbacks and re-requests, and the causes delivered plans carry."""
    found: set[str] = {e.cause for e in events if isinstance(e, AgentFellBack)}
    found |= {
        e.outcome.cause
        for e in events
        if isinstance(e, PlanDelivered) and e.outcome.cause is not None
    }
    return found


def llm_plans(events: Sequence[PlanEvent]) -> int:
    return sum(1 for e in events if isinstance(e, PlanDelivered) and e.outcome.tier in LLM_TIERS)


def requests_made(events: Sequence[PlanEvent]) -> int:
    """Requests that really went out (an open breaker refuses before the attempt)."""
    return sum(e.stats.requests for e in events if isinstance(e, RoundDone))


def breaker_after(events: Sequence[PlanEvent]) -> str:
    return next(e.stats.breaker for e in events if isinstance(e, RoundDone))


@contextmanager
def service_for(
    backend: OpenAIBackend | OllamaBackend, env: Mapping[str, str] = ENV
) -> Iterator[tuple[PlannerService, SteppableClock]]:
    clock = SteppableClock()
    service = PlannerService(backend, SETTINGS, seed=5, clock=clock, env=env)
    try:
        yield service, clock
    finally:
        service.close()
    assert not [t for t in threading.enumerate() if t.name == "squadmind-planner"]


def open_then_close(
    service: PlannerService, clock: SteppableClock, heal: Callable[[], object]
) -> list[list[PlanEvent]]:
    """Rounds until the breaker opens; one refused round; heal, end the cooldown, and a
    round that closes it. Returns every round's events."""
    rounds: list[list[PlanEvent]] = []
    while service.core.breaker.openings == 0:
        assert len(rounds) < 3, "the breaker did not open within 3 failing rounds"
        rounds.append(play_round(service, len(rounds) + 1))
    assert breaker_after(rounds[-1]) == "open"

    refused = play_round(service, len(rounds) + 1)  # within the cooldown
    rounds.append(refused)
    assert requests_made(refused) == 0, "an open breaker lets no request out"
    assert causes(refused) == {"circuit_open"}

    heal()
    service.core.timeouts = PlannerConfig.from_env(
        ENV
    ).timeouts()  # the healthy answer races no timeout
    clock.step(COOLDOWN_S)
    assert service.breaker_state() == "half_open"
    healed = play_round(service, len(rounds) + 1)
    rounds.append(healed)
    assert breaker_after(healed) == "closed"
    assert service.breaker_state() == "closed"
    assert llm_plans(healed) == len(AGENTS), "the healed server planned every agent"
    return rounds


# --------------------------------------------------------------------------- the sim's faults


def test_every_fault_kind_has_a_test() -> None:
    assert set(CAUSES_OF) == set(FAULT_KINDS)


@pytest.mark.parametrize("kind", sorted(SERVER_FAULTS))
def test_server_fault_opens_the_breaker_and_it_closes_again(kind: FaultKind) -> None:
    with SimServer(preset="instant", seed=7, faults=FaultConfig.only(kind)) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        env = {**ENV, **SHORT_TIMEOUT} if kind == "stall" else ENV
        with service_for(backend, env) as (service, clock):

            def heal() -> None:
                server.sim.faults = FaultConfig.none()

            rounds = open_then_close(service, clock, heal)
    failing = [e for r in rounds[:-2] for e in r]
    assert CAUSES_OF[kind] <= causes(failing), causes(failing)
    if kind == "disconnect":
        # The stream broke after some plans had landed: those are kept, and the broken
        # connection still counts against the breaker.
        assert llm_plans(failing) > 0


@pytest.mark.parametrize("kind", sorted(set(FAULT_KINDS) - SERVER_FAULTS))
def test_text_fault_falls_back_per_agent_and_leaves_the_breaker_closed(kind: FaultKind) -> None:
    """Bad text is the model's failing, not the server's: the affected agents are
    re-requested or fall back with the cause, the others keep their LLM plans."""
    with SimServer(preset="instant", seed=7, faults=FaultConfig.only(kind)) as server:
        backend = OllamaBackend(server.url, "sim-instant")
        with service_for(backend) as (service, _):
            rounds = [play_round(service, i) for i in (1, 2, 3)]
            assert service.breaker_state() == "closed"
            assert service.core.breaker.openings == 0
    seen = causes([e for r in rounds for e in r])
    # A corrupted wrapper can lose every agent of the batch (missing_from_batch), and a
    # re-request may meet another kind of damage; the kind's own cause must be there.
    assert CAUSES_OF[kind] <= seen <= CAUSES_OF[kind] | TEXT_CAUSES, seen
    if kind == "prose_fences":
        assert all(llm_plans(r) == len(AGENTS) for r in rounds)


# --------------------------------------------------------------------------- scripted servers


def sse_plans(request: Request) -> list[Action]:
    """A quick, valid OpenAI stream with a legal plan for every agent asked for."""
    user = next(m["content"] for m in request.json()["messages"] if m["role"] == "user")
    ids = [snap.me.id for snap in decode_agent_blocks(user)]
    plans = ",".join(f'{{"agent_id":{a},"steps":[{{"act":"Scan"}},{{"act":"Wait"}}]}}' for a in ids)
    body = json.dumps({"choices": [{"index": 0, "delta": {"content": f'{{"plans":[{plans}]}}'}}]})
    finish = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [
        head(200, [("Content-Type", "text/event-stream")]),
        chunk(f"data: {body}\n\n".encode()),
        chunk(f"data: {finish}\n\ndata: [DONE]\n\n".encode()),
        b"0\r\n\r\n",
    ]


def byte_by_byte(script: Sequence[Action], pause: float) -> list[Action]:
    """The same reply, one byte at a time with a pause before each."""
    out: list[Action] = []
    for action in script:
        if isinstance(action, bytes):
            for i in range(len(action)):
                out += [Pause(pause), action[i : i + 1]]
        else:
            out.append(action)
    return out


def test_refused_connections_open_the_breaker_and_a_server_that_comes_up_closes_it() -> None:
    refusing = RefusingPort()  # no concurrent test run can take the port meanwhile
    backend = OpenAIBackend(f"http://127.0.0.1:{refusing.port}", "sim-instant", profile="vllm")
    server = SimServer(preset="instant", seed=7, port=refusing.port)

    def come_up() -> None:
        refusing.release()
        server.start()

    try:
        with service_for(backend) as (service, clock):
            rounds = open_then_close(service, clock, come_up)
    finally:
        refusing.release()
        server.stop()
    assert "connect" in causes([e for r in rounds[:-2] for e in r])


def test_a_byte_by_byte_server_slower_than_the_timeout_is_cut_and_trips_the_breaker() -> None:
    slow = {"on": True}

    def handler(request: Request) -> list[Action]:
        reply = sse_plans(request)
        # 20 ms per byte: the ~600-byte reply takes ~12 s at the least, far past the
        # 250 ms timeout (a pause never ends early, so a slow machine only adds to it).
        return byte_by_byte(reply, 0.02) if slow["on"] else reply

    with LoopbackServer(handler) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        with service_for(backend, {**ENV, **SHORT_TIMEOUT}) as (service, clock):
            rounds = open_then_close(service, clock, lambda: slow.update(on=False))
    assert causes(rounds[0]) == {"timeout"}


def endless_content() -> Endless:
    piece = json.dumps({"choices": [{"index": 0, "delta": {"content": "ab" * 2048}}]})
    return Endless(
        head(200, [("Content-Type", "text/event-stream")]),
        chunk(f"data: {piece}\n\n".encode()),
    )


def test_an_endless_stream_is_cut_by_the_size_bound_with_cause_oversize() -> None:
    with LoopbackServer(lambda request: endless_content()) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        with service_for(backend) as (service, _):
            rounds = [play_round(service, i) for i in (1, 2)]
            # A too-long answer is the model's doing: the server is not unhealthy.
            assert service.breaker_state() == "closed"
    for events in rounds:
        assert causes(events) == {"oversize"}


def test_an_endless_trickle_of_keepalives_is_cut_by_the_timeout() -> None:
    trickle = Endless(
        head(200, [("Content-Type", "text/event-stream")]), chunk(b": keep-alive\n\n"), 0.01
    )
    endless = {"on": True}

    def handler(request: Request) -> Sequence[Action]:
        return trickle if endless["on"] else sse_plans(request)

    with LoopbackServer(handler) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        with service_for(backend, {**ENV, **SHORT_TIMEOUT}) as (service, clock):
            rounds = open_then_close(service, clock, lambda: endless.update(on=False))
    assert causes(rounds[0]) == {"timeout"}


# --------------------------------------------------------------------------- the frame loop


def test_the_frame_loop_never_waits_for_a_stalled_stream() -> None:
    """100 frames of Session.update() and 1000 drains while the planner's stream is
    stalled: they all return and the round is still open after them (the frame loop only
    drains a queue). Neither the request's timeout nor the budget would end the stall
    within ten minutes, so a frame or a close that waited for the planner would hang:
    the hang bound (tests/planning_helpers.py) catches that, and nothing here is timed."""
    scenario = load("village")
    with SimServer(preset="instant", seed=3, faults=FaultConfig.only("stall")) as server:
        backend = OpenAIBackend(server.url, "sim-instant", profile="vllm")
        service = PlannerService(
            backend,
            PlannerSettings(mode="batched", budget_ms=600_000),
            seed=3,
            env={"LLM_TIMEOUT_MS": "600000"},
        )
        blue = HeuristicController(random.Random(1))
        config = MatchConfig(scenario, 1, scenario.turn_limit, ("red",))
        session = Session(config, {"blue": blue}, Planning(service))
        try:
            session.update(TICK_SECONDS)  # the first tick: the turn starts, red's round is sent

            def first_token() -> bool:
                # The round starts on the planner's thread: wait for bytes to come and stop.
                session.update(0.0)
                rounds = session.log.rounds
                return bool(rounds) and rounds[-1].first_token_ms is not None

            wait_until(first_token, lambda: "no first token")

            def frames() -> None:
                for _ in range(100):
                    session.update(1 / 60)
                for _ in range(1000):
                    service.drain()

            returns(frames, "100 frames and 1000 drains")
            assert session.world.tick < TICKS_PER_TURN, "still the first turn"
            assert not session.log.rounds[-1].done, "the stalled round is still open"
        finally:
            returns(session.close, "Session.close()")
    assert not [t for t in threading.enumerate() if t.name == "squadmind-planner"]
