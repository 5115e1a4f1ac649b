"""A reasoning model's thinking in the UI: its own segment on the waterfall bar (from
thinking's start to the first plan text) and its own block in the inspector."""

from __future__ import annotations

from game.match.planlog import AgentTrace, PlanningLog
from game.rules.steps import Scan
from game.ui.inspector import inspector_lines
from game.ui.timeline import thinking_span
from planner.events import (
    ChunkReceived,
    PlanDelivered,
    RequestSent,
    RoundStarted,
    ThinkingReceived,
)
from planner.fallback import AgentOutcome, Tier


def test_thinking_segment_runs_from_thinking_to_first_text() -> None:
    bar = AgentTrace(3, requested_ms=0.0, thinking_ms=5.0, first_content_ms=80.0)
    assert thinking_span(bar, 120.0) == (5.0, 80.0)
    still = AgentTrace(3, requested_ms=0.0, thinking_ms=5.0)
    assert thinking_span(still, 60.0) == (5.0, 60.0)  # live: thinking so far
    assert thinking_span(AgentTrace(3, requested_ms=0.0), 60.0) is None


def test_inspector_shows_thinking_in_its_own_block_not_in_the_raw_text() -> None:
    log = PlanningLog()
    log.apply(RoundStarted(1, "red", (3,), "batched", True, Tier.simplified_llm, 0.0))
    log.apply(RequestSent(1, "red", 7, (3,), Tier.simplified_llm, 10, 10, 0.0))
    log.apply(ThinkingReceived(1, "red", 7, "scan first, then wait", 0.005))
    log.apply(ChunkReceived(1, "red", 7, '{"plans":[[3,[["Scan"]]]]}', 0.08, None))
    outcome = AgentOutcome(3, (Scan(),), Tier.simplified_llm)
    raw = '[3,[["Scan"]]]'
    log.apply(PlanDelivered(1, "red", outcome, 90.0, 0.1, 7, "block", raw, 0.09))
    lines = [line.text for line in inspector_lines(3, log.agents[3], None, log, "red")]
    head = lines.index("Thinking (21 chars, 75 ms to first text)")
    assert lines[head + 1] == "scan first, then wait"
    raw_head = next(i for i, t in enumerate(lines) if t.startswith("Raw streamed text"))
    assert lines[raw_head + 1] == raw and head < raw_head
