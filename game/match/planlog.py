"""What the overlay, waterfall and inspector read: planner events folded into state.

Pure and main-thread only: the session feeds it every `PlanEvent` it drains, and the
UI reads it (attributes down, messages up). Times are milliseconds from round start.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from planner.errors import Cause
from planner.events import (
    AgentFellBack,
    FirstToken,
    PlanDelivered,
    PlanEvent,
    RequestSent,
    RoundCancelled,
    RoundDone,
    RoundStarted,
    RoundStats,
)
from planner.fallback import Tier
from planner.validate import DroppedStep

ROUNDS_KEPT = 6

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
    tier: Tier | None = None
    cause: Cause | None = None
    from_cache: bool = False
    plan_wait_ms: float | None = None
    prompt_block: str = ""
    raw: str = ""
    request_id: int | None = None
    steps: tuple[object, ...] = ()
    dropped: tuple[DroppedStep, ...] = ()
    repaired: tuple[DroppedStep, ...] = ()
    history: deque[TierChange] = field(default_factory=lambda: deque(maxlen=HISTORY_KEPT))


@dataclass
class AgentBar:
    """One bar of the waterfall: request to delivery for one agent."""

    agent_id: int
    requested_ms: float | None = None
    first_token_ms: float | None = None
    delivered_ms: float | None = None
    tier: Tier | None = None
    cause: Cause | None = None
    from_cache: bool = False


@dataclass
class RoundView:
    round_id: int
    squad: str
    mode: str
    stream: bool
    started_at: float
    bars: dict[int, AgentBar]
    system_chars: int = 0
    requests: dict[int, tuple[int, ...]] = field(default_factory=dict)
    first_token_ms: float | None = None
    stats: RoundStats | None = None
    cancelled: bool = False

    @property
    def done(self) -> bool:
        return self.stats is not None or self.cancelled


def percentile(samples: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): the smallest sample with at least q% of the
    samples at or below it; None when empty."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class PlanningLog:
    def __init__(self) -> None:
        self.agents: dict[int, AgentPlanState] = {}
        self.rounds: deque[RoundView] = deque(maxlen=ROUNDS_KEPT)
        self._by_id: dict[int, RoundView] = {}
        self.tier_counts: Counter[str] = Counter()
        self.cause_counts: Counter[str] = Counter()
        self.cache_hits = 0
        self.samples: dict[str, deque[float]] = {
            name: deque(maxlen=SAMPLES_KEPT)
            for name in ("ttft", "ttfp", "time_to_all", "plan_wait", "overhead")
        }
        self.last_stats: RoundStats | None = None

    def agent(self, agent_id: int, squad: str) -> AgentPlanState:
        state = self.agents.get(agent_id)
        if state is None:
            state = self.agents[agent_id] = AgentPlanState(agent_id, squad)
        return state

    def apply(self, event: PlanEvent) -> None:
        if isinstance(event, RoundStarted):
            self._started(event)
            return
        view = self._by_id.get(event.round_id)
        match event:
            case RequestSent() if view is not None:
                view.system_chars = event.system_chars
                view.requests[event.request_id] = event.agent_ids
                for agent_id in event.agent_ids:
                    bar = view.bars.setdefault(agent_id, AgentBar(agent_id))
                    if bar.requested_ms is None:
                        bar.requested_ms = (event.at - view.started_at) * 1000
            case FirstToken() if view is not None:
                rel = (event.at - view.started_at) * 1000
                if view.first_token_ms is None:
                    view.first_token_ms = rel
                for agent_id in view.requests.get(event.request_id, ()):
                    ft_bar = view.bars.get(agent_id)
                    if ft_bar is not None and ft_bar.first_token_ms is None:
                        ft_bar.first_token_ms = rel
            case PlanDelivered():
                self._delivered(event, view)
            case AgentFellBack():
                self.cause_counts[event.cause] += 1
            case RoundDone():
                if view is not None:
                    view.stats = event.stats
                self.last_stats = event.stats
                for name, value in (
                    ("ttft", event.stats.ttft_ms),
                    ("ttfp", event.stats.ttfp_ms),
                    ("time_to_all", event.stats.time_to_all_ms),
                ):
                    if value is not None:
                        self.samples[name].append(value)
            case RoundCancelled() if view is not None:
                view.cancelled = True
            case _:
                pass

    def _started(self, event: RoundStarted) -> None:
        view = RoundView(
            event.round_id,
            event.squad,
            event.mode,
            event.stream,
            event.at,
            {i: AgentBar(i) for i in event.agent_ids},
        )
        if len(self.rounds) == self.rounds.maxlen:
            self._by_id.pop(self.rounds[0].round_id, None)
        self.rounds.append(view)
        self._by_id[event.round_id] = view
        for agent_id in event.agent_ids:
            self.agent(agent_id, event.squad).waiting = True

    def _delivered(self, event: PlanDelivered, view: RoundView | None) -> None:
        outcome = event.outcome
        state = self.agent(outcome.agent_id, event.squad)
        state.waiting = False
        state.tier = outcome.tier
        state.cause = outcome.cause
        state.from_cache = outcome.from_cache
        state.plan_wait_ms = event.plan_wait_ms
        state.prompt_block = event.prompt_block
        state.raw = event.raw
        state.request_id = event.request_id
        state.steps = outcome.steps
        state.dropped = outcome.dropped
        state.repaired = outcome.repaired
        state.history.append(
            TierChange(
                event.round_id, outcome.tier, outcome.cause, outcome.from_cache, outcome.partial
            )
        )
        self.tier_counts[outcome.tier.value] += 1
        self.cache_hits += int(outcome.from_cache)
        self.samples["plan_wait"].append(event.plan_wait_ms)
        if event.overhead_ms is not None:
            self.samples["overhead"].append(event.overhead_ms)
        if view is not None:
            bar = view.bars.setdefault(outcome.agent_id, AgentBar(outcome.agent_id))
            bar.delivered_ms = event.plan_wait_ms
            bar.tier = outcome.tier
            bar.cause = outcome.cause
            bar.from_cache = outcome.from_cache

    def p(self, name: str, q: float) -> float | None:
        return percentile(self.samples[name], q)

    @property
    def plans(self) -> int:
        """Plans delivered so far, any tier."""
        return sum(self.tier_counts.values())

    @property
    def cache_hit_rate(self) -> float:
        return self.cache_hits / self.plans if self.plans else 0.0
