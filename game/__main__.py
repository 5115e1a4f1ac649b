"""`python -m game`: the window (later) or a headless match."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from game.cli import CONTROLLERS, build_parser, fail
from game.headless import controller_rng, run_match, write_report
from game.scenarios import SQUADS, MapError, Scenario, load, load_file


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.turns <= 0:
        fail(f"--turns must be a positive integer, got {args.turns}")
    scenario = _scenario(args)
    if not args.headless:
        print("window mode not built yet; use --headless", file=sys.stderr)
        return 2
    names = {"blue": args.blue, "red": args.red}
    controllers = {s: CONTROLLERS[names[s]](controller_rng(args.seed, s)) for s in SQUADS}
    result = run_match(scenario, args.seed, args.turns, controllers, names)
    print(result.summary())
    if args.report:
        try:
            write_report(args.report, result)
        except OSError as exc:
            fail(f"cannot write report {args.report}: {exc.strerror or exc}")
    return 0


def _scenario(args: argparse.Namespace) -> Scenario:
    try:
        return load_file(args.map) if args.map else load(args.scenario)
    except MapError as exc:
        fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
