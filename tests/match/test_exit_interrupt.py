"""Clean exits: Ctrl-C during a stalled stream, and the documented exit codes.

The interrupt test runs the real command in a child process against a loopback server
that stalls mid-stream until the test ends, and sends SIGINT once the stall has begun.
The child must exit 130 while the server is still stalled: one that waited for the
stream, or left the (non-daemon) planner thread behind, could not exit at all, and the
hang bound turns that into a failure. How fast it exits is not asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import game.__main__ as entry
from game.__main__ import main
from tests.loopback import Action, LoopbackServer, Request, Stall, chunk, head, json_reply
from tests.planning_helpers import HANG_S, wait_until

ROOT = Path(__file__).resolve().parents[2]
START_S = 60.0
"""A hang bound for a child Python to start and send its first request (a loaded machine)."""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child needs POSIX")
@pytest.mark.usefixtures("interruptible_children")
def test_ctrl_c_during_a_stalled_stream_exits_130_without_waiting_for_it() -> None:
    stall = Stall()  # never released: the server is stalled until the test ends

    def stalling(request: Request) -> list[Action]:
        if request.path.startswith("/v1/models"):
            return json_reply(200, {"object": "list", "data": [{"id": "m", "owned_by": "vllm"}]})
        first = {"choices": [{"index": 0, "delta": {"content": '{"plans":[{"agent_id"'}}]}
        return [
            head(200, [("Content-Type", "text/event-stream")]),
            chunk(f"data: {json.dumps(first)}\n\n".encode()),
            stall,  # then nothing: a stalled server, connection held open
        ]

    with LoopbackServer(stalling) as server:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "game",
                "--headless",
                "--realtime",
                "--backend",
                "openai",
                "--url",
                server.url,
                "--model",
                "m",
                "--budget-ms",
                "600000",
            ],
            cwd=ROOT,
            env={**os.environ, "LLM_TIMEOUT_MS": "600000", "OPENAI_API_KEY": ""},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # The planning request came and its first chunk went out: the stream hangs.
            wait_until(
                lambda: stall.reached.is_set() or child.poll() is not None,
                lambda: "the planning request never came",
                hang_s=START_S,
            )
            assert child.poll() is None, child.communicate()
            child.send_signal(signal.SIGINT)
            try:
                out, err = child.communicate(timeout=HANG_S)
            except subprocess.TimeoutExpired:
                child.kill()
                raise AssertionError(f"still running {HANG_S:g} s after SIGINT") from None
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 130, (out, err)
    assert "interrupted" in err
    assert "Traceback" not in err


def test_a_headless_match_exits_0() -> None:
    assert main(["--headless", "--red", "heuristic", "--turns", "1"]) == 0


@pytest.mark.parametrize(
    "argv",
    [["--headless", "--turns", "0"], ["--headless", "--scenario", "nowhere"], ["--bogus"]],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1, "one line says why"


def test_an_interrupt_before_the_match_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(argv: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "_main", interrupted)
    assert main([]) == 130


def test_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    doc = entry.__doc__ or ""
    for code in ("0", "1", "2", "130"):
        assert f"{code} " in help_text.split("Exit codes:")[1]
        assert f"- {code}:" in doc
    assert (entry.EXIT_OK, entry.EXIT_REPLAY_MISMATCH, entry.EXIT_BAD_INPUT) == (0, 1, 2)
    assert entry.EXIT_INTERRUPTED == 130
