"""Esc in the window while a stream is stalled: the window closes at once and the planner
thread is gone (the design promises under a second)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from game.match.cli import build_parser
from game.match.launch import build
from game.match.maps import load
from game.ui.app import run_window
from planner.sim.backend import SimBackend
from planner.sim.model import FaultConfig

pytestmark = pytest.mark.usefixtures("pygame_display")


def test_escape_during_a_stalled_stream_exits_promptly(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--backend", "sim", "--scenario", "skirmish", "--budget-ms", "60000"]
    )
    launch = build(args, load("skirmish"), window=True)
    assert isinstance(launch.backend, SimBackend)
    launch.backend.sim.faults = FaultConfig.only("stall")
    session = launch.session
    # Play until the stalled stream is in flight (its first tokens have arrived).
    limit = time.monotonic() + 10
    while not any(r.first_token_ms is not None for r in session.log.rounds):
        assert time.monotonic() < limit
        session.update(0.05)
        time.sleep(0.005)
    assert not any(r.done for r in session.log.rounds)  # still stalled
    script = tmp_path / "esc.txt"
    script.write_text("at 2 key escape\n", "utf-8")
    started = time.monotonic()
    assert run_window(session, script=str(script), fps=0) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"window took {elapsed:.2f}s to close"
    alive = [t for t in threading.enumerate() if t.name == "squadmind-planner" and t.is_alive()]
    assert not alive
