"""What the game never heard is still recorded: a `VirtualPlanner` runs a round to its end
when it is submitted, so a round superseded before its later instants (planning ahead
starts the next round early) has already had its later answers shape the planner (its
stats, the cache, the breaker). The record keeps those events as `heard: false` lines
that feed only a replay's backend, covered by the integrity digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import game.match.launch as launch
from game.__main__ import main
from game.match.record import load_record
from planner.clock import VirtualClock
from planner.events import PlanEvent, RoundCancelled
from planner.service import VirtualPlanner
from planner.settings import PlannerSettings
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig
from tests.planning_helpers import planning_round


def test_a_superseded_virtual_round_tells_unheard_each_event_it_drops() -> None:
    clock = VirtualClock()
    backend = SimBackend.create("gpu", seed=1, clock=clock)
    planner = VirtualPlanner(backend, PlannerSettings(), clock, seed=1)
    unheard: list[PlanEvent] = []
    planner.unheard = unheard.append
    planner.submit(planning_round(1))
    clock.advance(0.05)  # some of round 1 is heard, most is still ahead of the clock
    heard = planner.drain()
    planner.submit(planning_round(2))
    assert heard and unheard
    assert all(e.round_id == 1 and e.at > clock.now() for e in unheard)
    clock.advance(3600.0)
    later = planner.drain()
    # the game never drains them: only round 1's cancellation, then round 2
    assert not any(e in later for e in unheard)
    assert [e for e in later if e.round_id == 1] == [RoundCancelled(1, "red", 0.05)]
    planner.close()


@pytest.fixture(scope="module")
def ahead_record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Parallel requests, malformed answers, planning ahead on (the default): the case whose
    replay said a different history before superseded rounds were recorded."""
    path = tmp_path_factory.mktemp("rec") / "match.jsonl"
    with pytest.MonkeyPatch.context() as mp:
        only = FaultConfig.only
        mp.setattr(
            launch.FaultConfig,
            "uniform",
            classmethod(lambda cls, rate: only("malformed_json", rate)),
        )
        args = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "1"]
        args += ["--turns", "12", "--mode", "parallel", "--faults", "0.4", "--plan-ahead"]
        # rounds longer than a turn (a slow server, a long budget): each is superseded
        args += ["--sim-preset", "mac", "--budget-ms", "5000"]
        assert main([*args, "--record", str(path)]) == 0
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_a_record_keeps_the_answers_the_game_never_heard(ahead_record: Path) -> None:
    lines = _lines(ahead_record)
    unheard = [obj for obj in lines if obj.get("heard") is False]
    ended = {o["data"]["request_id"] for o in unheard if o["type"] == "ResponseEnded"}
    assert ended, "no superseded answer's end in the record"
    heard_ends = {
        o["data"]["request_id"]
        for o in lines
        if o["kind"] == "event" and o["type"] == "ResponseEnded" and "heard" not in o
    }
    assert not ended & heard_ends  # each end is written once, heard or not
    record = load_record(ahead_record)
    assert record.events == sum(o["kind"] == "event" and "heard" not in o for o in lines)
    replayed = {r.request_id for r in record.responses if r.ended}
    assert ended <= replayed  # the replay's backend ends them as the original did


def test_an_edited_unheard_line_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ahead_record: Path
) -> None:
    lines = ahead_record.read_text("utf-8").splitlines()
    at = next(
        i
        for i, line in enumerate(lines)
        if '"heard":false' in line and '"type":"ChunkReceived"' in line
    )
    obj = json.loads(lines[at])
    obj["data"]["text"] += " "
    lines[at] = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(lines) + "\n", "utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--headless", "--replay", str(edited)])
    assert exit_.value.code == 2
    assert "record was edited" in capsys.readouterr().err
