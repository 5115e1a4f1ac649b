"""Replays say the same history: under every sim fault kind, in every dispatch mode, the
replay's per-agent outcomes (tier and cause of every delivery and fallback, round by
round) equal the original's, and so does every event the game was shown, timings
included (chunk and plan instants, ttft, plan_wait, round stats), not only the final
world hash."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import game.match.launch as launch
from game.match.cli import build_parser
from game.match.maps import load
from game.match.record import _plain
from planner.events import MODES, AgentFellBack, PlanDelivered, PlanEvent
from planner.sim.model import FAULT_KINDS, FaultConfig, FaultKind
from tests.observers import Watcher

Outcome = tuple[Any, ...]
Shown = tuple[str, Any]


def _outcomes(events: list[PlanEvent]) -> list[Outcome]:
    out: list[Outcome] = []
    for e in events:
        if isinstance(e, PlanDelivered):
            o = _plain(e.outcome)
            out.append(("delivered", e.round_id, o["agent_id"], o["tier"], o["cause"]))
        elif isinstance(e, AgentFellBack):
            out.append(
                (
                    "fell_back",
                    e.round_id,
                    e.agent_id,
                    _plain(e.from_tier),
                    _plain(e.to_tier),
                    e.cause,
                )
            )
    return sorted(out, key=repr)


def _rounded(value: Any) -> Any:
    """Instants to the nanosecond: a replay computes each as start + recorded offset."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _shown(events: list[PlanEvent]) -> list[Shown]:
    """Every event as the game saw it, every field, in order; events at one instant in a
    fixed order (which of them was handled first is not part of the history)."""
    shown = [(type(e).__name__, _rounded(_plain(e))) for e in events]
    return [
        item
        for _, same_instant in itertools.groupby(shown, key=lambda s: s[1]["at"])
        for item in sorted(same_instant, key=repr)
    ]


def _play(argv: list[str], *, replay: bool) -> tuple[list[PlanEvent], str]:
    args = build_parser().parse_args(argv)
    built = (
        launch.build_replay(args, window=False)
        if replay
        else launch.build(args, load(args.scenario), window=False)
    )
    watcher = Watcher()
    built.session.observers.append(watcher)
    built.session.run_to_end()
    built.session.close()
    return watcher.of("event"), built.session.world.state_hash()


CASES = [
    # planning ahead on: rounds superseded before their instants
    *itertools.product(FAULT_KINDS, MODES, (1, 2), (True,), (True,)),
    *itertools.product(FAULT_KINDS, MODES, (1,), (False,), (True,)),
    # and off (the default): every round heard to its end
    *itertools.product(FAULT_KINDS, MODES, (1,), (True,), (False,)),
]


@pytest.mark.parametrize(("kind", "mode", "seed", "stream", "ahead"), CASES)
def test_a_replay_reproduces_every_agents_tier_cause_and_timing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: FaultKind,
    mode: str,
    seed: int,
    stream: bool,
    ahead: bool,
) -> None:
    # `--faults RATE` spread over one kind only.
    only = FaultConfig.only
    monkeypatch.setattr(
        launch.FaultConfig, "uniform", classmethod(lambda cls, rate: only(kind, rate))
    )
    record = tmp_path / "match.jsonl"
    argv = ["--headless", "--backend", "sim", "--scenario", "village", "--turns", "12"]
    argv += ["--plan-ahead"] if ahead else ["--no-plan-ahead"]
    argv += ["--seed", str(seed), "--faults", "0.4", "--mode", mode, "--record", str(record)]
    original, original_hash = _play(argv + ([] if stream else ["--no-stream"]), replay=False)
    replayed, replayed_hash = _play(["--headless", "--replay", str(record)], replay=True)
    assert replayed_hash == original_hash
    assert _outcomes(replayed) == _outcomes(original)
    assert _shown(replayed) == _shown(original)


@pytest.mark.parametrize("mode", MODES)
def test_a_whole_match_under_every_fault_kind_at_once_replays_event_for_event(
    tmp_path: Path, mode: str
) -> None:
    # Retries after a mid-stream failure: a retry leaves only once its failed attempt
    # ended, so the record tells the attempts' chunks apart (seed 2 retried one
    # before its failed attempt ended, on the virtual clock, in auto, sequential, parallel).
    record = tmp_path / "match.jsonl"
    argv = ["--headless", "--backend", "sim", "--scenario", "village", "--seed", "2"]
    argv += ["--faults", "0.4", "--mode", mode, "--record", str(record)]
    original, original_hash = _play(argv, replay=False)
    replayed, replayed_hash = _play(["--headless", "--replay", str(record)], replay=True)
    assert replayed_hash == original_hash
    assert _outcomes(replayed) == _outcomes(original)
    assert _shown(replayed) == _shown(original)
