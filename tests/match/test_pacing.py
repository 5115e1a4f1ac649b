"""No idle agents, and planning ahead: interim plans, the plan-ahead lead, what the
report says of them, and that records and replays keep them. All on virtual time."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from game.__main__ import main
from game.match import headless as headless_match
from game.match.cli import build_parser
from game.match.controllers import HeuristicController
from game.match.launch import build, build_replay
from game.match.maps import load
from game.match.pacing import MAX_LEAD_TICKS, LeadTimer, Pacing, first_step_legal
from game.match.record import load_record
from game.match.session import MatchConfig, Planning, Session
from game.rules.steps import Attack, MoveTo, Scan, Step
from game.rules.world import TICK_SECONDS, TICKS_PER_TURN
from planner.core import PlanningRound
from planner.events import PlanDelivered, RoundDone
from planner.fallback import AgentOutcome, Tier
from tests.observers import Watcher
from tests.planning_helpers import FakePlanner

SCENARIOS = ("skirmish", "village", "siege")


def headless(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Play a headless match on the sim's virtual clock; its JSON report."""
    report = tmp_path / "r.json"
    assert main(["--headless", "--backend", "sim", *args, "--report", str(report)]) == 0
    data: dict[str, Any] = json.loads(report.read_text("utf-8"))
    return data


# ---------------------------------------------------------------- idle ticks


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_interim_plans_leave_no_red_agent_idle_on_the_cpu_preset(
    tmp_path: Path, scenario: str
) -> None:
    args = ("--red", "llm", "--scenario", scenario, "--sim-preset", "cpu", "--turns", "10")
    on = headless(tmp_path, *args)
    off = headless(tmp_path, *args, "--no-interim")
    assert on["pacing"]["interim"] and not off["pacing"]["interim"]
    assert on["idle_ticks"]["red"] == 0 and on["interim_steps"]["red"] > 0
    assert off["idle_ticks"]["red"] > 0 and off["interim_steps"]["red"] == 0
    # Blue is the rule controller: interim plans are for LLM agents only.
    assert on["interim_plans"]["blue"] == 0


def test_idle_ticks_are_counted_for_rule_squads_too() -> None:
    red = HeuristicController(random.Random(1))
    blue = HeuristicController(random.Random(2))
    session = Session(MatchConfig(load("village"), 1, 4), {"red": red, "blue": blue})
    session.run_to_end()
    # A heuristic plan is done before the turn ends, and a rule squad waits for the next.
    assert session.idle_ticks["red"] > 0 and session.idle_ticks["blue"] > 0
    assert session.result_summary()["interim_plans"] == {"blue": 0, "red": 0}


# ---------------------------------------------------------------- interim plans, unit by unit


def held_session(pacing: Pacing | None = None) -> tuple[Session, FakePlanner, Watcher]:
    planner = FakePlanner()
    watcher = Watcher()
    blue = HeuristicController(random.Random(3))
    session = Session(
        MatchConfig(load("village"), 0, 20, ("red",)),
        {"blue": blue},
        Planning(planner),
        observers=[watcher],
        pacing=pacing or Pacing(),
    )
    return session, planner, watcher


def delivered(
    planning: PlanningRound, agent_id: int, steps: tuple[Step, ...], wait_ms: float = 400.0
) -> PlanDelivered:
    outcome = AgentOutcome(agent_id, steps, Tier.simplified_llm, None, False, False)
    return PlanDelivered(
        planning.round_id, planning.squad, outcome, wait_ms, None, 1, "", "", wait_ms / 1000
    )


def test_an_interim_plan_is_replaced_by_the_llm_plan_when_it_lands() -> None:
    session, planner, watcher = held_session()
    red = [u.id for u in session.world.living("red")]
    session.step_tick()  # tick 0: the round goes out, nobody has a plan yet
    (first,) = planner.submitted
    interim = [(t, u) for t, u, _, source in watcher.of("applied") if source == "interim"]
    assert interim == [(0, uid) for uid in red]
    assert set(session.interim_agents) == set(red)
    for _ in range(3):
        session.step_tick()
    lands = red[0]
    goal = session.scenario.objective_centre
    assert goal is not None
    plan = (MoveTo(x=goal[0], y=goal[1]), Scan())
    planner.queued.append(delivered(first, lands, plan))
    tick = session.world.tick
    session.step_tick()
    assert [a for a in watcher.of("applied") if a[1] == lands][-1] == (tick, lands, plan, "llm")
    assert lands not in session.interim_agents
    assert set(session.interim_agents) == set(red[1:])
    unit = session.world.units[lands]
    assert unit.active is not None and unit.active.step == plan[0]


def test_a_previous_plan_still_legal_is_kept_instead_of_a_new_interim_one() -> None:
    session, planner, watcher = held_session(Pacing(interim=True, plan_ahead=False))
    while session.world.tick < TICKS_PER_TURN:
        session.step_tick()
    world = session.world
    keep, stale, spent = (u.id for u in list(world.living("red"))[:3])
    goal = session.scenario.objective_centre
    assert goal is not None
    far = MoveTo(x=goal[0], y=goal[1])
    world.assign_plan(keep, [far, Scan()])
    world.assign_plan(stale, [Attack(target_id=999), Scan()])  # no such unit: illegal now
    world.assign_plan(spent, [])
    assert first_step_legal(world.units[keep], world.snapshot_of(keep), world.grid)
    before = len(watcher.of("applied"))
    session.step_tick()  # tick 12: the second round goes out
    assert len(planner.submitted) == 2
    given = {u: source for t, u, _, source in watcher.of("applied")[before:]}
    assert given.get(stale) == "interim" and given.get(spent) == "interim"
    assert keep not in given
    active = world.units[keep].active
    assert active is not None and active.step == far


def test_with_interim_off_agents_hold_their_stale_plans() -> None:
    session, _, watcher = held_session(Pacing(interim=False, plan_ahead=False))
    for _ in range(2 * TICKS_PER_TURN):
        session.step_tick()
    assert watcher.of("applied") == []
    # Nothing ever lands: every red agent stands idle from the first tick on.
    red_units = len(load("village").spawns) // 2
    assert session.idle_ticks["red"] >= TICKS_PER_TURN * red_units


def test_interim_plans_switch_on_from_the_next_tick() -> None:
    session, _, watcher = held_session(Pacing(interim=False, plan_ahead=False))
    session.step_tick()
    assert watcher.of("applied") == []
    session.set_pacing(session.pacing.with_(interim=True))
    session.step_tick()
    assert {source for *_, source in watcher.of("applied")} == {"interim"}
    assert session.idle_ticks["red"] == len(list(session.world.living("red")))  # tick 0 only


# ---------------------------------------------------------------- planning ahead


def test_a_rounds_sample_is_nearly_its_slowest_plan_wait() -> None:
    lead = LeadTimer()
    waits = (100.0, 500.0, 600.0, 650.0, 700.0, 0.0, 300.0, 200.0, 400.0, 2500.0)
    for wait in waits:  # p90: the one slowest of ten does not set the pace
        lead.delivered(7, wait)
    lead.delivered(8, 2000.0)
    lead.forget(8)  # cancelled: teaches nothing
    lead.round_done("red", 8)
    assert lead.lead_ms("red") is None
    lead.round_done("red", 7)
    assert lead.lead_ms("red") == 700.0 and lead.lead_ticks("red") == 3


def test_the_lead_is_the_p90_of_recent_rounds_capped_at_three_quarters_of_a_turn() -> None:
    lead = LeadTimer(samples=3)
    assert lead.lead_ms("red") is None and lead.lead_ticks("red") is None
    for ms in (400.0, 900.0, 600.0):
        lead.observe("red", ms)
    assert lead.lead_ms("red") == 900.0 and lead.lead_ticks("red") == 4  # 1000 ms: rounded up
    lead.observe("red", 5000.0)
    lead.observe("red", 5000.0)  # 400 is forgotten: 600, 5000, 5000
    assert lead.lead_ms("red") == MAX_LEAD_TICKS * TICK_SECONDS * 1000
    assert lead.lead_ticks("red") == MAX_LEAD_TICKS
    quick = LeadTimer()
    quick.observe("blue", 100.0)  # under half a tick: planning ahead would not pay
    assert quick.lead_ticks("blue") == 0 and quick.lead_ticks("red") is None


def test_rounds_start_before_their_turn_by_the_learned_lead() -> None:
    session, planner, _ = held_session(Pacing(plan_ahead=True))
    red = [u.id for u in session.world.living("red")]
    session.step_tick()
    (first,) = planner.submitted
    # The slower agents waited 1.1 s for their plans: the next round starts 5 ticks
    # (1.25 s) early.
    waits = [300.0, 1100.0, 1100.0, 1100.0, 1100.0, 1100.0][: len(red)]
    for uid, wait in zip(red, waits, strict=True):
        planner.queued.append(delivered(first, uid, (Scan(),), wait))
    planner.queued.append(RoundDone(first.round_id, "red", stats_of(2400.0), 2.4))
    while len(planner.submitted) == 1:
        session.step_tick()
    assert session.world.tick == TICKS_PER_TURN - 5 + 1  # submitted at tick 7
    assert session.plan_ahead_ms == 1250.0
    # Its turn comes: no second round for it; the next one is early too.
    while session.world.tick <= 2 * TICKS_PER_TURN - 5:
        session.step_tick()
    assert len(planner.submitted) == 3
    summary = session.result_summary()["pacing"]
    assert summary["rounds_ahead"] == 2 and summary["lead_ms_p50"] == 1250.0


def test_the_lead_is_learned_from_the_agents_the_llm_was_asked_for() -> None:
    session, planner, _ = held_session(Pacing(plan_ahead=True))
    red = [u.id for u in session.world.living("red")]
    session.step_tick()
    (first,) = planner.submitted
    # Half the squad served by the cache (their waits are not the LLM's: left out), half
    # asked for, 1.1 s each: the lead is 5 ticks, not the 6 the hits' waits would give.
    for i, uid in enumerate(red):
        event = delivered(first, uid, (Scan(),), 2400.0 if i % 2 else 1100.0)
        if i % 2:
            event = replace(event, outcome=replace(event.outcome, from_cache=True))
        planner.queued.append(event)
    planner.queued.append(RoundDone(first.round_id, "red", stats_of(2400.0), 2.4))
    while len(planner.submitted) == 1:
        session.step_tick()
    assert session.plan_ahead_ms == 1250.0


def test_plan_ahead_off_submits_at_turn_starts_only() -> None:
    session, planner, watcher = held_session(Pacing(interim=True, plan_ahead=False))
    session.step_tick()
    (first,) = planner.submitted
    planner.queued.append(delivered(first, first.snapshots[0].me.id, (Scan(),), 1100.0))
    planner.queued.append(RoundDone(first.round_id, "red", stats_of(1100.0), 1))
    while session.world.tick < 3 * TICKS_PER_TURN:
        session.step_tick()
    assert [tick for tick, _ in watcher.of("round")] == [0, 12, 24]


def test_no_round_is_planned_ahead_for_a_turn_past_the_limit() -> None:
    planner = FakePlanner()
    session = Session(
        MatchConfig(load("village"), 0, 2, ("red",)), {"blue": blue()}, Planning(planner)
    )
    session.step_tick()
    (first,) = planner.submitted
    planner.queued.append(delivered(first, first.snapshots[0].me.id, (Scan(),), 1500.0))
    planner.queued.append(RoundDone(first.round_id, "red", stats_of(1500.0), 1))
    session.run_to_end()
    assert len(planner.submitted) == 2  # turns 0 and 1, the second early


def blue() -> HeuristicController:
    return HeuristicController(random.Random(4))


def stats_of(time_to_all_ms: float) -> Any:
    from planner.events import RoundStats

    return RoundStats(6, 100.0, 300.0, time_to_all_ms, 1, 0, 500, 0, 180, 0, 6, "closed")


@pytest.mark.parametrize("preset", ["gpu", "cpu"])
def test_planning_ahead_on_the_sim_is_deterministic(preset: str) -> None:
    args = ["--headless", "--backend", "sim", "--sim-preset", preset, "--scenario", "village"]
    args += ["--seed", "4", "--turns", "8", "--plan-ahead"]
    hashes, summaries = [], []
    for _ in range(2):
        session = build(build_parser().parse_args(args), load("village"), window=False).session
        watcher = Watcher()
        session.observers.append(watcher)
        session.run_to_end()
        session.close()
        hashes.append(session.world.state_hash())
        summaries.append(session.result_summary())
        early = [-tick % TICKS_PER_TURN for tick, _ in watcher.of("round")]
        assert early[0] == 0 and any(early) and max(early) <= MAX_LEAD_TICKS
    assert hashes[0] == hashes[1] and summaries[0] == summaries[1]


# ---------------------------------------------------------------- the report


@pytest.mark.parametrize("preset", ["gpu", "cpu"])
def test_the_report_fields_exist_and_add_up(tmp_path: Path, preset: str) -> None:
    report = headless(tmp_path, "--scenario", "siege", "--sim-preset", preset, "--turns", "6")
    for key in ("idle_ticks", "interim_plans", "interim_steps"):
        assert set(report[key]) == {"blue", "red"}, key
    assert report["interim_steps"]["red"] >= report["interim_plans"]["red"] > 0
    assert report["over_budget"] == report["fallback_events"].get("over_budget", 0)
    tiers = report["plans_by_tier"]
    llm_plans = tiers["full_llm"] + tiers["simplified_llm"]
    per_plan = report["output_tokens_per_plan"]
    if llm_plans:
        assert per_plan == round(report["completion_tokens"] / llm_plans, 1)
    else:
        assert per_plan is None
    assert report["pacing"]["rounds_ahead"] <= report["rounds"]
    # Every tick, every living unit is idle or not: idle ticks are a share of unit ticks.
    units = {"blue": 0, "red": 0}
    for u in load("siege").spawns:
        units[u.squad] += 1
    for squad, n in units.items():
        assert report["idle_ticks"][squad] <= report["unit_ticks"][squad] <= n * report["ticks"]
    assert report["unit_ticks"]["blue"] > 0 and report["idle_ticks"]["blue"] > 0


def test_interim_steps_in_the_summary_are_the_interim_plans_observed() -> None:
    args = ["--headless", "--backend", "sim", "--sim-preset", "cpu", "--scenario", "skirmish"]
    session = build(build_parser().parse_args(args), load("skirmish"), window=False).session
    watcher = Watcher()
    session.observers.append(watcher)
    session.run_to_end()
    session.close()
    interim = [steps for _, _, steps, source in watcher.of("applied") if source == "interim"]
    summary = session.result_summary()
    assert summary["interim_plans"]["red"] == len(interim)
    assert summary["interim_steps"]["red"] == sum(len(s) for s in interim)


# ---------------------------------------------------------------- records and replays


@pytest.mark.parametrize("preset", ["gpu", "cpu"])
def test_a_record_with_interim_plans_replays_to_its_hash(
    tmp_path: Path, preset: str, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--sim-preset", preset, "--scenario", "village"]
    args += ["--plan-ahead"]
    assert main([*args, "--seed", "2", "--turns", "10", "--record", str(record)]) == 0
    loaded = load_record(record)
    sources = {line.source for lines in loaded.applied.values() for line in lines}
    assert "interim" in sources
    assert loaded.header.pacing == {"interim": True, "plan_ahead": True, "opening": True}
    assert any(r.tick % TICKS_PER_TURN for r in loaded.rounds)  # planned ahead
    capsys.readouterr()
    assert main(["--headless", "--replay", str(record)]) == 0
    assert "state_hash matches the record" in capsys.readouterr().err
    # The replay asks at the record's ticks and counts the same idle and interim plans.
    launch = build_replay(build_parser().parse_args(["--replay", str(record)]), window=False)
    watcher = Watcher()
    launch.session.observers.append(watcher)
    launch.session.run_to_end()
    launch.session.close()
    assert [t for t, _ in watcher.of("round")] == [r.tick for r in loaded.rounds]
    assert launch.session.pacing == Pacing(plan_ahead=True)
    replayed = launch.session.result_summary()
    original = build(
        build_parser().parse_args([*args, "--seed", "2", "--turns", "10"]),
        load("village"),
        window=False,
    ).session
    original.run_to_end()
    original.close()
    for key in ("idle_ticks", "interim_plans", "interim_steps", "pacing", "rounds"):
        assert replayed[key] == original.result_summary()[key], key


def test_a_record_remembers_pacing_switched_off(tmp_path: Path) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "skirmish", "--turns", "4"]
    assert main([*args, "--no-interim", "--no-plan-ahead", "--record", str(record)]) == 0
    launch = build_replay(build_parser().parse_args(["--replay", str(record)]), window=False)
    assert launch.session.pacing == Pacing(interim=False, plan_ahead=False)
    launch.session.close()


def test_the_flags_reach_the_session() -> None:
    for extra, pacing in (
        ((), Pacing()),
        (("--no-interim",), Pacing(interim=False)),
        (("--plan-ahead",), Pacing(plan_ahead=True)),
        (("--no-plan-ahead",), Pacing(plan_ahead=False)),
    ):
        args = build_parser().parse_args(["--headless", "--backend", "sim", *extra])
        session = build(args, load("skirmish"), window=False).session
        assert session.pacing == pacing
        session.close()


# ---------------------------------------------------------------- the ladder


def test_the_ladder_plays_both_sides_and_tabulates_the_gap_to_instant() -> None:
    from game.match.ladder import Entry, Outcome, entries, play, table

    todo = entries(["skirmish"], range(2), ["simplified"], ["gpu", "instant"], turns=3)
    assert {(e.llm, e.preset) for e in todo} == {
        (side, preset) for side in ("red", "blue") for preset in ("gpu", "instant")
    }
    one = play(Entry("skirmish", 0, "blue", "simplified", "instant", turns=3))
    assert one.winner in ("red", "blue", "draw")
    assert play(one.entry) == one  # deterministic on the virtual clock
    fake = [
        Outcome(Entry("skirmish", seed, "red", "full", preset), winner, 1)
        for preset, winners in (("gpu", ["red", "draw"]), ("instant", ["red", "red"]))
        for seed, winner in enumerate(winners)
    ]
    text = table(fake, ["gpu", "instant"])
    rows = {line.split(" | ")[2]: line for line in text.splitlines()[2:]}
    assert "50% (1), +1.0 | 100% (0), +1.0 | -50 pts" in rows["skirmish"]
    assert "-50 pts" in rows["**all**"]


# ---------------------------------------------------------------- the opening


def sim_match(*flags: str) -> Any:
    args = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "4"]
    session = build(
        build_parser().parse_args([*args, "--turns", "3", *flags]), load("village"), window=False
    ).session
    session.run_to_end()
    session.close()
    return session


def test_the_opening_plans_the_first_turn_before_the_world_moves() -> None:
    session = sim_match()
    first = [
        w for w, turn in zip(session.act_waits_ms, session.act_wait_turns, strict=True) if turn == 0
    ]
    # every red agent acts on its LLM plan from the first tick
    red = [u for u in session.world.units.values() if u.squad == "red"]
    assert len(first) == len(red) and set(first) == {0.0}
    assert session.opening_ms is not None and 0 < session.opening_ms <= 2500 + 1000
    pacing = session.result_summary()["pacing"]
    assert pacing["opening"] and pacing["opening_ms"] == round(session.opening_ms, 3)
    late = sim_match("--no-opening")
    first_late = [
        w for w, turn in zip(late.act_waits_ms, late.act_wait_turns, strict=True) if turn == 0
    ]
    assert late.opening_ms is None and max(first_late) > 0


def test_the_opening_on_the_wall_clock_waits_for_its_rounds_without_blocking() -> None:
    session, planner, _ = held_session()
    for _ in range(5):
        session.update(0.3)
    (first,) = planner.submitted
    assert session.opening and session.world.tick == 0
    assert session.opening_ms == pytest.approx(1500.0)
    for snap in first.snapshots:
        planner.queued.append(delivered(first, snap.me.id, (Scan(),), 1500.0))
    planner.queued.append(RoundDone(first.round_id, "red", stats_of(1500.0), 1.5))
    session.update(0.1)
    assert not session.opening and session.world.tick == 0
    # every plan was applied before the first tick: no agent of turn 1 waited
    assert session.act_waits_ms == [0.0] * len(first.snapshots)
    session.update(0.3)
    assert session.world.tick == 1 and len(planner.submitted) == 1


def test_an_opening_whose_round_never_ends_gives_up_after_the_budget() -> None:
    session, _, _ = held_session()
    for _ in range(6):
        session.update(0.5)  # 3.0 s: under the 2.5 s budget and its 1 s grace
    assert session.opening and session.world.tick == 0
    session.update(0.5)
    assert not session.opening
    session.update(0.3)
    assert session.world.tick == 1


def test_ticking_by_hand_has_no_opening() -> None:
    session, planner, _ = held_session()
    session.step_tick()
    assert len(planner.submitted) == 1 and session.world.tick == 1 and not session.opening
    session.update(0.3)
    assert session.world.tick == 2


def test_a_record_from_before_the_opening_replays_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "skirmish", "--seed", "1"]
    args += ["--no-opening", "--no-cache-similar"]
    assert main([*args, "--turns", "4", "--record", str(record)]) == 0
    lines = record.read_text("utf-8").splitlines()
    header = json.loads(lines[0])
    # a header as the session before issue 17's opening and situation key wrote it
    assert header["pacing"].pop("opening") is False
    header["settings"]["situation_offset"] = header["settings"].pop("situation_near")
    record.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", "utf-8")
    capsys.readouterr()
    assert main(["--headless", "--replay", str(record)]) == 0
    assert "state_hash matches the record" in capsys.readouterr().err
    replay = build_replay(build_parser().parse_args(["--replay", str(record)]), window=False)
    assert replay.session.pacing == Pacing(opening=False)
    assert replay.session.settings.similarity is False
    replay.session.run_to_end()
    replay.session.close()
    assert replay.session.opening_ms is None


class AnsweringPlanner(FakePlanner):
    """Answers each round at once: every agent a Scan, then the round's end."""

    def submit(self, planning: PlanningRound) -> None:
        super().submit(planning)
        for snap in planning.snapshots:
            self.queued.append(delivered(planning, snap.me.id, (Scan(),), 100.0))
        self.queued.append(RoundDone(planning.round_id, planning.squad, stats_of(100.0), 0.1))


def test_a_wall_clock_headless_match_plays_its_opening() -> None:
    now = [0.0]  # an injected wall clock: sleeping moves it

    def sleep(seconds: float) -> None:
        now[0] += seconds

    planner = AnsweringPlanner()
    session = Session(
        MatchConfig(load("village"), 0, 2, ("red",)), {"blue": blue()}, Planning(planner)
    )
    headless_match.play(session, realtime=True, clock=lambda: now[0], sleep=sleep)
    assert session.opening_ms is not None and session.opening_ms > 0
    first = [w for w, t in zip(session.act_waits_ms, session.act_wait_turns, strict=True) if t == 0]
    assert first and set(first) == {0.0}
    assert session.result_summary()["pacing"]["opening_ms"] == session.opening_ms


def test_without_an_opening_the_first_round_is_not_superseded_by_the_prior_lead() -> None:
    session, planner, _ = held_session(Pacing(opening=False))
    session.step_tick()
    (first,) = planner.submitted
    # The first round is still in flight two thirds of a turn later: nothing planned ahead.
    for _ in range(TICKS_PER_TURN - 4):
        session.step_tick()
    assert len(planner.submitted) == 1
    for snap in first.snapshots:
        planner.queued.append(delivered(first, snap.me.id, (Scan(),), 2000.0))
    planner.queued.append(RoundDone(first.round_id, "red", stats_of(2000.0), 2.0))
    while len(planner.submitted) == 1:
        session.step_tick()
    assert session.world.tick <= TICKS_PER_TURN


def test_the_opening_waits_in_real_time_whatever_the_game_speed() -> None:
    session, _, _ = held_session()
    session.speed = 4.0
    for _ in range(11):
        session.update(0.3)  # 3.3 s of real time: 13.2 s of game time
    assert session.opening and session.opening_ms == pytest.approx(3300.0)
    session.update(0.3)
    assert not session.opening
