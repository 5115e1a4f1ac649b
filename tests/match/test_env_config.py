"""A bad `LLM_*` variable is one line and exit 2 before any planner thread starts: never a
traceback, never a process left running (both the threaded headless match and the window)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HANG_BOUND_S = 120.0
"""Only turns a hang into a failure; a good run ends long before."""

CASES = [
    ("LLM_TIMEOUT_MS", "abc"),
    ("LLM_TIMEOUT_MS", "0"),
    ("LLM_TIMEOUT_MS", "nan"),
    ("LLM_TIMEOUT_MS", "-5"),
    ("LLM_CONNECT_TIMEOUT_MS", "abc"),
    ("LLM_CACHE_CAP", "abc"),
    ("LLM_CACHE_CAP", "-1"),
    ("LLM_CACHE_CAP", "1e9"),
    ("LLM_RETRY_MAX", "0"),
    ("LLM_RETRY_MAX", "2.5"),
    ("LLM_BREAKER_THRESHOLD", "abc"),
    ("LLM_BREAKER_COOLDOWN_MS", "inf"),
]
COMMANDS = {
    "headless-realtime": ["--headless", "--realtime", "--backend", "sim", "--turns", "1"],
    "window": ["--backend", "sim", "--frames", "3"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_bad_env_is_one_line_and_exit_2(command: str) -> None:
    base = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
    }
    runs = [
        (
            var,
            bad,
            subprocess.Popen(
                [sys.executable, "-m", "game", *COMMANDS[command]],
                cwd=ROOT,
                env={**base, var: bad},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for var, bad in CASES
    ]
    try:
        for var, bad, proc in runs:
            out, err = proc.communicate(timeout=HANG_BOUND_S)
            assert proc.returncode == 2, (var, bad, err)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in err, (var, bad, err)
            assert lines[0].startswith(f"python -m game: error: {var}={bad!r}: expected ")
            assert out == ""
    finally:
        for _, _, proc in runs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
