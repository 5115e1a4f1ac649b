"""Fuzzing the dispatch: whatever the backend answers (arbitrary text, valid plans
damaged, errors), every agent of the round gets exactly one plan, and the round ends."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.errors import BackendConnectError, BackendHTTPStatus, PlannerError
from planner.events import PlanDelivered, RoundDone
from planner.settings import PlannerSettings
from tests.planning_helpers import ScriptedBackend, make_core, planning_round, run_round

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PLANNING = planning_round()
AGENTS = sorted(s.me.id for s in PLANNING.snapshots)


def valid_batch(ids: list[int]) -> str:
    plans = [{"agent_id": a, "steps": [{"act": "Scan"}, {"act": "Wait"}]} for a in ids]
    return json.dumps({"plans": plans})


@st.composite
def damaged_batch(draw: st.DrawFn) -> str:
    ids = draw(st.lists(st.sampled_from([*AGENTS, 0, 99, -1]), max_size=8))
    text = valid_batch(ids)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from('{}[]",:x1 \n'))
        text = draw(st.sampled_from([text[:at] + char + text[at:], text[:at] + text[at + 1 :]]))
    return text[: draw(st.integers(0, len(text)))] if draw(st.booleans()) else text


REPLY = st.one_of(
    st.text(max_size=300),
    damaged_batch(),
    st.just(valid_batch(AGENTS)),
    st.sampled_from(
        [
            BackendHTTPStatus("HTTP 500", 500),
            BackendHTTPStatus("HTTP 429", 429, retry_after=0.0),
            BackendConnectError("dropped"),
        ]
    ),
)


@FUZZ
@given(
    st.lists(REPLY, min_size=1, max_size=4),
    st.integers(1, 64),
    st.sampled_from(["batched", "sequential", "parallel"]),
    st.booleans(),
)
def test_any_answer_gives_every_agent_exactly_one_plan(
    replies: list[str | PlannerError], chunk: int, mode: str, stream: bool
) -> None:
    backend = ScriptedBackend(list(replies), chunk=chunk)
    settings_ = PlannerSettings(mode=mode, stream=stream, cache=False)  # type: ignore[arg-type]
    events = run_round(make_core(backend), settings_, PLANNING)
    delivered = sorted(e.outcome.agent_id for e in events if isinstance(e, PlanDelivered))
    assert delivered == AGENTS
    assert all(e.outcome.steps for e in events if isinstance(e, PlanDelivered))
    assert sum(isinstance(e, RoundDone) for e in events) == 1
    assert isinstance(events[-1], RoundDone)
