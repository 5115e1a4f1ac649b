"""The Session's two seams: observers are told what it did, a plan source says where the
world's plans come from (the live match, or a record being replayed)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from game.__main__ import main
from game.match.cli import build_parser
from game.match.controllers import HeuristicController
from game.match.launch import build, build_replay
from game.match.maps import load
from game.match.pacing import MAX_LEAD_TICKS
from game.match.record import RecordedPlans, Recorder, load_record
from game.match.session import LivePlans, MatchConfig, Session
from game.rules.steps import Scan, Step
from game.rules.world import TICKS_PER_TURN, World
from planner.core import PlanningRound
from planner.events import PlanDelivered, PlanEvent
from tests.observers import Watcher

LIVE = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "5", "--turns", "6"]

Applied = tuple[int, int, tuple[Step, ...], str]


class SpyPlanner:
    """Passes everything to the real planner, keeping what it was given and handed out."""

    def __init__(self, inner: Any, watcher: Watcher) -> None:
        self.inner = inner
        self.watcher = watcher
        self.submitted: list[tuple[PlanningRound, int]] = []
        """Each round, with how many rounds the observer had been told of by then."""
        self.drained: list[PlanEvent] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def submit(self, planning: PlanningRound) -> None:
        self.submitted.append((planning, len(self.watcher.of("round"))))
        self.inner.submit(planning)

    def drain(self) -> list[PlanEvent]:
        events: list[PlanEvent] = self.inner.drain()
        self.drained.extend(events)
        return events


def assignments(world: World) -> list[tuple[int, int, tuple[Step, ...]]]:
    """Every plan the world is given from now on: (tick, unit, steps)."""
    given: list[tuple[int, int, tuple[Step, ...]]] = []
    assign = world.assign_plan

    def spy(unit_id: int, steps: Any) -> None:
        given.append((world.tick, unit_id, tuple(steps)))
        assign(unit_id, steps)

    world.assign_plan = spy  # type: ignore[method-assign]
    return given


def live_session(*extra: str) -> Session:
    return build(build_parser().parse_args([*LIVE, *extra]), load("village"), window=False).session


def end_of(session: Session) -> tuple[int, str, str]:
    world = session.world
    return (world.tick, world.winner or "unfinished", world.state_hash())


@pytest.mark.parametrize("pacing", [("--plan-ahead",), ("--no-interim", "--no-plan-ahead")])
def test_an_observer_is_told_each_round_event_applied_plan_and_the_end(
    pacing: tuple[str, ...],
) -> None:
    classic = "--no-plan-ahead" in pacing  # rounds at turn starts, LLM plans only
    session = live_session(*pacing)
    watcher = Watcher()
    session.observers.append(watcher)
    spy = SpyPlanner(session.planner, watcher)
    session.planner = spy
    given = assignments(session.world)
    session.run_to_end()
    session.close()

    # Every event the planner handed out, the very objects, in the order drained.
    events = watcher.of("event")
    assert events and len(events) == len(spy.drained)
    assert all(a is b for a, b in zip(events, spy.drained, strict=True))
    # Each round, at a turn start (or up to half a turn before one, planning ahead),
    # told just before the planner got it.
    rounds = watcher.of("round")
    assert [p for _, p in rounds] == [p for p, _ in spy.submitted]
    assert [before for _, before in spy.submitted] == list(range(1, len(rounds) + 1))
    early = [-tick % TICKS_PER_TURN for tick, _ in rounds]
    assert all(e == 0 for e in early) if classic else any(early)
    assert all(e <= MAX_LEAD_TICKS for e in early)
    # Red is the LLM's: every plan a red unit got is an applied plan, with its tick.
    red = {u.id for u in session.world.units.values() if u.squad == "red"}
    applied: list[Applied] = watcher.of("applied")
    sources = {source for *_, source in applied}
    assert sources == ({"llm"} if classic else {"llm", "interim"})
    assert [(t, u, s) for t, u, s, _ in applied] == [g for g in given if g[1] in red]
    # ... each LLM plan told right after the delivery it came from.
    for at, (kind, item) in enumerate(watcher.seen):
        if kind == "applied" and item[3] == "llm":
            before_kind, before = watcher.seen[at - 1]
            assert before_kind == "event" and isinstance(before, PlanDelivered)
            assert before.outcome.agent_id == item[1]
    # Told once how the match ended, with the world's own hash.
    assert watcher.of("end") == [end_of(session)]
    assert watcher.seen[-1][0] == "end"


def test_observers_do_not_change_the_match(tmp_path: Path) -> None:
    plain = live_session()
    assert plain.observers == [] and isinstance(plain.plans, LivePlans)
    watched = live_session()
    watched.observers.append(Watcher())
    record = tmp_path / "m.jsonl"
    recorded = live_session("--record", str(record))
    assert [type(o) for o in recorded.observers] == [Recorder]
    hashes = []
    for session in (plain, watched, recorded):
        session.run_to_end()
        session.close()
        hashes.append(session.world.state_hash())
    assert len(set(hashes)) == 1
    end = load_record(record).end
    assert end is not None and end.state_hash == hashes[0]


def test_a_player_order_is_observed_with_its_tick_and_source() -> None:
    scenario = load("skirmish")
    watcher = Watcher()
    red = HeuristicController(random.Random(1))
    config = MatchConfig(scenario, 1, 3, player_squad="blue")
    session = Session(config, {"red": red}, observers=[watcher])
    blue = next(iter(session.world.living("blue")))
    foe = next(iter(session.world.living("red")))
    session.step_tick()
    assert session.order(foe.id, [Scan()]) == f"unit {foe.id} is not yours"
    assert session.order(blue.id, [Scan()]) is None
    assert watcher.of("applied") == [(1, blue.id, (Scan(),), "player")]
    session.close()
    session.close()
    assert watcher.of("end") == [(1, "unfinished", session.world.state_hash())]
    assert watcher.of("round") == [] and watcher.of("event") == []


def test_each_match_ends_once_for_its_observers() -> None:
    watcher = Watcher()
    red = HeuristicController(random.Random(1))
    blue = HeuristicController(random.Random(2))
    config = MatchConfig(load("skirmish"), 1, 2)
    session = Session(config, {"red": red, "blue": blue}, observers=[watcher])
    session.run_to_end()
    first = end_of(session)
    session.close()
    session.restart()
    session.close()
    assert watcher.of("end") == [first, (0, "unfinished", session.world.state_hash())]


def test_a_replay_gives_the_world_the_records_plans_and_observers_see_them(
    tmp_path: Path,
) -> None:
    record = tmp_path / "m.jsonl"
    args = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "5"]
    assert main([*args, "--faults", "0.3", "--record", str(record)]) == 0
    loaded = load_record(record)
    launch = build_replay(build_parser().parse_args(["--replay", str(record)]), window=False)
    session = launch.session
    assert isinstance(session.plans, RecordedPlans) and session.replaying
    assert loaded.end is not None and launch.record_hash == loaded.end.state_hash
    watcher = Watcher()
    session.observers.append(watcher)
    session.run_to_end()
    session.close()
    expected = [
        (line.tick, line.unit_id, line.steps, line.source)
        for tick in sorted(loaded.applied)
        for line in loaded.applied[tick]
    ]
    assert watcher.of("applied") == expected
    # The pipeline re-ran (deliveries came) but only the record's plans reached the world.
    assert any(isinstance(e, PlanDelivered) for e in watcher.of("event"))
    assert watcher.of("end") == [(loaded.end.tick, loaded.end.winner, loaded.end.state_hash)]


def test_the_recorder_writes_nothing_after_the_match_ends(tmp_path: Path) -> None:
    record = tmp_path / "m.jsonl"
    session = live_session("--record", str(record))
    session.run_to_end()
    written = record.read_text("utf-8")
    session.restart()
    for _ in range(2 * TICKS_PER_TURN):
        session.step_tick()
    session.close()
    assert record.read_text("utf-8") == written
    kinds = [json.loads(line)["kind"] for line in written.splitlines()]
    assert kinds.count("end") == 1 and kinds[-1] == "end"


def test_a_restart_with_a_seed_is_a_fresh_match_with_that_seed() -> None:
    def rules_session(seed: int) -> Session:
        red = HeuristicController(random.Random(0))
        blue = HeuristicController(random.Random(0))
        return Session(MatchConfig(load("skirmish"), seed, 4), {"red": red, "blue": blue})

    fresh = rules_session(9)
    fresh.run_to_end()
    again = rules_session(2)
    again.run_to_end()
    again.restart(seed=9)
    assert again.config.seed == 9
    again.run_to_end()
    assert again.world.state_hash() == fresh.world.state_hash()


def test_a_live_match_has_nothing_to_scrub() -> None:
    red = HeuristicController(random.Random(0))
    blue = HeuristicController(random.Random(0))
    session = Session(MatchConfig(load("skirmish"), 1, 2), {"red": red, "blue": blue})
    assert not session.replaying and session.replay_rounds() == []
    assert session.seek_round(3) == -1 and session.world.tick == 0
