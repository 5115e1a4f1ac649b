"""Headless matches against llama-cpp-python's real server (the tiny random model, its
OpenAI-compatible API on loopback), as a user plays them: every map, dispatch mode and
streaming choice. The schema and the client, not the model, must give every agent a
plan: no agent missing from a batch, no answer cut by length, no malformed answer.

The matches run a few at a time against the one server (each waits on the wall clock
between turns); a generous round budget keeps a busy machine's queueing from turning
into deadline fallbacks, which are not what these tests are about, and four turns give
a loaded machine's first answers time to land before the match ends (with two, three
suites at once on two cores could end a match before its first round was answered).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.engines.matches import MODES, SCENARIOS, Figures, play

pytestmark = pytest.mark.engines

TURNS = 4
AT_ONCE = 3
CASES = list(itertools.product(SCENARIOS, MODES, (True, False)))
ALLOWED_CAUSES = {"validation_error"}
"""What a plan may still fall back for: a MoveTo with no path (the schema cannot say
which tiles are reachable, only which exist)."""


@pytest.fixture(scope="module")
def matches(
    llama_cpp_python_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str, bool], Future[Figures]]]:
    out = tmp_path_factory.mktemp("matches")
    extra = ("--budget-ms", "20000")
    with ThreadPoolExecutor(AT_ONCE) as pool:
        yield {
            case: pool.submit(play, llama_cpp_python_url, *case, out, turns=TURNS, extra=extra)
            for case in CASES
        }


@pytest.mark.parametrize(
    ("scenario", "mode", "stream"),
    CASES,
    ids=[f"{s}-{m}-{'stream' if st else 'whole'}" for s, m, st in CASES],
)
def test_every_agent_gets_a_plan_from_the_real_engine(
    matches: dict[tuple[str, str, bool], Future[Figures]], scenario: str, mode: str, stream: bool
) -> None:
    figures = matches[(scenario, mode, stream)].result()
    assert "OpenAI-compatible (llama-cpp-python)" in figures.backend  # found by owned_by "me"
    assert figures.plans > 0 and figures.requests > 0
    assert figures.missing_from_batch == 0, figures.causes
    assert figures.cut_by_length == 0
    assert set(figures.causes) <= ALLOWED_CAUSES, figures.causes
    assert figures.llm_share >= 0.8, figures.summary
    assert figures.overhead_p99 is not None  # measured for a server that stamps nothing


def test_the_model_is_small_and_written_here(tiny_model: Path) -> None:
    assert tiny_model.stat().st_size < 1024 * 1024
