"""The issue's table: real engine, tiny random model, every map, mode and streaming choice.

    python -m tests.engines.table                          # llama-cpp-python's server
    python -m tests.engines.table --llama-server PATH      # llama.cpp's llama-server

Writes the model, starts the engine on loopback, plays one realtime headless match per
row (one at a time, so rows do not share the engine), prints a Markdown table, and
stops the engine. Needs the `engines` extra (and a built llama-server for the second).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from tests.engines.matches import MODES, SCENARIOS, Figures, play
from tests.engines.servers import llama_cpp_python_server, llama_server
from tests.engines.tiny_gguf import write_tiny_gguf


def rows(figures: list[Figures]) -> Iterator[str]:
    yield (
        "| map | mode | stream | plans | LLM share | missing_from_batch | cut by length "
        "| overhead p99 ms | requests | fallback causes (final) |"
    )
    yield "|---|---|---|---|---|---|---|---|---|---|"
    for f in figures:
        causes = ", ".join(f"{k} {v}" for k, v in sorted(f.final_causes.items())) or "-"
        overhead = "-" if f.overhead_p99 is None else f"{f.overhead_p99:.2f}"
        yield (
            f"| {f.scenario} | {f.mode} | {'on' if f.stream else 'off'} | {f.plans} "
            f"| {f.llm_share:.1%} | {f.missing_from_batch} | {f.cut_by_length} | {overhead} "
            f"| {f.requests} | {causes} |"
        )
    plans = sum(f.plans for f in figures)
    llm = sum(round(f.llm_share * f.plans) for f in figures)
    yield (
        f"| all | | | {plans} | {llm / max(1, plans):.1%} "
        f"| {sum(f.missing_from_batch for f in figures)} "
        f"| {sum(f.cut_by_length for f in figures)} "
        f"| {max((f.overhead_p99 or 0.0) for f in figures):.2f} (max) "
        f"| {sum(f.requests for f in figures)} | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-server", type=Path, help="llama-server binary to measure")
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--out", type=Path, help="keep reports and records here")
    parser.add_argument("--extra", nargs="*", default=[], help="more `python -m game` options")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        model = write_tiny_gguf(out / "tiny.gguf")
        server: AbstractContextManager[str] = (
            llama_server(args.llama_server, model)
            if args.llama_server
            else llama_cpp_python_server(model)
        )
        results = []
        with server as url:
            for scenario, mode, stream in itertools.product(SCENARIOS, MODES, (True, False)):
                f = play(
                    url, scenario, mode, stream, out, turns=args.turns, extra=tuple(args.extra)
                )
                print(f.summary, dict(f.causes), flush=True)
                results.append(f)
        print(results[0].backend)
        print("\n".join(rows(results)))


if __name__ == "__main__":
    main()
