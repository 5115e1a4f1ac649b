"""Match records: a recorded match replays to the same state, bad records fail on one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from game.__main__ import main
from game.match.record import MatchRecordError, Recorder, load_record
from planner.backends.openai import OpenAIBackend
from planner.service import PlannerService
from planner.settings import PlannerSettings
from planner.sim.server import SimServer
from tests.planning_helpers import planning_round, round_done, wait_for


def record_match(tmp_path: Path, *extra: str) -> tuple[Path, dict[str, object]]:
    record = tmp_path / "match.jsonl"
    report = tmp_path / "report.json"
    args = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "5"]
    assert main([*args, *extra, "--record", str(record), "--report", str(report)]) == 0
    return record, json.loads(report.read_text("utf-8"))


def test_a_recorded_village_match_replays_to_the_same_state_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record, original = record_match(tmp_path, "--faults", "0.3")
    kinds = [json.loads(line)["kind"] for line in record.read_text("utf-8").splitlines()]
    assert kinds[0] == "header" and kinds[-1] == "end"
    assert {"round", "event", "applied"} <= set(kinds)
    replay_report = tmp_path / "replay.json"
    assert main(["--headless", "--replay", str(record), "--report", str(replay_report)]) == 0
    replayed = json.loads(replay_report.read_text("utf-8"))
    assert replayed["state_hash"] == original["state_hash"]
    assert replayed["plans_by_tier"] == original["plans_by_tier"]  # the pipeline re-ran
    assert "state_hash matches the record" in capsys.readouterr().err


def test_a_record_holds_the_prompts_and_every_raw_chunk(tmp_path: Path) -> None:
    record, _ = record_match(tmp_path)
    loaded = load_record(record)
    assert loaded.header.scenario == "village" and loaded.header.seed == 5
    assert loaded.responses and all(r.chunks for r in loaded.responses if not r.error)
    events = [json.loads(line) for line in record.read_text("utf-8").splitlines()]
    sent = [e for e in events if e["kind"] == "event" and e["type"] == "RequestSent"]
    assert sent and all(e["data"]["system"] and e["data"]["prompt"] for e in sent)
    text = "".join(c.text for c in loaded.responses[0].chunks)
    assert text.startswith('{"plans":[')


def test_a_changed_record_is_caught_by_the_state_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record, _ = record_match(tmp_path)
    lines = record.read_text("utf-8").splitlines()
    end = json.loads(lines[-1])
    end["state_hash"] = "0" * 64
    record.write_text("\n".join([*lines[:-1], json.dumps(end)]) + "\n", "utf-8")
    assert main(["--headless", "--replay", str(record)]) == 1
    assert "differs from the record" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mangle", "needle"),
    [
        (lambda lines: [*lines[:3], "{not json", *lines[4:]], ":4: not JSON"),
        (lambda lines: lines[:-1], "truncated"),
        (lambda lines: [*lines[:2], '{"kind":"applied","tick":"x"}', *lines[2:]], ":3: bad record"),
        (lambda lines: lines[1:], ":1: a record starts with its header"),
    ],
)
def test_a_corrupt_or_truncated_record_is_one_line_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mangle: object, needle: str
) -> None:
    record, _ = record_match(tmp_path)
    lines = record.read_text("utf-8").splitlines()
    record.write_text("\n".join(mangle(lines)) + "\n", "utf-8")  # type: ignore[operator]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["--headless", "--replay", str(record)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and str(record) in err
    with pytest.raises(MatchRecordError):
        load_record(record)


def test_api_keys_never_reach_a_record(tmp_path: Path) -> None:
    key = "sk-test-secret-0123456789"
    path = tmp_path / "keys.jsonl"
    recorder = Recorder(path)
    with SimServer(preset="instant", seed=1) as server:
        backend = OpenAIBackend(server.url, "sim-instant", env={"OPENAI_API_KEY": key})
        with PlannerService(backend, PlannerSettings(mode="batched"), seed=1) as service:
            service.submit(planning_round())
            seen = wait_for(service, round_done())
    for event in seen:
        recorder.on_event(event)
    recorder.close()
    text = path.read_text("utf-8")
    assert "RequestSent" in text and "ChunkReceived" in text
    assert key not in text and "Bearer" not in text and "Authorization" not in text


def test_player_orders_are_refused_while_replaying(tmp_path: Path) -> None:
    from game.match.cli import build_parser
    from game.match.launch import build_replay
    from game.rules.steps import Scan

    record, _ = record_match(tmp_path)
    # The record of a match whose blue squad a player commanded.
    lines = record.read_text("utf-8").splitlines()
    header = json.loads(lines[0])
    header["owners"]["blue"] = "player"
    record.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n", "utf-8")
    args = build_parser().parse_args(["--replay", str(record)])
    session = build_replay(args, window=True).session
    unit = next(iter(session.world.living("blue")))
    assert session.player_squad == "blue"
    assert session.order(unit.id, [Scan()]) == "replaying a record: orders are the record's"
    session.close()
