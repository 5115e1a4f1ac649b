"""`python -m game.ladder`: play the matrix, print the table, write JSON and HTML."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, TextIO

from game.ladder import report, store
from game.ladder.cells import CONTROLLERS, Cell, matrix, parse_matchup, play
from game.ladder.stats import groups
from game.match.cli import SIM_PRESETS, OneLineParser
from game.match.maps import names

EXIT_INTERRUPTED = 130
MAX_SEEDS = 10_000


def _matchup(text: str) -> tuple[str, str]:
    try:
        return parse_matchup(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seeds(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= n <= MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"{n} is not between 1 and {MAX_SEEDS}")
    return n


def build_parser() -> OneLineParser:
    p = OneLineParser(
        prog="python -m game.ladder",
        description=(
            "Squads against each other: every matchup x scenario x sim preset x seed, "
            "each seed played with sides swapped (odd seeds on the map flipped left to "
            "right), in worker processes. Prints a table of win rates with 95% Wilson "
            "intervals per controller, colour and map side, and writes JSON and an HTML "
            "chart. Results go to a JSONL file as they finish: rerun the same command to "
            "resume an interrupted run."
        ),
        epilog=(
            "controllers: heuristic (the rule planner), random, full and simplified (the "
            "simulated LLM at that start tier, shown as sim-full / sim-simplified). "
            "Example: python -m game.ladder --matchups heuristic:heuristic --seeds 40"
        ),
    )
    p.add_argument(
        "--matchups",
        nargs="+",
        type=_matchup,
        default=[("heuristic", "heuristic")],
        metavar="A:B",
        help=f"pairs of controllers ({', '.join(CONTROLLERS)}); default heuristic:heuristic",
    )
    p.add_argument(
        "--scenarios",
        nargs="+",
        choices=names(),
        default=names(),
        metavar="MAP",
        help=f"maps ({', '.join(names())}); default all",
    )
    p.add_argument(
        "--presets",
        nargs="+",
        choices=SIM_PRESETS,
        default=["instant", "gpu"],
        help="sim latency presets, for matchups with an LLM squad (default: instant gpu)",
    )
    p.add_argument("--seeds", type=_seeds, default=40, metavar="N", help="seeds 0..N-1 (40)")
    p.add_argument("--turns", type=int, default=None, metavar="N", help="default: the map's")
    p.add_argument("--jobs", type=int, default=2, metavar="N", help="worker processes (2)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("ladder"),
        metavar="PREFIX",
        help="writes PREFIX.jsonl (results, resumable), PREFIX.json, PREFIX.html (./ladder)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    if args.turns is not None and args.turns < 1:
        parser.error(f"--turns must be at least 1, got {args.turns}")
    prefix: Path = args.out
    if not prefix.parent.is_dir():
        parser.error(f"--out: folder {prefix.parent} does not exist")
    results = prefix.with_name(prefix.name + ".jsonl")
    cells = matrix(args.matchups, args.scenarios, args.presets, range(args.seeds), args.turns)
    wanted = {c.key for c in cells}
    try:
        done = [r for r in store.read(results) if r["key"] in wanted]
    except (store.StoreError, OSError) as exc:
        parser.error(str(exc))
    have = {r["key"] for r in done}
    todo = [c for c in cells if c.key not in have]
    if have:
        print(
            f"resuming: {len(have)} of {len(cells)} matches already in {results}", file=sys.stderr
        )
    try:
        done += run(todo, results, args.jobs, len(cells), len(have), sys.stderr)
    except KeyboardInterrupt:
        print(f"\ninterrupted: rerun the same command to resume ({results})", file=sys.stderr)
        return EXIT_INTERRUPTED
    order = {c.key: i for i, c in enumerate(cells)}
    done.sort(key=lambda r: order[r["key"]])
    folded = groups(done)
    print(f"{len(done)} matches; win rates among decided matches, [95% Wilson interval]")
    print(report.table(folded))
    print(report.actions_line(folded))
    json_path = prefix.with_name(prefix.name + ".json")
    html_path = prefix.with_name(prefix.name + ".html")
    json_path.write_text(json.dumps(report.summary(folded), indent=2) + "\n", "utf-8")
    html_path.write_text(report.chart(folded, "squadmind ladder"), "utf-8")
    print(f"wrote {json_path} and {html_path}", file=sys.stderr)
    return 0


def run(
    todo: list[Cell], results: Path, jobs: int, total: int, before: int, out: TextIO
) -> list[dict[str, Any]]:
    """Play the cells in worker processes, appending each result as it finishes."""
    rows: list[dict[str, Any]] = []
    if not todo:
        return rows
    start = time.monotonic()
    progress = Progress(out, total, before)
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        pending: set[Future[dict[str, Any]]] = set()
        queue = list(reversed(todo))
        try:
            while queue or pending:
                while queue and len(pending) < 2 * jobs:
                    pending.add(pool.submit(play, queue.pop()))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    row = f.result()
                    store.append(results, row)
                    rows.append(row)
                    progress.update(len(rows), time.monotonic() - start)
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    progress.finish()
    return rows


class Progress:
    """One updating line on stderr: a bar, the count and the time left."""

    WIDTH = 30

    def __init__(self, out: TextIO, total: int, before: int) -> None:
        self.out, self.total, self.before = out, total, before

    def update(self, new: int, elapsed: float) -> None:
        done = self.before + new
        filled = self.WIDTH * done // max(1, self.total)
        left = (self.total - done) * elapsed / max(1, new)
        self.out.write(
            f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{self.total} matches, "
            f"about {left:.0f} s left "
        )
        self.out.flush()

    def finish(self) -> None:
        self.out.write("\n")
        self.out.flush()


if __name__ == "__main__":
    sys.exit(main())
