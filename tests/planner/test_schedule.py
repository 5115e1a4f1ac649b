"""The `auto` scheduler: its pure decisions, and the rounds it shapes, in virtual time."""

from __future__ import annotations

import anyio
import pytest

from game.match.planlog import PlanningLog
from game.ui.timeline import round_label
from planner.backends.base import LLMRequest
from planner.clock import VirtualClock
from planner.core import PlannerCore, PlanningRound
from planner.events import AgentFellBack, PlanDelivered, PlanEvent, RoundScheduled, RoundStarted
from planner.fallback import Tier
from planner.prompts import build_batch_prompt
from planner.schedule import RequestObservation, ServerModel, plan_round, urgency
from planner.service import make_core, run_round
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import SimModel, get_preset
from tests.factories import snapshot, unit
from tests.planning_helpers import planning_round

AUTO = PlannerSettings(mode="auto", cache=False, budget_ms=2500)


def known_server(*, width: int = 1, decode: float = 100.0, per_plan: float = 20.0) -> ServerModel:
    """A server the scheduler has already learned: no prefill cost, a fixed decode rate."""
    server = ServerModel(
        width=width,
        width_max=width,
        overhead_s=0.0,
        prefill_tps=1e12,
        decode_tps=decode,
        tokens_per_plan=per_plan,
    )
    server.samples = 10
    return server


# ------------------------------------------------------------------ pure decisions


def test_a_budget_that_fits_k_agents_sends_k_and_the_rest_are_over_budget() -> None:
    snaps = [snapshot(unit(i, 5, 5)) for i in range(1, 11)]
    # Each plan takes 20 tokens at 100 tok/s = 0.2 s on a one-at-a-time server; with 1 s
    # left (less a quarter plan of margin) four plans fit.
    schedule = plan_round(snaps, known_server(), 1.0, dict.fromkeys(range(1, 11), 0))
    sent = [a for r in schedule.requests for a in r.agent_ids]
    assert len(schedule.requests) == 1 and len(sent) == 4
    assert sorted(sent + list(schedule.over_budget)) == list(range(1, 11))
    assert schedule.order[:4] == tuple(sent)  # the most urgent are the ones sent
    assert schedule.predicted_s == pytest.approx(0.8)
    assert "6 over budget" in schedule.reason


def test_everyone_fits_on_a_wide_server_split_across_requests() -> None:
    snaps = [snapshot(unit(i, 5, 5)) for i in range(1, 9)]
    schedule = plan_round(snaps, known_server(width=8), 1.0, dict.fromkeys(range(1, 9), 0))
    assert schedule.over_budget == ()
    assert len(schedule.requests) == 8  # one plan each: 0.2-0.27 s, all in flight at once
    assert all(r.predicted_s < 0.3 for r in schedule.requests)


def test_output_budget_stops_a_request_at_the_deadline() -> None:
    snaps = [snapshot(unit(i, 5, 5)) for i in range(1, 4)]
    schedule = plan_round(snaps, known_server(), 0.5, dict.fromkeys(range(1, 4), 0))
    (request,) = schedule.requests
    assert request.max_tokens <= 50  # what 100 tok/s can decode in the 0.5 s left


def test_room_for_the_longest_answer_unless_the_deadline_is_closer() -> None:
    snaps = [snapshot(unit(i, 5, 5)) for i in range(1, 4)]
    blocks = dict.fromkeys(range(1, 4), 0)

    def room(agents: int) -> int:
        return 300 * agents

    (roomy,) = plan_round(snaps, known_server(), 10.0, blocks, room=room).requests
    assert roomy.max_tokens == 900  # not the learned 20 tok/plan: a plan may be longer
    (tight,) = plan_round(snaps, known_server(), 1.0, blocks, room=room).requests
    assert tight.max_tokens <= 100  # what 100 tok/s can decode in the 1 s left
    first = ServerModel()  # nothing learned: the probe gets the room, the deadline cuts it
    (probe,) = plan_round(snaps[:1], first, 1.0, blocks, room=room).requests
    assert probe.max_tokens == 300


def test_a_whole_answer_shows_decoding_is_at_least_that_fast() -> None:
    server = ServerModel()
    prior = server.decode_tps
    whole = RequestObservation(
        sent_at=0.0,
        first_token_at=0.2,
        last_token_at=0.2,
        uncached_prompt_tokens=700,
        completion_tokens=100,
        plans=5,
        wave=1,
        streamed=False,
    )
    server.observe_wave([whole])
    assert server.decode_tps >= 100 / 0.2 > prior
    slow = RequestObservation(0.0, 10.0, 10.0, 700, 100, 5, 1, streamed=False)
    server.observe_wave([slow])
    assert server.decode_tps >= 500  # a slow whole answer is no evidence of slow decoding


def test_a_stream_that_arrives_all_at_once_is_learned_as_fast() -> None:
    # A server with no latency at all (the sim's `instant`) streams every token at one
    # instant: no decode timing, so the prior (60 tok/s) stayed and auto left most of a
    # big squad over budget on a server that answers in no time.
    server = ServerModel()
    at_once = RequestObservation(0.0, 0.0, 0.0, 2000, 400, 18, 1, streamed=True)
    server.observe_wave([at_once])
    assert server.decode_tps >= 1e5
    squad = [snapshot(unit(i, 5, 5)) for i in range(1, 19)]
    schedule = plan_round(squad, server, 2.5, dict.fromkeys(range(1, 19), 100))
    assert schedule.over_budget == ()


def test_urgency_puts_agents_under_fire_and_hurt_first() -> None:
    calm = snapshot(unit(1, 5, 5))
    hurt = snapshot(unit(2, 5, 5, hp=30))
    shot_at = snapshot(unit(3, 5, 5), enemies=(unit(9, 6, 5, squad="blue"),))
    order = sorted([calm, hurt, shot_at], key=urgency, reverse=True)
    assert [s.me.id for s in order] == [3, 2, 1]


def obs(
    sent: float, first: float | None, last: float | None, *, plans: int = 2
) -> RequestObservation:
    return RequestObservation(sent, first, last, 100, 40 * plans, plans, wave=2)


def test_queueing_in_a_wave_reveals_the_servers_width() -> None:
    server = ServerModel()
    # Two requests sent together: the second's first token came after the first ended.
    server.observe_wave([obs(0.0, 0.1, 0.8), obs(0.0, 0.9, 1.6)])
    assert (server.width, server.width_max) == (1, 1)
    wide = ServerModel()
    wide.observe_wave([obs(0.0, 0.1, 0.8), obs(0.0, 0.12, 0.85)])
    assert wide.width == 2 and wide.width_max is None  # still exploring upwards
    assert wide.explore_width() == 4


def test_a_server_that_slows_down_is_followed() -> None:
    server = ServerModel()
    for _ in range(30):
        server.observe_wave([RequestObservation(0.0, 0.05, 0.05 + 79 / 100, 10, 80, 4, 1)])
    assert server.decode_tps == pytest.approx(100, rel=0.01)
    for _ in range(30):
        server.observe_wave([RequestObservation(0.0, 0.05, 0.05 + 79 / 20, 10, 80, 4, 1)])
    assert server.decode_tps == pytest.approx(20, rel=0.01)


# ------------------------------------------------------------------ rounds in virtual time


def auto_round(core: PlannerCore, planning: PlanningRound) -> list[PlanEvent]:
    events: list[PlanEvent] = []
    anyio.run(run_round, core, AUTO, planning, events.append)
    return events


def test_over_budget_agents_get_their_rule_plan_at_once() -> None:
    clock = VirtualClock()
    sim = SimBackend.create("gpu", seed=1, clock=clock, num_parallel=1)
    core = make_core(sim, clock, 1, virtual=True)
    core.server = known_server(decode=110.0, per_plan=20.0)
    core.server.overhead_s = 0.05
    planning = planning_round()
    n = len(planning.snapshots)
    events = auto_round(core, planning)
    t0 = next(e for e in events if isinstance(e, RoundStarted)).at
    (scheduled,) = [e for e in events if isinstance(e, RoundScheduled)]
    over = [e for e in events if isinstance(e, AgentFellBack) and e.cause == "over_budget"]
    assert scheduled.over_budget == tuple(e.agent_id for e in over)
    assert all(e.at == t0 for e in over)  # at the round's start, not at its deadline
    delivered = [e for e in events if isinstance(e, PlanDelivered)]
    assert len(delivered) == n  # every agent has a plan
    from_llm = [e for e in delivered if e.request_id is not None]
    assert len(from_llm) + len(over) == n


def test_auto_learns_a_wide_server_and_fits_a_big_squad() -> None:
    clock = VirtualClock()
    sim = SimBackend.create("gpu", seed=2, clock=clock, num_parallel=16)
    core = make_core(sim, clock, 2, virtual=True)
    shares = []
    for r in range(6):
        clock.jump_to(3.0 * r)
        planning = planning_round(r + 1, scenario="siege", squad="red")
        events = auto_round(core, planning)
        llm = [e for e in events if isinstance(e, PlanDelivered) and e.request_id is not None]
        shares.append(len(llm) / len(planning.snapshots))
    assert core.server.width >= 8
    assert min(shares[-3:]) == 1.0


def test_a_slower_server_mid_match_is_followed_without_deadline_misses() -> None:
    clock = VirtualClock()
    sim = SimBackend.create("gpu", seed=3, clock=clock, num_parallel=1)
    core = make_core(sim, clock, 3, virtual=True)
    for r in range(4):
        clock.jump_to(3.0 * r)
        auto_round(core, planning_round(r + 1))
    fast = core.server.decode_tps
    sim.sim.preset = get_preset("mac")  # the server got slower (another model, a busy GPU)
    late = []
    for r in range(4, 12):
        clock.jump_to(3.0 * r)
        events = auto_round(core, planning_round(r + 1))
        late.append(
            sum(1 for e in events if isinstance(e, AgentFellBack) and e.cause == "deadline")
        )
    assert core.server.decode_tps < fast * 0.6
    assert late[-4:] == [0, 0, 0, 0]  # once learned, nothing it sends misses the deadline


# ------------------------------------------------------------------ the sim frees slots


def test_a_cut_stream_frees_its_slot() -> None:
    sim = SimModel(get_preset("gpu"), num_parallel=1)
    long = [("system", "s"), ("user", "x" * 40)]
    first = sim.respond(0.0, long, max_tokens=None)
    assert first.end > 0.0
    sim.release(first, 0.01)  # the client left after 10 ms
    second = sim.respond(0.02, long)
    assert second.start == 0.02  # not queued behind the abandoned answer


def test_a_queued_request_whose_client_left_never_holds_the_slot() -> None:
    sim = SimModel(get_preset("gpu"), num_parallel=1)
    msgs = [("system", "s"), ("user", "y" * 400)]
    running = sim.respond(0.0, msgs)
    queued = sim.respond(0.0, msgs)
    assert queued.start == running.end
    sim.release(queued, 0.05)  # gone before it ever started
    sim.release(running, 0.1)
    assert sim.respond(0.2, msgs).start == 0.2


def test_the_sim_backend_frees_the_slot_when_the_client_stops_reading() -> None:
    clock = VirtualClock()
    backend = SimBackend.create("gpu", seed=4, clock=clock, num_parallel=1)
    planning = planning_round()
    parts = build_batch_prompt(planning.snapshots, Tier.simplified_llm)
    request = LLMRequest(parts.system, parts.user, parts.agent_ids, max_tokens=4000)

    async def read_a_little() -> float:
        stream = backend.stream(request)
        stamp = 0.0
        async for event in stream:
            stamp = getattr(event, "emitted_at", None) or stamp
            if stamp > 0.2:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return stamp

    left_at = anyio.run(read_a_little)
    after = backend.sim.respond(left_at + 0.01, [("system", parts.system), ("user", parts.user)])
    assert after.start == pytest.approx(left_at + 0.01)


def test_the_decision_reaches_the_waterfall_and_the_inspector_record() -> None:
    clock = VirtualClock()
    sim = SimBackend.create("gpu", seed=1, clock=clock, num_parallel=1)
    core = make_core(sim, clock, 1, virtual=True)
    core.server = known_server(decode=40.0, per_plan=20.0)  # 0.5 s a plan: 4 of 6 fit
    planning = planning_round()
    log = PlanningLog()
    for event in auto_round(core, planning):
        log.apply(event)
    trace = log.round_trace(planning.round_id)
    assert trace is not None and trace.shape is not None
    assert trace.shape.startswith("1 req") and "over" in trace.shape
    assert "auto" in round_label(trace) and trace.shape in round_label(trace)
    sent = [b for b in trace.bars.values() if b.predicted_ms is not None]
    over = [b for b in trace.bars.values() if b.cause == "over_budget"]
    assert sent and over and len(sent) + len(over) == len(planning.snapshots)
    assert all(b.schedule and b.schedule.startswith("request 1 of 1") for b in sent)
    assert all(b.schedule and b.schedule.startswith("over budget:") for b in over)


def test_when_nothing_fits_one_agent_still_probes_the_server() -> None:
    snaps = [snapshot(unit(i, 5, 5)) for i in range(1, 5)]
    slow = known_server(decode=5.0)  # 4 s a plan: nothing fits in 1 s
    schedule = plan_round(snaps, slow, 1.0, dict.fromkeys(range(1, 5), 0))
    (probe,) = schedule.requests
    assert probe.agent_ids == schedule.order[:1]
    assert probe.max_tokens <= 16  # a short answer, cut at the deadline if still running
    assert schedule.over_budget == schedule.order[1:]
    assert "probing" in schedule.reason
