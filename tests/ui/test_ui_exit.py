"""Esc in the window while a stream is stalled: the window closes without waiting for the
stream, and the planner thread is gone.

The sim's stall never ends by itself, and neither the request's timeout nor the round's
budget would end it within a minute, so a window that waited for the planner would take
a minute to close. The hang bound catches that; how fast it closes is not asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
from tests.planning_helpers import HANG_S, wait_until

pytestmark = pytest.mark.usefixtures("pygame_display")

LONG_MS = "60000"
"""The stalled request's timeout and the round's budget: far past the hang bound."""


def test_escape_during_a_stalled_stream_exits_without_waiting_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TIMEOUT_MS", LONG_MS)
    args = build_parser().parse_args(
        ["--backend", "sim", "--scenario", "skirmish", "--budget-ms", LONG_MS]
    )
    launch = build(args, load("skirmish"), window=True)
    assert isinstance(launch.backend, SimBackend)
    launch.backend.sim.faults = FaultConfig.only("stall")
    session = launch.session

    def stalled_stream_in_flight() -> bool:  # its first tokens have arrived
        session.update(0.05)
        return any(r.first_token_ms is not None for r in session.log.rounds)

    wait_until(stalled_stream_in_flight)
    assert not any(r.done for r in session.log.rounds)  # still stalled
    script = tmp_path / "esc.txt"
    script.write_text("at 2 key escape\n", "utf-8")
    # The window runs on this (the main) thread, as pygame wants: a hang is measured, not
    # interrupted, and only a hang fails.
    started = time.monotonic()
    assert run_window(session, script=str(script), fps=0) == 0
    elapsed = time.monotonic() - started
    assert elapsed < HANG_S, f"the window took {elapsed:.0f} s to close: it waited"
    assert not any(r.done for r in session.log.rounds), "the stall was cancelled, not awaited"
    alive = [t for t in threading.enumerate() if t.name == "squadmind-planner" and t.is_alive()]
    assert not alive


def _run_game(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=HANG_S
    )


def test_a_window_that_cannot_open_says_so_in_one_line_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    env["SDL_VIDEODRIVER"] = "x11"  # with no DISPLAY: SDL refuses at once
    done = _run_game(["-m", "game", "--backend", "sim", "--scenario", "skirmish"], env)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "cannot open a window" in errors[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_video_driver_that_hangs_is_given_up_on() -> None:
    # A driver that neither opens nor fails: the watchdog ends the process (exit 2).
    code = (
        "import threading, pygame, game.ui.app as app\n"
        "app.WINDOW_OPEN_TIMEOUT_S = 0.1\n"
        "pygame.display.init = lambda: threading.Event().wait()\n"
        "app.open_window((640, 400), 'hang')\n"
    )
    done = _run_game(["-c", code], dict(os.environ))
    assert done.returncode == 2
    assert "no window after 0.1 s" in done.stderr and "Traceback" not in done.stderr
