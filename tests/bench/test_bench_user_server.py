"""`python -m planner.bench --backend openai|ollama --url URL --model M`: the mode table
against a server the user names (here a loopback sim server the test starts, over both
protocols), and one line and exit 2 when it cannot be reached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.bench import cli as bench
from planner.events import MODES
from planner.sim.server import SimServer
from tests.loopback import closed_port


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_mode_table_against_the_users_server(
    backend: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    with SimServer(preset="instant", seed=4) as server:
        args = ["--backend", backend, "--url", server.url, "--model", server.sim.model_name]
        code = bench.main([*args, "--agents", "2", "--rounds", "1", "--json", str(out)])
        asked = len(server.sim.emissions_copy())
    assert code == 0
    rows = json.loads(out.read_text("utf-8"))["modes"]
    assert [(r["mode"], r["stream"]) for r in rows] == [
        (m, s) for m in MODES for s in (True, False)
    ]
    assert all(r["fallbacks"] == 0 and r["requests"] >= 1 for r in rows)
    assert all(r["num_parallel"] == 0 and r["ttfp_limit_ms"] != r["ttfp_limit_ms"] for r in rows)
    assert asked >= len(rows)  # the table's requests reached the named server, not a sim of its own
    printed = capsys.readouterr().out
    assert "Modes against" in printed and "Agents without an LLM plan" in printed


@pytest.mark.parametrize("backend", ["openai", "ollama"])
def test_an_unreachable_server_is_one_line_and_exit_2(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert bench.main(["--backend", backend, "--url", url, "--model", "m"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m planner.bench: error: cannot reach")
