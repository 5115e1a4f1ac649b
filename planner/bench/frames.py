"""Frame time of the real UI with planning in flight.

The planner never imports the UI, so this runs the game's own window for N frames in
a child process (`python -m game --frames N`, dummy video driver) and reads the
summary its frame loop prints (game.ui.app.FrameStats: per-frame work, i.e. input,
update, draw and flip, not the wait for the next 60 fps tick). Red is planned by the
LLM on the wall clock with the cache off, so a round is in flight most of the time:

- `sim`: the built-in simulated LLM in the game's process (its planner thread paces
  the tokens);
- `http`: the sim server in another process, reached through the OpenAI client
  (real sockets, SSE parsing on the planner thread), in parallel mode.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from planner.bench.server import ChildSimServer
from planner.bench.stats import fmt, table

SUMMARY = re.compile(
    r"frame time p50 (?P<p50>[\d.]+) ms, p99 (?P<p99>[\d.]+) ms, "
    r"max (?P<max>[\d.]+) ms \((?P<frames>\d+) frames\)"
)


def _run_game(frames: int, extra: list[str], preset: str) -> dict[str, Any]:
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    args = [
        sys.executable,
        "-m",
        "game",
        "--frames",
        str(frames),
        "--scenario",
        "village",
        "--sim-preset",
        preset,
        "--no-cache",
        *extra,
    ]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=frames + 120)
    match = SUMMARY.search(done.stdout)
    if done.returncode != 0 or match is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"the game's frame run failed ({done.returncode}): {' / '.join(tail)}")
    return {
        "frames": int(match["frames"]),
        "p50_ms": float(match["p50"]),
        "p99_ms": float(match["p99"]),
        "max_ms": float(match["max"]),
    }


def run_frames(frames: int, preset: str = "gpu") -> list[dict[str, Any]]:
    rows = [
        {"planner": "sim in-process, batched", **_run_game(frames, ["--backend", "sim"], preset)}
    ]
    with ChildSimServer(preset, 16) as server:
        extra = ["--backend", "openai", "--url", server.url, "--model", server.model]
        result = _run_game(frames, [*extra, "--mode", "parallel"], preset)
        answered = len(server.emissions())
    rows.append({"planner": "sim over HTTP, parallel", **result, "requests_answered": answered})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    body = [
        [
            r["planner"],
            str(r["frames"]),
            fmt(r["p50_ms"], 1),
            fmt(r["p99_ms"], 1),
            fmt(r["max_ms"], 1),
        ]
        for r in rows
    ]
    return "Frame time, village, planning in flight (dummy video driver)\n" + table(
        ("planner", "frames", "p50 ms", "p99 ms", "max ms"), body
    )
