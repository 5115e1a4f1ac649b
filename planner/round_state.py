"""What one planning round keeps while it runs: who still waits and why, the requests
it sent, and its counters. Shared by the dispatch, the request runner and delivery."""

from __future__ import annotations

from dataclasses import dataclass, field

from game.rules.snapshot import Snapshot
from planner.backends.base import Usage
from planner.errors import Cause
from planner.fallback import Tier
from planner.schema import PlanFormat


@dataclass
class Answer:
    """What one attempt's stream said besides text."""

    started_at: float
    finish_reason: str = ""
    usage: Usage | None = None
    chars: int = 0
    """Text received (what `auto` learns tokens per plan from when no usage comes)."""
    thinking_chars: int = 0
    """A reasoning model's thinking received (never parsed)."""

    @property
    def only_thought(self) -> bool:
        """The model thought and wrote no plan text (yet): its budget went on thinking."""
        return self.thinking_chars > 0 and self.chars == 0


@dataclass
class SentRequest:
    """One request of the round (its attempts share it)."""

    request_id: int
    tier: Tier
    snaps: dict[int, Snapshot]
    blocks: dict[int, str]
    sent_at: float
    first_token_at: float | None = None
    last_at: float = 0.0
    """The latest instant this request's stream reached (its own timeline)."""
    system: str = ""
    user: str = ""
    fmt: PlanFormat = "verbose"
    """The plan format this request asked for."""
    announced: bool = False
    """RequestSent emitted: only once an attempt really goes out (the breaker let it)."""
    not_before: float | None = None
    """Virtual time: when a client-side queue lets it leave."""
    answer: Answer | None = None
    """The latest attempt's answer (what the scheduler learns from)."""
    plans_seen: int = 0
    """Plan elements the answer carried, valid or not."""


@dataclass
class RoundState:
    pending: dict[int, Snapshot]
    """Agents without a plan yet."""
    last_plan_at: float
    causes: dict[int, tuple[Cause, str]] = field(default_factory=dict)
    """Why each waiting agent's LLM plan has not come (so far)."""
    cut_short: set[int] = field(default_factory=set)
    """Agents whose stream broke after some of its plans had landed."""
    re_requested: dict[int, Cause] = field(default_factory=dict)
    """Agents asked for a second time, with why the first answer failed them."""
    first_token_at: float | None = None
    first_plan_at: float | None = None
    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_adapted: int = 0
    """Hits found by situation and adapted to their agent (counted in cache_hits too)."""
    cache_rejected: int = 0
    """Situation hits that did not validate for their agent (counted in cache_misses too)."""
    cache_new_situations: int = 0
    """Lookups of a situation key the cache had never been asked for (PlanCache)."""
    cache_refreshed: int = 0
    """Agents asked afresh because they were still in the situation their last cached
    plan was for (PlannerCore.served_from_cache; counted in cache_misses, unless a
    teammate's new plan of the same situation serves it this round, a hit)."""
    tokens: dict[str, int] = field(
        default_factory=lambda: {"prompt": 0, "cached": 0, "completion": 0}
    )
    usage_reported: int = 0
    """Answers whose server said what they cost (the rest are unknown, not 0)."""
