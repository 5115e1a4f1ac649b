"""`python -m game`: headless matches, reports, determinism across processes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from game.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, hashseed: str = "0") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "game", "--backend", "sim", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_headless_report_is_identical_across_processes(tmp_path: Path) -> None:
    reports = []
    for i, (seed, hashseed) in enumerate([("3", "1"), ("3", "2"), ("4", "1")]):
        path = tmp_path / f"r{i}.json"
        args = ["--headless", "--turns", "40", "--seed", seed, "--scenario", "village"]
        proc = run_cli(*args, "--report", str(path), hashseed=hashseed)
        assert proc.returncode == 0, proc.stderr
        assert len(proc.stdout.strip().splitlines()) == 1
        reports.append(json.loads(path.read_text(encoding="utf-8")))
    first, again, other = reports
    assert first == again  # new process, different PYTHONHASHSEED, same everything
    assert first["state_hash"] != other["state_hash"]
    for key in (
        "scenario",
        "seed",
        "turns",
        "winner",
        "state_hash",
        "units_alive",
        "invalid_steps",
    ):
        assert key in first
    assert first["scenario"] == "village" and first["seed"] == 3
    assert set(first["units_alive"]) == {"blue", "red"}
    assert first["winner"] in {"blue", "red", "draw"}
    assert 1 <= first["turns"] <= 40


def test_bad_map_is_one_line_exit_2_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("#####\n#r.R#\n#.Q.#\n#####\n", encoding="utf-8")
    proc = run_cli("--headless", "--map", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(f"{bad}:3: unknown map character 'Q' at column 3")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--headless", "--scenario", "moon"], "unknown scenario 'moon'"),
        (["--headless", "--turns", "-3"], "must be a whole number from 1 to 100000, got -3"),
        (["--headless", "--turns", "0"], "must be a whole number from 1 to 100000, got 0"),
        (["--headless", "--turns", "many"], "'many' is not a whole number"),
        (["--headless", "--red", "genius"], "invalid choice: 'genius'"),
    ],
)
def test_bad_arguments(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_in_process_match_with_random_side(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.json"
    args = ["--headless", "--scenario", "skirmish", "--turns", "5", "--seed", "1"]
    assert main([*args, "--red", "random", "--report", str(report)]) == 0
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["controllers"] == {"blue": "heuristic", "red": "random"}
    assert data["turns"] <= 5
    assert "skirmish seed=1" in capsys.readouterr().out


def test_window_mode_runs_frames_and_saves_a_screenshot(tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    args = ["--backend", "sim", "--sim-preset", "instant", "--scenario", "skirmish"]
    assert main([*args, "--frames", "5", "--screenshot", str(shot)]) == 0
    assert shot.stat().st_size > 1000


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--headless",
        "--turns",
        "--seed",
        "--scenario",
        "--map",
        "--report",
        "--red",
        "--blue",
        "--plan-format",
    ):
        assert flag in out
