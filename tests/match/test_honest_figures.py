"""The report's figures that must not mislead, folded by the planning log from events:
causes per agent and per event, ttfp over rounds that sent a request (cache-only rounds
apart), and tokens unknown (None), not 0, when no answer said what it cost."""

from __future__ import annotations

from game.match.planlog import PlanningLog
from game.rules.steps import Scan
from planner.events import (
    AgentFellBack,
    PlanDelivered,
    RequestSent,
    RoundDone,
    RoundStarted,
    RoundStats,
    ThinkingReceived,
)
from planner.fallback import AgentOutcome, Tier


def stats(requests: int, ttfp: float, usage_reported: int = 0, completion: int = 0) -> RoundStats:
    return RoundStats(
        agents=2,
        ttft_ms=None,
        ttfp_ms=ttfp,
        time_to_all_ms=ttfp,
        requests=requests,
        retries=0,
        prompt_tokens=0,
        cached_tokens=0,
        completion_tokens=completion,
        cache_hits=0,
        cache_misses=0,
        breaker="closed",
        usage_reported=usage_reported,
    )


def delivered(round_id: int, agent_id: int, tier: Tier, cause: str | None) -> PlanDelivered:
    outcome = AgentOutcome(agent_id, (Scan(),), tier, cause)  # type: ignore[arg-type]
    return PlanDelivered(round_id, "red", outcome, 10.0, None, 1, "", "", 0.01)


def a_match(usage_reported: int) -> tuple[PlanningLog, list[RoundStats]]:
    log = PlanningLog()
    sent = stats(2, 40.0, usage_reported, 30)
    cached = stats(0, 0.4)
    # round 1: a request; agent 3 re-requested (parse_error) then fell to the heuristic
    log.apply(RoundStarted(1, "red", (3, 5), "batched", True, Tier.simplified_llm, 0.0))
    log.apply(RequestSent(1, "red", 1, (3, 5), Tier.simplified_llm, 10, 10, 0.0))
    log.apply(ThinkingReceived(1, "red", 1, "hmm", 0.001))
    for to in (Tier.simplified_llm, Tier.heuristic):
        log.apply(AgentFellBack(1, "red", 3, Tier.simplified_llm, to, "parse_error", "", 0.0))
    log.apply(delivered(1, 3, Tier.heuristic, "parse_error"))
    log.apply(delivered(1, 5, Tier.simplified_llm, None))
    log.apply(RoundDone(1, "red", sent, 0.05))
    # round 2: every plan from the cache, no request
    log.apply(RoundStarted(2, "red", (3, 5), "batched", True, Tier.simplified_llm, 1.0))
    log.apply(RoundDone(2, "red", cached, 1.0))
    return log, [sent, cached]


def test_causes_per_agent_and_per_event_are_both_named() -> None:
    log, rounds = a_match(usage_reported=2)
    figures = log.honest_figures(rounds)
    assert figures["fallback_causes_by_agent"] == {"parse_error": 1}
    assert figures["fallback_events"] == {"parse_error": 2}
    assert "fallback_causes" not in figures


def test_ttfp_counts_request_rounds_and_keeps_cache_only_rounds_apart() -> None:
    log, rounds = a_match(usage_reported=2)
    figures = log.honest_figures(rounds)
    assert figures["ttfp_request_rounds"] == {"rounds": 1, "p50": 40.0, "p95": 40.0}
    assert figures["ttfp_cache_only_rounds"] == {"rounds": 1, "p50": 0.4}


def test_tokens_are_unknown_not_zero_when_no_answer_reported_usage() -> None:
    log, rounds = a_match(usage_reported=0)
    figures = log.honest_figures(rounds)
    assert figures["completion_tokens"] is None and figures["prompt_tokens"] is None
    assert figures["requests_without_usage"] == 2
    log, rounds = a_match(usage_reported=2)
    assert log.honest_figures(rounds)["completion_tokens"] == 30


def test_the_thinking_of_a_plans_request_is_kept_for_the_inspector() -> None:
    log, _ = a_match(usage_reported=0)
    assert log.agents[5].thinking == "hmm"
