"""The command line: one argparse parser for the window and for headless matches.

Errors are one line on stderr and exit code 2 (argparse's usual two-line usage +
error is replaced by a single line).
"""

from __future__ import annotations

import argparse
import math
import random
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from game.match.controllers import Controller, HeuristicController, RandomController
from planner.backends.base import THINK_CHOICES
from planner.backends.profiles import PROFILES
from planner.events import MODES
from planner.settings import PLAN_FORMAT_SETTINGS
from planner.sim.persona import PERSONA_CHOICES

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


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _number(text, int, "a whole number")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {low} to {high}, got {text}"
            )
        return value

    return parse


def _bounded_float(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text, float, "a number")
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(
                f"must be a number from {low:g} to {high:g}, got {text}"
            )
        return value

    return parse


MAX_NUM_PARALLEL = 1024
MAX_CONCURRENCY = 1024
MAX_THINK_TOKENS = 65_536
MAX_BUDGET_MS = 600_000.0
"""Ten minutes: a round's deadline longer than that is a typo."""
MAX_TURNS = 100_000
"""As a map's own turn_limit header."""
MAX_FRAMES = 10_000_000
MAX_WINDOW = (7680, 4320)
MIN_WINDOW = (640, 400)


def _rate(text: str) -> float:
    value = _number(text, float, "a number")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _situation_buckets(text: str) -> tuple[int, int, int, int]:
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not four whole numbers N,H,E,A")
    near, hp, enemies, allies = (int(p) for p in parts)
    if not (1 <= near <= 64 and 1 <= hp <= 100 and enemies <= 16 and allies <= 16):
        raise argparse.ArgumentTypeError(
            f"{text!r}: N from 1 to 64, H from 1 to 100, E and A from 0 to 16"
        )
    return near, hp, enemies, allies


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if w < MIN_WINDOW[0] or h < MIN_WINDOW[1]:
        raise argparse.ArgumentTypeError(f"window {text} is too small (at least 640x400)")
    if w > MAX_WINDOW[0] or h > MAX_WINDOW[1]:
        raise argparse.ArgumentTypeError(f"window {text} is too large (at most 7680x4320)")
    return w, h


def output_file(*suffixes: str) -> Callable[[str], str]:
    """A file to write after the match: its folder must exist now, not after the match
    (and, with `suffixes`, its name must end in one of them)."""

    def parse(text: str) -> str:
        path = Path(text)
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text!r} must end in {' or '.join(suffixes)}")
        folder = path.parent
        if path.name == "" or not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r}: folder {str(folder)!r} does not exist")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
        return text

    return parse


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
            "LLM_RETRY_MAX, LLM_BREAKER_THRESHOLD, LLM_BREAKER_COOLDOWN_MS, LLM_TIMEOUT_MS, "
            "LLM_CONNECT_TIMEOUT_MS (checked before the match: planner/config.py). "
            "Exit codes: 0 match played (or window closed); 1 --replay gave a different "
            "state_hash than the record's; 2 bad input (arguments, map, record, server); "
            "3 headless match with no LLM plan because the server refused the API key; "
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
        type=_bounded_int(1, MAX_TURNS),
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
        type=_bounded_int(1, MAX_NUM_PARALLEL),
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
    llm.add_argument(
        "--persona",
        choices=PERSONA_CHOICES,
        default=None,
        help="how the simulated LLM plays: aggressive, cautious, objective, support, or seed "
        "(one picked by --seed); default: the rule planner plus noise",
    )

    plan = p.add_argument_group("planner")
    plan.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="dispatch mode (default: auto, which shapes each round to fit the budget)",
    )
    plan.add_argument("--no-stream", action="store_true", help="deliver plans only when whole")
    plan.add_argument(
        "--no-intent",
        action="store_true",
        help="do not ask plans for their short intent (saves its output tokens)",
    )
    plan.add_argument("--no-cache", action="store_true", help="turn the prompt cache off")
    plan.add_argument(
        "--cache-similar",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the same tactical situation hits the cache in another turn, place or agent of "
        "the role: the plan is placed on the agent's own landmarks and used only if it "
        "validates (default: on; --no-cache-similar: exact prompts only)",
    )
    plan.add_argument(
        "--situation-buckets",
        type=_situation_buckets,
        default=(6, 3, 2, 1),
        metavar="N,H,E,A",
        help="how coarsely the cache's situation key sees an agent: allies and the "
        "objective within N tiles are near, hp in H bands, the reach of the E nearest "
        "enemies, up to A near allies counted (default: 6,3,2,1)",
    )
    plan.add_argument(
        "--cache-load",
        metavar="PATH",
        help="start with the plans of a cache saved by --cache-save (a warm start)",
    )
    plan.add_argument(
        "--cache-save",
        type=output_file(),
        metavar="PATH",
        help="save the prompt cache's plans to PATH when the match ends",
    )
    plan.add_argument(
        "--cache-file",
        type=output_file(),
        metavar="PATH",
        help="keep the cache in PATH from game to game: start with its plans if it exists, "
        "save them back when the match ends (instead of --cache-load and --cache-save)",
    )
    plan.add_argument(
        "--tier", choices=TIERS, default="simplified", help="start tier (default: simplified)"
    )
    plan.add_argument(
        "--budget-ms",
        type=_bounded_float(1, MAX_BUDGET_MS),
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
        "--think",
        choices=THINK_CHOICES,
        default="auto",
        help="a reasoning model's thinking: on or off where the server has a switch for "
        "it (Ollama think, chat_template_kwargs enable_thinking, OpenAI reasoning_effort); "
        "auto sends nothing (default: auto)",
    )
    plan.add_argument(
        "--think-budget",
        type=_bounded_int(0, MAX_THINK_TOKENS),
        default=1024,
        metavar="N",
        help="output tokens added to each request for thinking, with --think on (or auto "
        "once the server has been seen thinking) (default: 1024)",
    )
    plan.add_argument(
        "--no-interim",
        action="store_true",
        help="no interim plans: an LLM agent waiting for its plan holds or finishes what is "
        "left of its last one, and may stand idle (hotkey N)",
    )
    plan.add_argument(
        "--plan-ahead",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="submit each round before its turn starts, by the lead learned from recent "
        "rounds; a plan that lands early is held and checked against the world as its "
        "turn starts (hotkey P; default: on; --no-plan-ahead: each round at its turn's "
        "start)",
    )
    plan.add_argument(
        "--no-opening",
        action="store_true",
        help="start the clock at once: the LLM squads' first plans arrive during turn 1 "
        "(default: the world waits, at most the round budget, for the first rounds, so "
        "every agent starts on its plan)",
    )
    plan.add_argument(
        "--concurrency",
        type=_bounded_int(1, MAX_CONCURRENCY),
        default=8,
        metavar="N",
        help="most requests in flight in parallel mode (default: 8)",
    )

    run = p.add_argument_group("headless")
    run.add_argument("--headless", action="store_true", help="play a whole match with no window")
    run.add_argument(
        "--report", type=output_file(), metavar="PATH", help="write the JSON match report to PATH"
    )
    run.add_argument(
        "--realtime",
        action="store_true",
        help="run on the wall clock (a real server always does; the sim defaults to its "
        "virtual clock, which is deterministic and does not wait)",
    )
    run.add_argument(
        "--trace",
        type=output_file(),
        metavar="PATH",
        help="write planning rounds as a Chrome trace",
    )

    rec = p.add_argument_group("record and replay")
    rec.add_argument(
        "--otel",
        action="store_true",
        help="export planning rounds as OpenTelemetry spans and metrics over OTLP/HTTP "
        "(GenAI semantic conventions; endpoint from OTEL_EXPORTER_OTLP_ENDPOINT; needs the "
        "otel extra)",
    )
    rec.add_argument(
        "--record",
        type=output_file(),
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
        "--size",
        type=_size,
        default=None,
        metavar="WxH",
        help="window size (default: 90%% of the screen; the window is resizable)",
    )
    window.add_argument(
        "--frames",
        type=_bounded_int(1, MAX_FRAMES),
        metavar="N",
        help="run N frames, print frame times and exit (for tests, docs, benchmarks)",
    )
    window.add_argument(
        "--screenshot",
        type=output_file(".png"),
        metavar="PATH",
        help="save a PNG after the last frame (the name must end in .png; its folder must exist)",
    )
    window.add_argument(
        "--script", metavar="PATH", help="scripted input events (format: game/ui/script.py)"
    )
    return p


def fail(message: str, prog: str = PROG) -> NoReturn:
    """Print a one-line error and exit 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def add_game_flags(p: argparse.ArgumentParser) -> None:
    """`--flags`: `python -m game` flags a bench or ladder passes to every match."""
    p.add_argument(
        "--flags",
        default="",
        metavar="TEXT",
        help='extra `python -m game` flags for every match, e.g. --flags="--no-opening"',
    )


def game_flags(parser: argparse.ArgumentParser, text: str) -> tuple[str, ...]:
    """`--flags` split as a shell would and checked by the game's own parser: a bad one is
    one line and exit 2 before any match is played."""
    try:
        flags = tuple(shlex.split(text))
    except ValueError as exc:
        parser.error(f"--flags: {exc}")
    build_parser().parse_args(["--headless", *flags])
    return flags
