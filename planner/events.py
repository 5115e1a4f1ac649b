"""Immutable events the planner thread sends to the game (Textual style: messages up).

The world drains them once per frame; nothing in them is shared mutable state.
Every `at` is on the planner's clock (perf_counter seconds, or virtual seconds in a
deterministic headless match).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from planner.errors import Cause
from planner.fallback import AgentOutcome, Tier

Mode = Literal["auto", "batched", "sequential", "parallel"]
MODES: tuple[Mode, ...] = ("auto", "batched", "sequential", "parallel")


@dataclass(frozen=True)
class RoundStarted:
    round_id: int
    squad: str
    agent_ids: tuple[int, ...]
    mode: Mode
    stream: bool
    start_tier: Tier
    at: float


@dataclass(frozen=True)
class ScheduledRequest:
    agent_ids: tuple[int, ...]
    """In the order the prompt lists them (most urgent first)."""
    max_tokens: int
    predicted_ms: float


@dataclass(frozen=True)
class RoundScheduled:
    """How `auto` shaped a dispatch, and why: the requests, who is in each, in what
    order, their output budgets, and who was over budget (given a rule plan at once)."""

    round_id: int
    squad: str
    tier: Tier
    requests: tuple[ScheduledRequest, ...]
    over_budget: tuple[int, ...]
    reason: str
    predicted_ms: float
    budget_left_ms: float
    server: str
    """What the scheduler believed of the server: width, rates, tokens per plan."""
    at: float


@dataclass(frozen=True)
class RequestSent:
    """One request left for the server (a batch, or one agent in sequential/parallel)."""

    round_id: int
    squad: str
    request_id: int
    agent_ids: tuple[int, ...]
    tier: Tier
    system_chars: int
    user_chars: int
    at: float
    system: str = ""
    """The static prefix sent (shared, not copied: the same string every round)."""
    prompt: str = ""
    """The per-round part sent."""


@dataclass(frozen=True)
class ChunkReceived:
    """One text delta as the backend handed it over (the raw stream, for the inspector
    and for match records)."""

    round_id: int
    squad: str
    request_id: int
    text: str
    at: float
    emitted_at: float | None


@dataclass(frozen=True)
class ThinkingReceived:
    """A reasoning model's thinking text as it arrived: for the inspector and the
    waterfall's thinking segment; it never reaches the plan parser."""

    round_id: int
    squad: str
    request_id: int
    text: str
    at: float


@dataclass(frozen=True)
class ResponseEnded:
    """A request's answer is over: how it ended, and what the server said it cost."""

    round_id: int
    squad: str
    request_id: int
    finish_reason: str
    """stop | length | cancelled | error | late (cut by the deadline)"""
    error: str
    """'' unless the request failed: the error's message."""
    error_cause: str
    """'' or the failure's cause (timeout, connect, http_status, oversize...)."""
    error_status: int
    """HTTP status of a failed request (0 when none)."""
    retry_after: float | None
    prompt_tokens: int | None
    """None (and the two below): the server did not say (unknown, not 0)."""
    cached_tokens: int | None
    completion_tokens: int | None
    at: float
    started_at: float
    """When this attempt was sent (a retry's attempt starts after its backoff)."""


@dataclass(frozen=True)
class FirstToken:
    round_id: int
    squad: str
    request_id: int
    ttft_ms: float
    at: float


@dataclass(frozen=True)
class PlanDelivered:
    round_id: int
    squad: str
    outcome: AgentOutcome
    plan_wait_ms: float
    overhead_ms: float | None
    """Delivery minus the instant the backend emitted this plan's closing brace (sim only)."""
    request_id: int | None
    """None for cache hits and rule-tier plans."""
    prompt_block: str
    """This agent's part of the prompt ('' when no request was made for it)."""
    raw: str
    """The raw streamed text of this agent's plan element ('' when none)."""
    at: float


@dataclass(frozen=True)
class AgentFellBack:
    round_id: int
    squad: str
    agent_id: int
    from_tier: Tier
    to_tier: Tier
    cause: Cause
    detail: str
    at: float


@dataclass(frozen=True)
class RoundStats:
    agents: int
    """Agents the round planned (streaming's gain grows with this)."""
    ttft_ms: float | None
    ttfp_ms: float | None
    time_to_all_ms: float
    requests: int
    retries: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cache_hits: int
    cache_misses: int
    breaker: str
    cache_adapted: int = 0
    """Hits found by situation and adapted to the agent (within cache_hits)."""
    cache_rejected: int = 0
    """Situation hits that failed validation for the agent (within cache_misses)."""
    cache_new_situations: int = 0
    """Lookups of a situation never looked up before: on an empty cache each misses."""
    cache_refreshed: int = 0
    """Agents still in the situation of the cached plan they were last given, asked
    afresh instead (a miss, unless a teammate's new plan of that situation serves it this
    round)."""
    usage_reported: int = 0
    """Answers whose server reported usage: tokens of the others are unknown, not 0."""


@dataclass(frozen=True)
class RoundDone:
    round_id: int
    squad: str
    stats: RoundStats
    at: float


@dataclass(frozen=True)
class RoundCancelled:
    """Superseded by a newer round for the same squad (or shut down)."""

    round_id: int
    squad: str
    at: float


PlanEvent = (
    RoundStarted
    | RoundScheduled
    | RequestSent
    | ChunkReceived
    | ThinkingReceived
    | ResponseEnded
    | FirstToken
    | PlanDelivered
    | AgentFellBack
    | RoundDone
    | RoundCancelled
)
