"""What the overlay, waterfall and inspector read: planner events folded into state.

Pure and main-thread only: the session feeds it every `PlanEvent` it drains, and the
UI reads it (attributes down, messages up). Each round's timing per agent is the
planner's own record (`RoundTrace`, `AgentTrace`), folded here from the same events;
times are milliseconds from round start.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from planner.errors import Cause
from planner.events import (
    AgentFellBack,
    PlanDelivered,
    PlanEvent,
    ResponseEnded,
    RoundDone,
    RoundStarted,
    RoundStats,
    ThinkingReceived,
)
from planner.fallback import Tier
from planner.trace import AgentTrace as AgentTrace  # re-exported: the UI reads these
from planner.trace import RoundTrace as RoundTrace
from planner.validate import DroppedStep

ROUNDS_KEPT = 6
THINKING_KEPT = 4000
"""Characters of a request's thinking kept for the inspector (the latest ones)."""

HISTORY_KEPT = 12
SAMPLES_KEPT = 500


@dataclass(frozen=True)
class TierChange:
    round_id: int
    tier: Tier
    cause: Cause | None
    from_cache: bool
    partial: bool


@dataclass
class AgentPlanState:
    agent_id: int
    squad: str
    waiting: bool = False
    timing: AgentTrace | None = None
    """Its latest delivered plan's timing record (tier, cause, cache, plan_wait...)."""
    prompt_block: str = ""
    raw: str = ""
    thinking: str = ""
    """A reasoning model's thinking for its latest plan's request ('' when none)."""
    request_id: int | None = None
    steps: tuple[object, ...] = ()
    dropped: tuple[DroppedStep, ...] = ()
    repaired: tuple[DroppedStep, ...] = ()
    intent: str | None = None
    """The latest plan's intent, if it stated one."""
    history: deque[TierChange] = field(default_factory=lambda: deque(maxlen=HISTORY_KEPT))


@dataclass(frozen=True)
class RoundPoint:
    """One finished round's figures, for the per-match chart."""

    number: int
    squad: str
    ttfp_ms: float | None
    time_to_all_ms: float | None
    llm_share: float | None
    """Share of the round's plans that came from an LLM tier (None: no plan delivered)."""
    fallbacks: int


def percentile(samples: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): the smallest sample with at least q% of the
    samples at or below it; None when empty."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


KEY_REFUSED_STATUSES = frozenset({401, 403})
KEY_REFUSED = "the server refused the key"


def key_refused_line(status: int) -> str:
    """The one line said at once (stderr, status bar) when the server refuses the key."""
    return f"{KEY_REFUSED} (HTTP {status}): check OPENAI_API_KEY"


class PlanningLog:
    def __init__(self) -> None:
        self.agents: dict[int, AgentPlanState] = {}
        self.rounds: deque[RoundTrace] = deque(maxlen=ROUNDS_KEPT)
        """The latest rounds' timing, folded live from their events (the waterfall's)."""
        self._by_id: dict[int, RoundTrace] = {}
        self.tier_counts: Counter[str] = Counter()
        self.cause_counts: Counter[str] = Counter()
        """Per event: every fallback, re-requests included."""
        self.final_causes: Counter[str] = Counter()
        """Per agent and round: the cause its delivered plan ended with (None not counted)."""
        self.cache_only_rounds = 0
        """Rounds that sent no request (every plan from the cache or a rule tier): their
        ttfp is kept apart, not mixed into the request rounds' figures."""
        self._thinking: dict[int, str] = {}
        """Thinking text by request id (the rounds still kept)."""
        self.cache_hits = 0
        self.cache_misses = 0
        self.cache_adapted = 0
        """Hits found by situation and adapted to their agent (within cache_hits)."""
        self.cache_rejected = 0
        """Situation hits that failed validation for their agent (within cache_misses)."""
        self.cache_refreshed = 0
        """Agents still in their last cached plan's situation, asked afresh (a miss unless a
        teammate's new plan of it serves them that round)."""
        self.samples: dict[str, deque[float]] = {
            name: deque(maxlen=SAMPLES_KEPT)
            for name in (
                "ttft",
                "ttfp",
                "ttfp_cache_only",
                "time_to_all",
                "plan_wait",
                "overhead",
                "first_content",
                "act_wait",
            )
        }
        self.last_stats: RoundStats | None = None
        self.round_numbers: dict[int, int] = {}
        """Planner round id -> its number in this match (1, 2, ...): what the UI shows, so
        the status bar, waterfall and tier history count alike, from 1 after a restart."""
        self.series: deque[RoundPoint] = deque(maxlen=SAMPLES_KEPT)
        """Every finished round's figures, oldest first (the per-match chart)."""
        self.key_refused: int | None = None
        """The status (401/403) with which the server last refused the API key, if ever;
        cleared when a request succeeds again."""

    def round_number(self, round_id: int) -> int:
        """The round's number in this match (its planner id if it started before)."""
        return self.round_numbers.get(round_id, round_id)

    @property
    def latest_round(self) -> int:
        """The number of the latest round started in this match (0: none yet)."""
        return len(self.round_numbers)

    def round_trace(self, round_id: int) -> RoundTrace | None:
        """The timing record of a recent round (None once it has been forgotten)."""
        return self._by_id.get(round_id)

    def agent(self, agent_id: int, squad: str) -> AgentPlanState:
        state = self.agents.get(agent_id)
        if state is None:
            state = self.agents[agent_id] = AgentPlanState(agent_id, squad)
        return state

    def apply(self, event: PlanEvent) -> None:
        if isinstance(event, RoundStarted):
            self._started(event)
            return
        trace = self._by_id.get(event.round_id)
        if trace is not None:
            trace.apply(event)
        match event:
            case PlanDelivered():
                self._delivered(event, trace)
            case AgentFellBack():
                self.cause_counts[event.cause] += 1
            case ThinkingReceived():
                kept = self._thinking.get(event.request_id, "") + event.text
                self._thinking[event.request_id] = kept[-THINKING_KEPT:]
            case ResponseEnded():
                if event.error_status in KEY_REFUSED_STATUSES:
                    self.key_refused = event.error_status
                elif not event.error and event.finish_reason in ("stop", "length"):
                    self.key_refused = None
            case RoundDone():
                self.last_stats = event.stats
                self.cache_misses += event.stats.cache_misses
                self.cache_adapted += event.stats.cache_adapted
                self.cache_rejected += event.stats.cache_rejected
                self.cache_refreshed += event.stats.cache_refreshed
                sent = event.stats.requests > 0
                self.cache_only_rounds += int(not sent)
                for name, value in (
                    ("ttft", event.stats.ttft_ms),
                    ("ttfp" if sent else "ttfp_cache_only", event.stats.ttfp_ms),
                    ("time_to_all", event.stats.time_to_all_ms),
                ):
                    if value is not None:
                        self.samples[name].append(value)
                self._point(event, trace)
            case _:
                pass

    def _point(self, event: RoundDone, trace: RoundTrace | None) -> None:
        tiers = [b.tier for b in trace.bars.values() if b.tier is not None] if trace else []
        llm = sum(1 for t in tiers if t in (Tier.full_llm, Tier.simplified_llm))
        self.series.append(
            RoundPoint(
                self.round_number(event.round_id),
                event.squad,
                event.stats.ttfp_ms,
                event.stats.time_to_all_ms,
                llm / len(tiers) if tiers else None,
                sum(1 for b in trace.bars.values() if b.cause is not None) if trace else 0,
            )
        )

    def _started(self, event: RoundStarted) -> None:
        self.round_numbers.setdefault(event.round_id, len(self.round_numbers) + 1)
        trace = RoundTrace.started(event)
        if len(self.rounds) == self.rounds.maxlen:
            oldest = self._by_id.pop(self.rounds[0].round_id, None)
            for request_id in oldest.requests if oldest is not None else ():
                self._thinking.pop(request_id, None)
        self.rounds.append(trace)
        self._by_id[event.round_id] = trace
        for agent_id in event.agent_ids:
            self.agent(agent_id, event.squad).waiting = True

    def _delivered(self, event: PlanDelivered, trace: RoundTrace | None) -> None:
        outcome = event.outcome
        if trace is not None:
            timing = trace.bars[outcome.agent_id]
        else:  # a round no longer (or never) on screen: the agent still has its figures
            timing = AgentTrace(outcome.agent_id)
            timing.deliver(event)
        state = self.agent(outcome.agent_id, event.squad)
        state.waiting = False
        state.timing = timing
        state.prompt_block = event.prompt_block
        state.raw = event.raw
        state.thinking = (
            "" if event.request_id is None else self._thinking.get(event.request_id, "")
        )
        state.request_id = event.request_id
        state.steps = outcome.steps
        state.dropped = outcome.dropped
        state.repaired = outcome.repaired
        state.intent = outcome.intent
        state.history.append(
            TierChange(
                event.round_id, outcome.tier, outcome.cause, outcome.from_cache, outcome.partial
            )
        )
        self.tier_counts[outcome.tier.value] += 1
        if outcome.cause is not None:
            self.final_causes[outcome.cause] += 1
        self.cache_hits += int(outcome.from_cache)
        if timing.plan_wait_ms is not None:
            self.samples["plan_wait"].append(timing.plan_wait_ms)
        if timing.overhead_ms is not None:
            self.samples["overhead"].append(timing.overhead_ms)
        if timing.first_content_ms is not None and timing.requested_ms is not None:
            self.samples["first_content"].append(timing.first_content_ms - timing.requested_ms)

    def honest_figures(self, stats: Iterable[RoundStats]) -> dict[str, object]:
        """The report's figures that must not mislead: causes per agent and per event, both
        named; ttfp over rounds that sent a request, cache-only rounds apart; tokens None
        ("unknown") when no answer reported usage, not 0."""
        stats = list(stats)
        requests = sum(s.requests for s in stats)
        reported = sum(s.usage_reported for s in stats)

        def tokens(total: int) -> int | None:
            return total if reported or not requests else None

        def pct(name: str, q: float) -> float | None:
            value = self.p(name, q)
            return None if value is None else round(value, 3)

        return {
            "fallback_causes_by_agent": dict(sorted(self.final_causes.items())),
            "fallback_events": dict(sorted(self.cause_counts.items())),
            "prompt_tokens": tokens(sum(s.prompt_tokens for s in stats)),
            "cached_tokens": tokens(sum(s.cached_tokens for s in stats)),
            "completion_tokens": tokens(sum(s.completion_tokens for s in stats)),
            "requests_without_usage": max(0, requests - reported),
            "ttfp_request_rounds": {
                "rounds": len(stats) - self.cache_only_rounds,
                "p50": pct("ttfp", 50),
                "p95": pct("ttfp", 95),
            },
            "ttfp_cache_only_rounds": {
                "rounds": self.cache_only_rounds,
                "p50": pct("ttfp_cache_only", 50),
            },
            "time_to_first_content_ms_p50": pct("first_content", 50),
        }

    def acted(self, wait_ms: float) -> None:
        """An agent started acting on an LLM plan `wait_ms` after its turn started (the
        session knows turns and ticks; the planner's events do not)."""
        self.samples["act_wait"].append(wait_ms)

    def p(self, name: str, q: float) -> float | None:
        return percentile(self.samples[name], q)

    @property
    def plans(self) -> int:
        """Plans delivered so far, any tier."""
        return sum(self.tier_counts.values())

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.plans if self.plans else 0.0
