"""The command line: one argparse parser for the window and for headless matches.

Errors are one line on stderr and exit code 2 (argparse's usual two-line usage +
error is replaced by a single line).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from game.match.controllers import Controller, HeuristicController, RandomController
from planner.backends.profiles import PROFILES
from planner.events import MODES
from planner.settings import PLAN_FORMAT_SETTINGS

PROG = "python -m game"
T = TypeVar("T")

ControllerFactory = Callable[[random.Random], Controller]
CONTROLLERS: dict[str, ControllerFactory] = {
    "heuristic": HeuristicController,
    "random": RandomController,
}
"""Rule controllers by name -> factory taking the squad's seeded RNG."""
LLM = "llm"
"""The squad is planned by the LLM planner (not a rule controller)."""
SQUAD_CHOICES = (LLM, *sorted(CONTROLLERS))

BACKENDS = ("auto", "sim", "ollama", "openai")
TIERS = ("simplified", "full")
SIM_PRESETS = ("gpu", "mac", "cpu", "instant")


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a single line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _number(text: str, kind: Callable[[str], T], what: str) -> T:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def _positive_int(text: str) -> int:
    value = _number(text, int, "a whole number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _rate(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if w < 640 or h < 400:
        raise argparse.ArgumentTypeError(f"window {text} is too small (at least 640x400)")
    return w, h


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog=PROG,
        description=(
            "squadmind: a tactical grid game whose red squad is planned by an LLM, and a "
            "visual debugger for LLM planning. With no options it opens the window; you "
            "command blue."
        ),
        epilog=(
            "Environment: OLLAMA_HOST, OLLAMA_MODEL, OPENAI_API_KEY, LLM_CACHE_CAP, "
            "LLM_RETRY_MAX, LLM_BREAKER_THRESHOLD, LLM_TIMEOUT_MS. "
            "Exit codes: 0 match played (or window closed); 1 --replay gave a different "
            "state_hash than the record's; 2 bad input (arguments, map, record, server); "
            "130 interrupted (Ctrl-C)."
        ),
    )
    match = p.add_argument_group("match")
    match.add_argument(
        "--scenario",
        default="village",
        metavar="NAME",
        help="scenario from assets/maps: skirmish, village, siege (default: village)",
    )
    match.add_argument(
        "--map",
        metavar="PATH",
        help="play a custom map file instead (format: game/rules/scenarios.py)",
    )
    match.add_argument(
        "--turns",
        type=int,
        default=None,
        metavar="N",
        help="turn limit; a draw if nobody has won by then (default: the map's limit)",
    )
    match.add_argument("--seed", type=int, default=0, metavar="S", help="RNG seed (default: 0)")
    match.add_argument(
        "--red",
        choices=SQUAD_CHOICES,
        default=LLM,
        help="who plans the red squad (default: llm)",
    )
    match.add_argument(
        "--blue",
        choices=SQUAD_CHOICES,
        default=None,
        help="who plans blue (default: you, in the window; heuristic, headless). Given "
        "with the window, you watch both squads play",
    )

    llm = p.add_argument_group("LLM backend")
    llm.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: Ollama if one answers at OLLAMA_HOST or 127.0.0.1:11434 with a model, "
        "else the built-in simulated LLM (default: auto)",
    )
    llm.add_argument("--url", metavar="URL", help="server URL for --backend ollama/openai")
    llm.add_argument("--model", metavar="NAME", help="model name (default: OLLAMA_MODEL/first)")
    llm.add_argument(
        "--profile",
        choices=tuple(PROFILES),
        metavar="NAME",
        help="what the --backend openai server is, instead of asking its /v1/models: "
        f"{', '.join(PROFILES)}",
    )
    llm.add_argument(
        "--sim-preset",
        choices=SIM_PRESETS,
        default="gpu",
        help="latency of the simulated LLM (default: gpu: 3500 prefill, 110 decode tok/s)",
    )
    llm.add_argument(
        "--num-parallel",
        type=_positive_int,
        default=1,
        metavar="K",
        help="sequences the simulated server decodes at once (1 like Ollama; default: 1)",
    )
    llm.add_argument(
        "--faults",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help="simulated LLM: chance per request of an injected fault, 0..1 (default: 0)",
    )

    plan = p.add_argument_group("planner")
    plan.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="dispatch mode (default: auto, which shapes each round to fit the budget)",
    )
    plan.add_argument("--no-stream", action="store_true", help="deliver plans only when whole")
    plan.add_argument("--no-cache", action="store_true", help="turn the prompt cache off")
    plan.add_argument(
        "--cache-similar",
        action="store_true",
        help="near-identical situations hit the cache too (only if the plan still validates)",
    )
    plan.add_argument(
        "--tier", choices=TIERS, default="simplified", help="start tier (default: simplified)"
    )
    plan.add_argument(
        "--budget-ms",
        type=_positive_float,
        default=2500.0,
        metavar="MS",
        help="per-round deadline; late agents get a heuristic plan (default: 2500)",
    )
    plan.add_argument(
        "--plan-format",
        choices=PLAN_FORMAT_SETTINGS,
        default="auto",
        help="how plans are written: verbose JSON objects, or compact positional arrays "
        "(about half the output tokens); auto: compact for Ollama, llama.cpp, vLLM, "
        "LM Studio and the sim, verbose for OpenAI and unknown servers (default: auto)",
    )
    plan.add_argument(
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="most requests in flight in parallel mode (default: 8)",
    )

    run = p.add_argument_group("headless")
    run.add_argument("--headless", action="store_true", help="play a whole match with no window")
    run.add_argument("--report", metavar="PATH", help="write the JSON match report to PATH")
    run.add_argument(
        "--realtime",
        action="store_true",
        help="run on the wall clock (a real server always does; the sim defaults to its "
        "virtual clock, which is deterministic and does not wait)",
    )
    run.add_argument("--trace", metavar="PATH", help="write planning rounds as a Chrome trace")

    rec = p.add_argument_group("record and replay")
    rec.add_argument(
        "--record",
        metavar="PATH",
        help="write a JSON Lines match record: snapshots, prompts, raw streams, plans, hash",
    )
    rec.add_argument(
        "--replay",
        metavar="PATH",
        help="play a recorded match again from its record (no server needed); its scenario, "
        "seed and settings come from the record",
    )

    window = p.add_argument_group("window")
    window.add_argument(
        "--size", type=_size, default=(1280, 800), metavar="WxH", help="window size"
    )
    window.add_argument(
        "--frames",
        type=_positive_int,
        metavar="N",
        help="run N frames, print frame times and exit (for tests, docs, benchmarks)",
    )
    window.add_argument("--screenshot", metavar="PATH", help="save a PNG after the last frame")
    window.add_argument(
        "--script", metavar="PATH", help="scripted input events (format: game/ui/script.py)"
    )
    return p


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit 2."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)
