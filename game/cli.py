"""The command line: one argparse parser, easy to extend (the lead adds LLM flags).

Errors are one line on stderr and exit code 2 (argparse's usual two-line usage
+ error is replaced by a single line).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from typing import NoReturn

from game.controllers import Controller, HeuristicController, RandomController

PROG = "python -m game"

ControllerFactory = Callable[[random.Random], Controller]
CONTROLLERS: dict[str, ControllerFactory] = {
    "heuristic": HeuristicController,
    "random": RandomController,
}
"""Controller name -> factory taking the squad's seeded RNG. Add entries to offer more."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a single line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(controllers: dict[str, ControllerFactory] | None = None) -> OneLineParser:
    choices = sorted(controllers or CONTROLLERS)
    p = OneLineParser(
        prog=PROG,
        description="squadmind: a tactical grid game whose squads are planned by an LLM.",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="play a whole match with no window and print a one-line summary",
    )
    p.add_argument(
        "--scenario",
        default="village",
        metavar="NAME",
        help="scenario from assets/maps (skirmish, village, siege; default: village)",
    )
    p.add_argument(
        "--map",
        metavar="PATH",
        help="load a custom map file instead of --scenario (format: see game/scenarios.py)",
    )
    p.add_argument(
        "--turns",
        type=int,
        default=40,
        metavar="N",
        help="turn limit for this match (positive; a draw if nobody wins; default: 40)",
    )
    p.add_argument("--seed", type=int, default=0, metavar="S", help="RNG seed (default: 0)")
    p.add_argument(
        "--report", metavar="PATH", help="write the JSON match report to PATH (headless)"
    )
    p.add_argument(
        "--blue",
        choices=choices,
        default="heuristic",
        help="controller of the blue squad (default: heuristic)",
    )
    p.add_argument(
        "--red",
        choices=choices,
        default="heuristic",
        help="controller of the red squad (default: heuristic)",
    )
    return p


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit 2."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)
