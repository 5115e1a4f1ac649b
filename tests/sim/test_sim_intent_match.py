"""Intents from end to end on the sim: asked for, written, delivered, recorded and
replayed; and `--no-intent` leaves none anywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from game.__main__ import main


def play(tmp_path: Path, *flags: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    record, report = tmp_path / "m.jsonl", tmp_path / "r.json"
    args = ["--headless", "--backend", "sim", "--scenario", "skirmish", "--turns", "4"]
    args += ["--seed", "3", "--sim-preset", "instant", *flags]
    assert main([*args, "--record", str(record), "--report", str(report)]) == 0
    lines = [json.loads(line) for line in record.read_text("utf-8").splitlines()]
    events = [e for e in lines if e["kind"] == "event"]
    return events, json.loads(report.read_text("utf-8"))


def delivered(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e["data"]["outcome"]
        for e in events
        if e["type"] == "PlanDelivered" and e["data"]["outcome"]["tier"].endswith("_llm")
    ]


@pytest.mark.parametrize("persona", [[], ["--persona", "objective"]])
def test_intents_are_written_delivered_and_replayed(
    tmp_path: Path, persona: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    events, _ = play(tmp_path, *persona)
    systems = {e["data"]["system"] for e in events if e["type"] == "RequestSent"}
    assert systems and all("intent" in s for s in systems)
    outcomes = delivered(events)
    assert outcomes and all(o["intent"] for o in outcomes if not o["from_cache"])
    capsys.readouterr()
    assert main(["--headless", "--replay", str(tmp_path / "m.jsonl")]) == 0
    said = capsys.readouterr()
    assert "state_hash matches" in said.out + said.err


def test_no_intent_leaves_none_in_schema_prompt_or_output(tmp_path: Path) -> None:
    events, report = play(tmp_path, "--no-intent")
    sent = [e["data"] for e in events if e["type"] == "RequestSent"]
    assert sent and not any("intent" in d["system"] for d in sent)
    outcomes = delivered(events)
    assert outcomes and not any(o["intent"] for o in outcomes)
    raws = [e["data"]["raw"] for e in events if e["type"] == "PlanDelivered" and e["data"]["raw"]]
    assert raws and all(len(json.loads(raw)) == 2 for raw in raws)  # [id, steps] only
    assert report["llm_plan_share"] > 0.5
