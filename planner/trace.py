"""The per-round timing record, folded from planner events: one `RoundTrace` per round
with an `AgentTrace` per agent. The game's planning log folds it live for the waterfall,
badges and inspector, and `trace_json` exports it as a Chrome trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from planner.errors import Cause
from planner.events import (
    ChunkReceived,
    FirstToken,
    Mode,
    PlanDelivered,
    PlanEvent,
    RequestSent,
    RoundCancelled,
    RoundDone,
    RoundScheduled,
    RoundStarted,
    RoundStats,
    ThinkingReceived,
)
from planner.fallback import Tier

# --------------------------------------------------------------------------- traces


@dataclass
class AgentTrace:
    """One agent's timing in one round: the one record behind its waterfall bar, its badge
    and inspector figures, and its thread in the Chrome trace.

    Milliseconds from the round's start; None = did not happen (yet). Filled by
    `RoundTrace.apply` from the round's events; nothing changes it after the delivery.
    """

    agent_id: int
    requested_ms: float | None = None
    """The first request that asked for this agent left (a re-request keeps the first)."""
    first_token_ms: float | None = None
    """The first token (thinking or text) of a request that asked for this agent arrived."""
    thinking_ms: float | None = None
    """A reasoning model began thinking for this agent's request (None: it did not think)."""
    first_content_ms: float | None = None
    """The first plan text (not thinking) of its request arrived: apart from ttft, which a
    thinking model reaches long before it writes a plan."""
    plan_wait_ms: float | None = None
    """Its plan was delivered, any tier (round start -> plan)."""
    overhead_ms: float | None = None
    """Delivery minus the backend's emission of the plan's closing brace (sim only)."""
    tier: Tier | None = None
    cause: Cause | None = None
    from_cache: bool = False
    predicted_ms: float | None = None
    """auto: when the scheduler expected this agent's request to end (ms from the start)."""
    schedule: str | None = None
    """auto: this agent's place in the round's shape, and why the round has that shape."""

    def deliver(self, event: PlanDelivered) -> None:
        outcome = event.outcome
        self.plan_wait_ms = event.plan_wait_ms
        self.overhead_ms = event.overhead_ms
        self.tier = outcome.tier
        self.cause = outcome.cause
        self.from_cache = outcome.from_cache


@dataclass
class RoundTrace:
    """One planning round's timing, folded from its events (`started`, then `apply`).

    The planner folds each round's events into one (sent on `RoundDone` for the Chrome
    trace); the game's PlanningLog folds the events it drains into its own, live, for the
    waterfall and inspector. The same events give the same record on either side.
    """

    round_id: int
    squad: str
    mode: Mode
    stream: bool
    start: float
    """When the round started (RoundStarted.at), in planner clock seconds."""
    bars: dict[int, AgentTrace] = field(default_factory=dict)
    """One per agent, by id: the waterfall's bars, the Chrome trace's agent threads."""
    requests: dict[int, tuple[int, ...]] = field(default_factory=dict)
    """Request id -> the agents it asked for."""
    system_chars: int = 0
    """Size of the static prefix the round's requests sent."""
    first_token_ms: float | None = None
    stats: RoundStats | None = None
    cancelled: bool = False
    shape: str | None = None
    """auto: the first decision's short form ("16 req, 2 over budget")."""

    @classmethod
    def started(cls, event: RoundStarted) -> RoundTrace:
        return cls(
            event.round_id,
            event.squad,
            event.mode,
            event.stream,
            event.at,
            {i: AgentTrace(i) for i in event.agent_ids},
        )

    @property
    def done(self) -> bool:
        return self.stats is not None or self.cancelled

    def ms(self, at: float) -> float:
        """An instant on the planner clock as milliseconds from this round's start."""
        return (at - self.start) * 1000

    def agent(self, agent_id: int) -> AgentTrace:
        """The agent's record, created on first use."""
        rec = self.bars.get(agent_id)
        if rec is None:
            rec = self.bars[agent_id] = AgentTrace(agent_id)
        return rec

    def _scheduled(self, event: RoundScheduled) -> None:
        k = len(event.requests)
        if self.shape is None:
            over = f", {len(event.over_budget)} over" if event.over_budget else ""
            self.shape = f"{k} req{over}"
        start = self.ms(event.at)
        for number, request in enumerate(event.requests, start=1):
            for position, agent_id in enumerate(request.agent_ids, start=1):
                rec = self.agent(agent_id)
                rec.predicted_ms = start + request.predicted_ms
                rec.schedule = (
                    f"request {number} of {k}, plan {position} of {len(request.agent_ids)},"
                    f" max {request.max_tokens} tokens, predicted {request.predicted_ms:.0f} ms"
                    f" · {event.reason}"
                )
        for agent_id in event.over_budget:
            self.agent(agent_id).schedule = f"over budget: {event.reason}"

    def apply(self, event: PlanEvent) -> None:
        """Fold one of this round's events in (others are ignored)."""
        if event.round_id != self.round_id:
            return
        match event:
            case RequestSent():
                self.system_chars = event.system_chars
                self.requests[event.request_id] = event.agent_ids
                for agent_id in event.agent_ids:
                    asked = self.agent(agent_id)
                    if asked.requested_ms is None:
                        asked.requested_ms = self.ms(event.at)
            case FirstToken():
                at = self.ms(event.at)
                if self.first_token_ms is None:
                    self.first_token_ms = at
                for agent_id in self.requests.get(event.request_id, ()):
                    heard = self.agent(agent_id)
                    if heard.first_token_ms is None:
                        heard.first_token_ms = at
            case ThinkingReceived():
                at = self.ms(event.at)
                for agent_id in self.requests.get(event.request_id, ()):
                    thinker = self.agent(agent_id)
                    if thinker.thinking_ms is None:
                        thinker.thinking_ms = at
            case ChunkReceived():
                at = self.ms(event.at)
                for agent_id in self.requests.get(event.request_id, ()):
                    reader = self.agent(agent_id)
                    if reader.first_content_ms is None:
                        reader.first_content_ms = at
            case PlanDelivered():
                self.agent(event.outcome.agent_id).deliver(event)
            case RoundScheduled():
                self._scheduled(event)
            case RoundDone():
                self.stats = event.stats
            case RoundCancelled():
                self.cancelled = True
            case _:
                pass

    def end_ms(self, now_ms: float | None = None) -> float:
        """How far the round reaches: its last plan or its end (time_to_all); while it is
        live, `now_ms` too."""
        ends = [b.plan_wait_ms for b in self.bars.values() if b.plan_wait_ms is not None]
        if self.stats is not None:
            ends.append(self.stats.time_to_all_ms)
        if not self.done and now_ms is not None:
            ends.append(now_ms)
        return max(ends, default=0.0)


def _us(ms: float) -> float:
    return round(ms * 1000, 3)


def to_chrome_trace(rounds: Iterable[RoundTrace]) -> list[dict[str, Any]]:
    """Chrome trace events (JSON array format; opens in Perfetto and chrome://tracing).

    One process per squad, thread 0 for the rounds, one thread per agent. Rounds and
    each agent's request-to-delivery are "X" (complete) events (cache hits are marked in
    name and args); first tokens, and agents left without a plan, are "i" (instant)
    events. ts/dur in microseconds from the first round.
    """
    rounds = list(rounds)
    if not rounds:
        return []
    origin = min(r.start for r in rounds)
    pids: dict[str, int] = {}
    named: set[tuple[int, int]] = set()
    events: list[dict[str, Any]] = []

    def meta(pid: int, tid: int, kind: str, name: str) -> None:
        events.append({"ph": "M", "pid": pid, "tid": tid, "name": kind, "args": {"name": name}})

    for r in rounds:
        if r.squad not in pids:
            pids[r.squad] = len(pids) + 1
            meta(pids[r.squad], 0, "process_name", f"squad {r.squad}")
            meta(pids[r.squad], 0, "thread_name", "rounds")
        pid = pids[r.squad]
        offset_ms = (r.start - origin) * 1000
        mode = f"{r.mode} {'streaming' if r.stream else 'non-streaming'}"
        end = r.end_ms()
        events.append(
            {
                "name": f"round {r.round_id} ({mode})",
                "cat": "round",
                "ph": "X",
                "pid": pid,
                "tid": 0,
                "ts": _us(offset_ms),
                "dur": _us(end),
                "args": {"round": r.round_id, "mode": mode, "agents": sorted(r.bars)},
            }
        )
        for a in sorted(r.bars.values(), key=lambda a: a.agent_id):
            tid = a.agent_id
            if (pid, tid) not in named:
                named.add((pid, tid))
                meta(pid, tid, "thread_name", f"agent {tid}")
            tier = None if a.tier is None else a.tier.value
            args = {"round": r.round_id, "tier": tier, "cause": a.cause, "from_cache": a.from_cache}
            begin = a.requested_ms if a.requested_ms is not None else 0.0
            if a.plan_wait_ms is not None:
                events.append(
                    {
                        "name": f"agent {tid}: {tier or '?'}"
                        + (" (cache)" if a.from_cache else ""),
                        "cat": "plan",
                        "ph": "X",
                        "pid": pid,
                        "tid": tid,
                        "ts": _us(offset_ms + begin),
                        "dur": _us(a.plan_wait_ms - begin),
                        "args": args,
                    }
                )
            if a.thinking_ms is not None:
                think_end = a.first_content_ms if a.first_content_ms is not None else end
                events.append(
                    {
                        "name": "thinking",
                        "cat": "thinking",
                        "ph": "X",
                        "pid": pid,
                        "tid": tid,
                        "ts": _us(offset_ms + a.thinking_ms),
                        "dur": _us(max(0.0, think_end - a.thinking_ms)),
                        "args": {"round": r.round_id},
                    }
                )
            if a.first_token_ms is not None:
                events.append(
                    {
                        "name": "first token",
                        "cat": "token",
                        "ph": "i",
                        "s": "t",
                        "pid": pid,
                        "tid": tid,
                        "ts": _us(offset_ms + a.first_token_ms),
                        "args": {"round": r.round_id},
                    }
                )
            if a.plan_wait_ms is None:
                events.append(
                    {
                        "name": "no plan",
                        "cat": "plan",
                        "ph": "i",
                        "s": "t",
                        "pid": pid,
                        "tid": tid,
                        "ts": _us(offset_ms + end),
                        "args": args,
                    }
                )
    return events


def trace_json(rounds: Iterable[RoundTrace]) -> str:
    """The trace as a JSON document (object format, displayTimeUnit ms)."""
    return json.dumps({"traceEvents": to_chrome_trace(rounds), "displayTimeUnit": "ms"})
