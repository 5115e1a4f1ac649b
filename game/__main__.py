"""`python -m game`: the window, or a headless match with `--headless`.

Exit codes:

- 0: the match was played (or the window closed);
- 1: `--replay` gave a different state_hash than the record's;
- 2: bad input: arguments, a map, a record (malformed, hostile, or edited: its digest
  does not match its streams and snapshots), or a server that cannot be used
  (one line on stderr says which);
- 3: a headless match played with 0% LLM plans because the server refused the API key
  (HTTP 401/403; one line on stderr says so);
- 130: interrupted (Ctrl-C / SIGINT); the planner thread is stopped and joined first,
  even while a server is stalled mid-stream.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from game.match.cli import PROG, build_parser, fail
from game.match.launch import Launch, blue_owner, build, build_replay, save_cache
from game.match.maps import load, load_file
from game.match.planlog import key_refused_line
from game.match.session import Session
from game.rules.scenarios import MapError, Scenario

EXIT_OK = 0
EXIT_REPLAY_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_KEY_REFUSED = 3
"""A headless match whose LLM squads got no LLM plan because the server refused the key."""
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a process ended by Ctrl-C."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # before a match started (parsing, probing servers)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.replay and args.record:
        fail("--record and --replay cannot be used together")
    if args.cache_file and (args.cache_load or args.cache_save):
        fail("--cache-file loads and saves the cache itself: not with --cache-load or --cache-save")
    if args.cache_file and args.record:
        fail(
            "--cache-file changes when the match ends, so a record could not be replayed "
            "from it: record with --cache-load and --cache-save on two files"
        )
    if args.cache_file and args.replay:
        fail("--cache-file with --replay: give the cache the match started with, --cache-load")
    scenario = None if args.replay else _scenario(args)
    screen = None if args.headless else _open_window(args)
    if args.replay:
        launch = build_replay(args, window=not args.headless)
    else:
        assert scenario is not None
        launch = build(args, scenario, window=not args.headless)
    if args.headless:
        return _headless(args, launch)
    return _window(args, launch, screen)


def _open_window(args: argparse.Namespace) -> Any:
    """The window, opened before the match is built (the planner's imports, a server's
    probe) so that it shows at once; a window that cannot open ends the run (exit 2)."""
    from game.ui.app import open_window, show_starting  # pygame only for a window

    opened = open_window(args.size, "squadmind")
    if isinstance(opened, str):
        fail(opened)
    show_starting(opened, "starting: building the planner...")
    return opened


def _headless(args: argparse.Namespace, launch: Launch) -> int:
    from game.match.headless import play, result_of, write_report  # not for the window

    session = launch.session
    if launch.backend is not None:
        clock = "virtual clock" if launch.virtual else "wall clock"
        print(f"planner: {launch.backend_reason}; {clock}", file=sys.stderr)
    try:
        play(session, realtime=not launch.virtual and launch.backend is not None)
    except KeyboardInterrupt:
        session.close()
        print(f"{args.scenario}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    session.close()
    names = {"red": args.red, "blue": blue_owner(args, window=False)}
    result = result_of(session, names, _planning_report(args, launch))
    print(result.summary())
    save_cache(args, launch)  # after the result: a cache that cannot be saved loses no result
    expected = launch.record_hash
    if expected is not None:
        if result.state_hash != expected:
            print(
                f"replay: state_hash {result.state_hash[:16]} differs from the record's "
                f"{expected[:16]}",
                file=sys.stderr,
            )
            return EXIT_REPLAY_MISMATCH
        print(f"replay: state_hash matches the record ({expected[:16]})", file=sys.stderr)
    if args.report:
        _write(args.report, lambda path: write_report(path, result))
    if args.trace and launch.backend is not None:
        _write(args.trace, lambda path: Path(path).write_text(session.trace_json(), "utf-8"))
    refused = session.log.key_refused
    if refused is not None and launch.backend is not None and not result_llm_plans(session):
        print(f"{PROG}: error: {key_refused_line(refused)}; no LLM plans", file=sys.stderr)
        return EXIT_KEY_REFUSED
    return EXIT_OK


def result_llm_plans(session: Session) -> bool:
    """Did any agent get an LLM plan (either LLM tier) this match?"""
    summary = session.result_summary()
    return bool(summary.get("llm_plan_share"))


def _planning_report(args: argparse.Namespace, launch: Launch) -> dict[str, Any]:
    if launch.backend is None:
        return {}
    settings = launch.session.settings
    return {
        "backend": launch.backend.name,
        "backend_reason": launch.backend_reason,
        "model": launch.backend.model,
        "clock": "virtual" if launch.virtual else "wall",
        "mode": settings.mode,
        "stream": settings.stream,
        "cache": settings.cache,
        "start_tier": settings.start_tier.value,
        "budget_ms": settings.budget_ms,
        **launch.session.result_summary(),
    }


def _window(args: argparse.Namespace, launch: Launch, screen: Any = None) -> int:
    from game.ui.app import run_window  # pygame only when a window is wanted

    print(f"planner: {launch.backend_reason}", file=sys.stderr)
    try:
        return run_window(
            launch.session,
            size=args.size,
            frames=args.frames,
            screenshot=args.screenshot,
            script=args.script,
            screen=screen,
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        launch.session.close()
        save_cache(args, launch)
        global _window_closed
        _window_closed = True


_window_closed = False
"""Set once a window has closed: its session, planner thread and record are closed."""


def exit_process(code: int) -> None:
    """Exit with `code`. After a window, skip the interpreter's teardown (collecting and
    freeing every object and module: about a second on a loaded machine) since nothing
    is left to finish: stdio is flushed, and the session closed its planner and files."""
    if _window_closed:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def _write(path: str, writer: Any) -> None:
    try:
        writer(path)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


def _scenario(args: argparse.Namespace) -> Scenario:
    try:
        return load_file(args.map) if args.map else load(args.scenario)
    except MapError as exc:
        fail(str(exc))


if __name__ == "__main__":
    exit_process(main())
