"""Headless matches against a real engine, as a user runs them, and what they showed.

`play(url, ...)` runs `python -m game --headless --backend openai --url URL --model tiny`
with a JSON report and a JSON Lines record, and `Figures` folds both into the numbers
the issue asks for: the share of plans from an LLM tier, `missing_from_batch`, answers
cut by the length limit, and overhead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.engines.servers import MODEL_ALIAS

MATCH_S = 300.0
"""Hang bound on one headless match (a turn takes 3 s of wall clock)."""
MODES = ("auto", "batched", "sequential", "parallel")
SCENARIOS = ("skirmish", "village")


@dataclass
class Figures:
    scenario: str
    mode: str
    stream: bool
    plans: int = 0
    llm_share: float = 0.0
    requests: int = 0
    missing_from_batch: int = 0
    """AgentFellBack events with that cause (re-requests included)."""
    cut_by_length: int = 0
    """Answers that ended with finish_reason "length"."""
    overhead_p99: float | None = None
    causes: Counter[str] = field(default_factory=Counter)
    """Every AgentFellBack cause, re-requests included."""
    final_causes: Counter[str] = field(default_factory=Counter)
    """The cause of each agent that ended on a rule tier."""
    backend: str = ""
    summary: str = ""


def play(
    url: str,
    scenario: str,
    mode: str,
    stream: bool,
    out: Path,
    *,
    turns: int = 2,
    extra: tuple[str, ...] = (),
) -> Figures:
    """Play one headless match against the OpenAI-compatible server at `url`."""
    name = f"{scenario}-{mode}-{'stream' if stream else 'whole'}"
    report, record = out / f"{name}.json", out / f"{name}.jsonl"
    command = [
        sys.executable,
        "-m",
        "game",
        "--headless",
        "--backend",
        "openai",
        "--url",
        f"{url}/v1",
        "--model",
        MODEL_ALIAS,
        "--scenario",
        scenario,
        "--mode",
        mode,
        "--turns",
        str(turns),
        "--report",
        str(report),
        "--record",
        str(record),
        *(() if stream else ("--no-stream",)),
        *extra,
    ]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=MATCH_S, env=env)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr}")
    return figures(scenario, mode, stream, report, record, done.stdout.strip())


def figures(
    scenario: str, mode: str, stream: bool, report: Path, record: Path, summary: str = ""
) -> Figures:
    data: dict[str, Any] = json.loads(report.read_text("utf-8"))
    out = Figures(scenario, mode, stream, summary=summary)
    out.plans = data["plans"]
    out.llm_share = data["llm_plan_share"] or 0.0
    out.requests = data["llm_requests"]
    out.overhead_p99 = data["latency_ms"]["overhead_p99"]
    out.backend = data.get("backend_reason", "")
    for line in record.read_text("utf-8").splitlines():
        entry = json.loads(line)
        if entry.get("kind") != "event":
            continue
        kind, event = entry["type"], entry["data"]
        if kind == "AgentFellBack":
            out.causes[event["cause"]] += 1
            if event["to_tier"] in ("heuristic", "emergency"):
                out.final_causes[event["cause"]] += 1
        elif kind == "ResponseEnded" and event["finish_reason"] == "length":
            out.cut_by_length += 1
    out.missing_from_batch = out.causes["missing_from_batch"]
    return out
