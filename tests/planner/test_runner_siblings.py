"""Requests in flight together are judged each on its own: a request that failed before
delivering anything is retried whole, even when a sibling request delivered plans while
it was failing (it used to look 'partly delivered', was not retried, and its agents were
re-requested with the failure as their cause)."""

from __future__ import annotations

from planner.backends.base import LLMRequest
from planner.core import PlanningRound
from planner.errors import BackendHTTPStatus
from planner.events import PlanDelivered, RoundDone
from planner.fallback import Tier
from planner.settings import PlannerSettings
from tests.planning_helpers import (
    ScriptedBackend,
    make_core,
    plan_json,
    planning_round,
    run_round,
)


def _plans(request: LLMRequest) -> str:
    return '{"plans":[' + ",".join(plan_json(i) for i in request.agent_ids) + "]}"


def test_a_failed_request_is_retried_though_its_sibling_delivered_meanwhile() -> None:
    whole = planning_round()
    first, second = whole.snapshots[:2]
    planning = PlanningRound(1, "red", (first, second), whole.grid)
    # The first request's plans land (in one turn) before the second's 500 is handled.
    backend = ScriptedBackend([_plans, BackendHTTPStatus("injected 500", 500), _plans])
    settings = PlannerSettings(mode="parallel", concurrency=2, budget_ms=60_000, cache=False)
    events = run_round(make_core(backend), settings, planning)

    delivered = {e.outcome.agent_id: e.outcome for e in events if isinstance(e, PlanDelivered)}
    assert [r.agent_ids for r in backend.requests] == [
        (first.me.id,),
        (second.me.id,),
        (second.me.id,),
    ]
    assert delivered[second.me.id].tier == Tier.simplified_llm
    assert delivered[second.me.id].cause is None  # retried at once, not re-requested
    (done,) = [e for e in events if isinstance(e, RoundDone)]
    assert done.stats.retries == 1
