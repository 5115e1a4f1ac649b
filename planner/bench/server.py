"""The sim server in a child process, as a real server would be, with its emissions.

A real LLM server is another process. Run in the bench's own process, the sim's
thread and the planner's thread would take turns on one GIL, and each would wait for
the other (up to the 5 ms switch interval): the planner's "overhead" would measure
that, not the planner. So the bench starts the sim in a child process:

    python -m planner.bench.server --preset gpu --num-parallel 16 --seed 0

It prints its URL on the first line of stdout, then answers each line "emissions" on
stdin with one JSON line: {request_id: [[agent_id, instant], ...]}. Instants are
`time.perf_counter()`, which is the system-wide monotonic clock on Linux, macOS and
Windows, so they compare directly with the planner's instants in the parent.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from planner.sim.server import SimServer


class BenchServer(Protocol):
    url: str
    model: str

    def emissions(self) -> dict[int, list[tuple[int, float]]]: ...


class InProcessSimServer:
    """The sim server on a thread of this process (quick; for tests and `--in-process`)."""

    def __init__(self, preset: str, num_parallel: int, seed: int = 0) -> None:
        self._server = SimServer(preset=preset, num_parallel=num_parallel, seed=seed)
        self.url = ""
        self.model = self._server.sim.model_name

    def __enter__(self) -> InProcessSimServer:
        self._server.start()
        self.url = self._server.url
        return self

    def emissions(self) -> dict[int, list[tuple[int, float]]]:
        return self._server.sim.emissions_copy()

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


class ChildSimServer:
    """Context manager: the child process, its `.url`, and `emissions()`."""

    def __init__(self, preset: str, num_parallel: int, seed: int = 0) -> None:
        self._args = [
            sys.executable,
            "-m",
            "planner.bench.server",
            "--preset",
            preset,
            "--num-parallel",
            str(num_parallel),
            "--seed",
            str(seed),
        ]
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.model = f"sim-{preset}"

    def __enter__(self) -> ChildSimServer:
        proc = subprocess.Popen(
            self._args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self._proc = proc
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"bench sim server did not start: {line!r}")
        self.url = line
        return self

    def emissions(self) -> dict[int, list[tuple[int, float]]]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("emissions\n")
        proc.stdin.flush()
        raw: dict[str, list[list[float]]] = json.loads(proc.stdout.readline())
        return {int(k): [(int(a), float(t)) for a, t in v] for k, v in raw.items()}

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child's loop ends at EOF
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m planner.bench.server")
    p.add_argument("--preset", default="gpu")
    p.add_argument("--num-parallel", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    with SimServer(preset=args.preset, num_parallel=args.num_parallel, seed=args.seed) as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            if line.strip() == "emissions":
                data = {str(k): v for k, v in server.sim.emissions_copy().items()}
                print(json.dumps(data), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
