"""Delivery: a parsed plan is validated and handed to the world the moment it closes;
an agent that cannot get one gets its rule plan, with the cause that dropped it.

`PlanDelivered` and `AgentFellBack` leave from here only: every plan of a round, from
the cache, the LLM or the rules, passes through `Delivery.deliver`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from game.rules.grid import Grid
from game.rules.snapshot import Snapshot
from planner.adapt import adapted_plan
from planner.cache import anchor_of, cache_key, situation_key
from planner.core import CachedPlan, PlannerCore, PlanningRound
from planner.events import AgentFellBack, PlanDelivered, PlanEvent
from planner.fallback import TIER_TOOLS, AgentOutcome, Tier, heuristic_plan
from planner.prompts import build_batch_prompt
from planner.round_state import RoundState, SentRequest
from planner.schema import PlanFormat
from planner.settings import PlannerSettings
from planner.stream import ParsedPlan, RejectedElement
from planner.timeline import RoundTimeline
from planner.validate import validate_plan


def plan_format(core: PlannerCore, settings: PlannerSettings) -> PlanFormat:
    """The plan format asked for now (`auto`: the backend's, which a server whose
    profile is found on its first request may change)."""
    return settings.plan_format_for(core.backend.capabilities)


def cache_keys(
    core: PlannerCore,
    settings: PlannerSettings,
    snap: Snapshot,
    tier: Tier,
    block: str | None = None,
    fmt: PlanFormat | None = None,
    grid: Grid | None = None,
) -> tuple[str, str | None]:
    """The exact and situation keys; `block` is the agent's prompt line when the caller
    already built it (an agent's line is the same alone or in a batch); `fmt` the plan
    format asked for (default: the one asked for now)."""
    return plan_keys(
        core.backend.model, settings, snap, tier, block, fmt or plan_format(core, settings), grid
    )


def plan_keys(
    model: str,
    settings: PlannerSettings,
    snap: Snapshot,
    tier: Tier,
    block: str | None,
    fmt: PlanFormat,
    grid: Grid | None = None,
) -> tuple[str, str | None]:
    """`cache_keys` for a named model and plan format (a recorded match's, for one)."""
    if block is None:
        block = build_batch_prompt((snap,), tier, grid=grid).agent_blocks[snap.me.id]
    # The agent's line holds no map name: the scenario is part of what the answer depends on.
    options = {"scenario": snap.scenario, "size": [snap.width, snap.height]}
    key = cache_key(model, tier.value, options, block, fmt=fmt)
    similar = (
        # no scenario: the same situation on another map is the same situation
        situation_key(model, tier.value, {}, snap, fmt=fmt, buckets=settings.situation_buckets)
        if settings.similarity
        else None
    )
    return key, similar


class Delivery:
    def __init__(
        self,
        core: PlannerCore,
        settings: PlannerSettings,
        planning: PlanningRound,
        emit: Callable[[PlanEvent], None],
        time: RoundTimeline,
        state: RoundState,
    ) -> None:
        self.core = core
        self.settings = settings
        self.round = planning
        self.emit = emit
        self.time = time
        self.state = state
        self.missed: dict[int, str] = {}
        """Agents whose cache lookup missed this round, by situation key: when another
        agent's LLM plan of the same situation lands, they are served from it."""

    def on_result(
        self,
        result: ParsedPlan | RejectedElement,
        req: SentRequest,
        emitted_at: float | None,
        at: float,
    ) -> None:
        """One element of an answer: a plan to validate and deliver, or a rejection."""
        state = self.state
        req.plans_seen += 1
        if isinstance(result, RejectedElement):
            agent_id = result.agent_id
            if agent_id is not None and agent_id in req.snaps and agent_id in state.pending:
                state.causes.setdefault(agent_id, (result.cause, result.error))
            return
        agent_id = result.plan.agent_id
        snap = req.snaps.get(agent_id)
        if snap is None or agent_id not in state.pending:
            return
        checked = validate_plan(result.plan, snap, self.round.grid, TIER_TOOLS[req.tier])
        if not checked.valid:
            reasons = "; ".join(d.reason for d in checked.dropped) or "no legal step"
            state.causes[agent_id] = ("validation_error", reasons)
            return
        start_tier = self.settings.start_tier
        outcome = AgentOutcome(
            agent_id,
            checked.steps,
            req.tier,
            cause=state.re_requested.get(agent_id),
            partial=result.partial,
            dropped=checked.dropped,
            repaired=checked.repaired,
            intent=result.plan.intent if self.settings.intent else None,
        )
        self.deliver(outcome, req, result.raw, emitted_at, at)
        if self.settings.cache and not result.partial:
            # Stored after delivery: the world should not wait for the cache.
            block = req.blocks.get(agent_id) if req.tier == start_tier else None
            # each agent under its own keys, whether it was asked alone or in a batch
            key, similar = cache_keys(
                self.core, self.settings, snap, start_tier, block, req.fmt, self.round.grid
            )
            plan = CachedPlan(checked.steps, req.tier, anchor_of(snap), outcome.intent)
            self.core.cache.put(key, plan, similar)
            if similar is not None:
                self._share(plan, similar, at)

    def _share(self, plan: CachedPlan, similar: str, at: float) -> None:
        """Batch-aware hits: every agent of this round still waiting whose lookup missed on
        the same situation gets this plan adapted to it, if it validates there (its
        request, if not sent yet, then leaves it out). Its miss becomes an adapted hit."""
        state = self.state
        for agent_id, situation in list(self.missed.items()):
            snap = state.pending.get(agent_id)
            if situation != similar or snap is None:
                continue
            adapted = adapted_plan(plan, snap, self.round.grid)
            if adapted is None:
                continue
            del self.missed[agent_id]
            self.core.served_from_cache[agent_id] = similar
            telemetry = self.core.telemetry
            telemetry.incr("cache_misses", -1)
            telemetry.incr("cache_hits")
            state.cache_misses -= 1
            state.cache_hits += 1
            state.cache_adapted += 1
            intent = adapted.intent if self.settings.intent else None
            outcome = AgentOutcome(
                agent_id, adapted.steps, adapted.tier, from_cache=True, intent=intent
            )
            self.deliver(outcome, request=None, raw="", emitted_at=None, at=at)

    def deliver(
        self,
        outcome: AgentOutcome,
        request: SentRequest | None,
        raw: str,
        emitted_at: float | None,
        at: float,
    ) -> None:
        state = self.state
        agent_id = outcome.agent_id
        if state.pending.pop(agent_id, None) is None:
            return
        if not outcome.from_cache:
            self.core.served_from_cache.pop(agent_id, None)
        at = self.time.delivered_at(at)
        plan_wait = self.time.ms(at)
        overhead = self.time.overhead_ms(at, emitted_at)
        if overhead is not None:
            self.core.telemetry.record("overhead", overhead)
        self.core.telemetry.record("plan_wait", plan_wait)
        # The earliest, not the first handled: in virtual time requests in flight together
        # are handled in turn, not in the order of their stamps.
        if state.first_plan_at is None or at < state.first_plan_at:
            state.first_plan_at = at
        state.last_plan_at = max(state.last_plan_at, at)
        self.emit(
            PlanDelivered(
                self.round.round_id,
                self.round.squad,
                outcome,
                plan_wait,
                overhead,
                None if request is None else request.request_id,
                "" if request is None else request.blocks.get(agent_id, ""),
                raw,
                at,
            )
        )

    def fall_back_rest(self) -> None:
        """The round is over: every agent still waiting gets its rule plan."""
        if self.state.pending:
            self.fall_back(tuple(self.state.pending), self.time.fallback_at())

    def fall_back(self, agent_ids: Sequence[int], at: float) -> None:
        """A rule plan for each of `agent_ids` now, with the cause that dropped it."""
        expired = self.time.past_deadline(at)
        state = self.state
        for agent_id in agent_ids:
            snap = state.pending.get(agent_id)
            if snap is None:
                continue
            cause, detail = state.causes.get(
                agent_id,
                ("deadline", "round deadline passed")
                if expired
                else ("missing_from_batch", "no plan arrived"),
            )
            steps, tier, rule_cause = heuristic_plan(snap, self.core.rng, self.round.grid)
            self.core.telemetry.record_fallback(tier.value, cause)
            self.emit(
                AgentFellBack(
                    self.round.round_id,
                    self.round.squad,
                    agent_id,
                    self.settings.start_tier,
                    tier,
                    cause,
                    detail,
                    at,
                )
            )
            self.deliver(
                AgentOutcome(agent_id, steps, tier, cause=rule_cause or cause),
                request=None,
                raw="",
                emitted_at=None,
                at=at,
            )
