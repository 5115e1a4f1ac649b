"""The parser on real llama.cpp streams: decode the SSE, then split the content anywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.backends.framing import SSEDecoder
from planner.stream import (
    ParseResult,
    ParseSummary,
    PlanStreamParser,
    RejectedElement,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SSE_FIXTURES = sorted(FIXTURES.glob("*.sse"))
ROUND = [0, 2, 5]


def test_fixtures_are_present() -> None:
    assert [p.name for p in SSE_FIXTURES] == [
        "llama-cpp-python-chat-stream.sse",
        "llama-server-chat-stream.sse",
    ]


def content_of(path: Path) -> str:
    decoder = SSEDecoder()
    events = decoder.feed(path.read_text(encoding="utf-8")) + decoder.finish()
    assert events[-1].data == "[DONE]"
    parts = []
    for event in events[:-1]:
        delta = json.loads(event.data)["choices"][0]["delta"]
        parts.append(delta.get("content") or "")
    return "".join(parts)


def run(chunks: list[str]) -> tuple[list[ParseResult], ParseSummary]:
    parser = PlanStreamParser(ROUND)
    results: list[ParseResult] = []
    for chunk in chunks:
        results += parser.feed(chunk)
    return results, parser.finish()


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.name)
def test_fixture_content_split_at_every_index_and_one_char_at_a_time(path: Path) -> None:
    text = content_of(path)
    whole = run([text])
    results, summary = whole
    # Random weights under a schema: three elements, none a valid plan for the game.
    elements = json.loads(text)
    assert len(results) == len(elements) == 3
    rejected = [r for r in results if isinstance(r, RejectedElement)]
    assert rejected == results
    assert [r.agent_id for r in rejected] == [e["agent_id"] for e in elements]
    assert [json.loads(r.raw) for r in rejected] == elements
    assert {r.cause for r in rejected} == {"validation_error"}
    assert summary.missing == tuple(ROUND) and summary.trailing_error is None
    for k in range(len(text) + 1):
        assert run([text[:k], text[k:]]) == whole, k
    assert run(list(text)) == whole


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.name)
def test_fixture_as_streamed_deltas(path: Path) -> None:
    decoder = SSEDecoder()
    deltas = []
    for event in decoder.feed(path.read_text(encoding="utf-8")):
        if event.data != "[DONE]":
            deltas.append(json.loads(event.data)["choices"][0]["delta"].get("content") or "")
    assert len(deltas) > 20  # really token by token
    assert run(deltas) == run([content_of(path)])


@pytest.mark.parametrize("path", SSE_FIXTURES, ids=lambda p: p.name)
def test_fixture_content_truncated_at_every_index_never_crashes(path: Path) -> None:
    # Like a max_tokens cut-off: finish() always yields a summary, and whatever was
    # delivered before the cut is exactly what the whole text delivers first.
    text = content_of(path)
    whole_results, _ = run([text])
    for k in range(len(text)):
        results, summary = run([text[:k]])
        assert results == whole_results[: len(results)]
        assert summary.trailing_error is not None or len(results) == 3
