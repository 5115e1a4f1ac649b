"""One planning round, in any dispatch mode, with streaming on or off.

`RoundRun.run()` takes a squad's snapshots to a plan for every agent:

1. cache: hits are delivered at once and left out of every request;
2. LLM tier: auto (planner/schedule.py shapes the round to the budget: k requests sent
   together, most urgent agents first, the rest fall back at once), batched (one
   request), sequential (one per agent, in order) or parallel (one per agent, all in
   flight up to `concurrency`); each streamed plan is validated and delivered the
   moment the parser emits it;
3. re-request: agents missing or invalid are asked for once more (alone, or as a
   smaller batch) at the next LLM tier, if the round's deadline allows;
4. the rest get a heuristic plan (the emergency plan if that fails), with the cause.

The work is split three ways: this module decides what to send to whom (with
planner/schedule.py for `auto`), planner/runner.py carries each request out (retries,
breaker, streaming, the deadline), and planner/delivery.py validates and hands each
plan over. Time, wall or virtual, is planner/timeline.py's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import anyio

from game.rules.snapshot import Snapshot
from game.rules.steps import Step
from planner.adapt import adapted_plan
from planner.core import CachedPlan, PlannerCore, PlanningRound, validate_plan_steps
from planner.delivery import Delivery, cache_keys, plan_format
from planner.errors import Cause
from planner.events import (
    AgentFellBack,
    PlanEvent,
    RoundDone,
    RoundScheduled,
    RoundStarted,
    RoundStats,
    ScheduledRequest,
)
from planner.fallback import AgentOutcome, Tier, next_llm_tier
from planner.prompts import build_batch_prompt
from planner.resilience import BreakerState
from planner.round_state import RoundState, SentRequest
from planner.runner import OUTPUT_SLACK, RequestRunner
from planner.schedule import PlannedRequest, Schedule, plan_round
from planner.schema import max_answer_chars
from planner.settings import PlannerSettings
from planner.timeline import timeline_for

RE_REQUESTED: frozenset[Cause] = frozenset(
    {"missing_from_batch", "parse_error", "validation_error", "truncated"}
)
"""Faults of the answer, worth asking once more. A request that failed whole (after its
retries) is not asked again; the server is the problem, and the heuristic is faster."""


class RoundRun:
    def __init__(
        self,
        core: PlannerCore,
        settings: PlannerSettings,
        planning: PlanningRound,
        emit: Callable[[PlanEvent], None],
    ) -> None:
        self.core = core
        self.settings = settings
        self.round = planning
        self.emit = emit
        self.time = timeline_for(core.clock, settings.budget_ms, virtual=core.virtual)
        self.t0 = self.time.t0
        self.state = RoundState({s.me.id: s for s in planning.snapshots}, self.t0)
        self.delivery = Delivery(core, settings, planning, emit, self.time, self.state)
        self.runner = RequestRunner(self.delivery)

    @property
    def pending(self) -> dict[int, Snapshot]:
        return self.state.pending

    # ------------------------------------------------------------------ round

    async def run(self) -> RoundStats:
        s = self.settings
        self.emit(
            RoundStarted(
                self.round.round_id,
                self.round.squad,
                tuple(sorted(self.pending)),
                s.mode,
                s.stream,
                s.start_tier,
                self.t0,
            )
        )
        if s.cache:
            self._serve_from_cache()
        if self.pending:
            with self.time.round_scope():
                await self._llm_phase()
        self.fall_back_rest()
        return self.finish()

    def fall_back_rest(self) -> None:
        self.delivery.fall_back_rest()

    def _serve_from_cache(self) -> None:
        """Every agent's hit is delivered now and left out of the requests; only the misses
        (a rejected situation hit is one, and an agent still in the situation of the
        cached plan it was last given) go to the LLM."""
        tier = self.settings.start_tier
        state = self.state
        cache = self.core.cache
        served = self.core.served_from_cache
        blocks = build_batch_prompt(
            tuple(self.pending.values()), tier, grid=self.round.grid
        ).agent_blocks
        new_before = cache.new_situations
        for agent_id, snap in list(self.pending.items()):
            block_key, similar = cache_keys(self.core, self.settings, snap, tier, blocks[agent_id])
            refresh = similar is not None and served.get(agent_id) == similar
            if refresh:
                state.cache_refreshed += 1
                hit = None
            else:
                started = self.core.clock.now()
                rejected = cache.similar_rejects
                hit = cache.lookup(block_key, similar, adapt=functools.partial(self._adapted, snap))
                self.core.telemetry.record("cache_lookup", (self.core.clock.now() - started) * 1000)
                state.cache_rejected += cache.similar_rejects - rejected
            checked = () if hit is None else self._valid_now(hit.value, snap)
            if not checked:
                self.core.telemetry.incr("cache_misses")
                state.cache_misses += 1
                if similar is not None:
                    # a teammate's plan of this situation landing this round may serve it:
                    # the model's new answer, not the stored plan it was last given
                    self.delivery.missed[agent_id] = similar
                continue
            assert hit is not None
            if similar is not None:
                served[agent_id] = similar
            self.core.telemetry.incr("cache_hits")
            state.cache_hits += 1
            state.cache_adapted += int(hit.similar)
            self.delivery.deliver(
                AgentOutcome(
                    agent_id,
                    checked,
                    hit.value.tier,
                    from_cache=True,
                    intent=hit.value.intent if self.settings.intent else None,
                ),
                request=None,
                raw="",
                emitted_at=None,
                at=self.time.now(),
            )
        state.cache_new_situations += cache.new_situations - new_before

    def _valid_now(self, plan: CachedPlan, snap: Snapshot) -> tuple[Step, ...]:
        return validate_plan_steps(plan.steps, snap, self.round.grid, plan.tier)

    def _adapted(self, snap: Snapshot, plan: CachedPlan) -> CachedPlan | None:
        return adapted_plan(plan, snap, self.round.grid)

    async def _llm_phase(self) -> None:
        tier = self.settings.start_tier
        state = self.state
        await self._dispatch(list(self.pending.values()), tier)
        again = [
            snap
            for agent_id, snap in self.pending.items()
            if agent_id in state.cut_short
            or state.causes.get(agent_id, ("missing_from_batch", ""))[0] in RE_REQUESTED
        ]
        if not again or self.time.past_deadline() or self.core.breaker.state == BreakerState.open:
            return
        retry_tier = next_llm_tier(tier) or tier
        # Virtual time: the re-request is decided when the first answers ended, not at t0
        # (stamped earlier, a match ending meanwhile would show it without its cause).
        self.time.catch_up()
        for snap in again:
            cause, detail = state.causes.pop(snap.me.id, ("missing_from_batch", ""))
            state.re_requested[snap.me.id] = cause
            self.emit(
                AgentFellBack(
                    self.round.round_id,
                    self.round.squad,
                    snap.me.id,
                    tier,
                    retry_tier,
                    cause,
                    f"re-requested once: {detail}" if detail else "re-requested once",
                    self.time.now(),
                )
            )
        await self._dispatch(again, retry_tier)

    async def _dispatch(self, snaps: Sequence[Snapshot], tier: Tier) -> None:
        mode = self.settings.mode
        if mode == "auto":
            await self._auto(snaps, tier)
        elif mode == "batched":
            await self.runner.request(snaps, tier)
        elif mode == "sequential":
            await self._sequential(snaps, tier)
        else:
            await self._parallel(snaps, tier)

    async def _sequential(self, snaps: Sequence[Snapshot], tier: Tier) -> None:
        ordered = sorted(snaps, key=lambda s: s.me.id)
        for n, snap in enumerate(ordered):
            if self.time.past_deadline():
                # An earlier request ran into the deadline: these were never asked.
                for rest in ordered[n:]:
                    if rest.me.id in self.pending:
                        self.state.causes.setdefault(
                            rest.me.id, ("deadline", "round deadline passed before its turn")
                        )
                break
            self.time.catch_up()
            await self.runner.request((snap,), tier)

    async def _parallel(self, snaps: Sequence[Snapshot], tier: Tier) -> None:
        limit = anyio.Semaphore(self.settings.concurrency)
        # Each of the `concurrency` lanes is free again when its last request ended, so the
        # cap holds on the virtual clock as on the wall clock.
        lanes = [self.t0] * self.settings.concurrency

        async def one(snap: Snapshot) -> None:
            async with limit:
                lane = min(range(len(lanes)), key=lanes.__getitem__)
                start, lanes[lane] = lanes[lane], math.inf
                req = await self.runner.request(
                    (snap,), tier, not_before=self.time.leaves_at(start)
                )
                lanes[lane] = self.runner.end_of(req) if req is not None else start

        async with anyio.create_task_group() as tg:
            for snap in sorted(snaps, key=lambda s: s.me.id):
                tg.start_soon(one, snap)

    async def _auto(self, snaps: Sequence[Snapshot], tier: Tier) -> None:
        """Shape the dispatch to the budget (planner/schedule.py), send every request at
        once, and learn from how they went."""
        wanted = [s for s in snaps if s.me.id in self.pending]
        if not wanted:
            return
        blocks = build_batch_prompt(tuple(wanted), tier, grid=self.round.grid).agent_blocks
        block_tokens = {a: -(-len(b) // 4) for a, b in blocks.items()}
        now = self.time.now()
        left = self.time.left(now)
        server = self.core.server
        recorded = self.core.recorded_schedules
        if recorded is not None:
            decided = recorded.get(self.round.round_id)
            if not decided:
                # A replay past this round's recorded decisions: the original heard nothing
                # more for it (the match ended, or the round was superseded), so nothing
                # arrives now and the deadline ends it.
                self.time.reach_deadline()
                return
            schedule = _still_waiting(decided.popleft(), {s.me.id for s in wanted})
        else:
            caps = self.core.backend.capabilities
            static = self.core.static_schema(
                tier, self.round.grid, plan_format(self.core, self.settings)
            )

            def room(agents: int) -> int:
                return max_answer_chars(static, agents, caps.grammar_whitespace) + OUTPUT_SLACK

            schedule = plan_round(wanted, server, left, block_tokens, room=room)
        self.emit(
            RoundScheduled(
                self.round.round_id,
                self.round.squad,
                tier,
                tuple(
                    ScheduledRequest(r.agent_ids, r.max_tokens, r.predicted_s * 1000)
                    for r in schedule.requests
                ),
                schedule.over_budget,
                schedule.reason,
                schedule.predicted_s * 1000,
                left * 1000,
                server.describe(),
                now,
            )
        )
        if schedule.over_budget:
            for agent_id in schedule.over_budget:
                self.state.causes[agent_id] = ("over_budget", schedule.reason)
            self.delivery.fall_back(schedule.over_budget, now)
        by_id = {s.me.id: s for s in wanted}
        sent: list[SentRequest] = []
        wave = len(schedule.requests)

        async def one(agent_ids: tuple[int, ...], max_tokens: int) -> None:
            req = await self.runner.request(
                [by_id[a] for a in agent_ids], tier, max_tokens=max_tokens, keep_order=True
            )
            if req is not None:
                sent.append(req)

        async with anyio.create_task_group() as tg:
            for planned in schedule.requests:
                tg.start_soon(one, planned.agent_ids, planned.max_tokens)
        server.observe_wave([self.runner.observation(req, wave) for req in sent])

    # ------------------------------------------------------------------ the end

    def finish(self) -> RoundStats:
        telemetry = self.core.telemetry
        state = self.state
        ms = self.time.ms
        ttfp = None if state.first_plan_at is None else ms(state.first_plan_at)
        ttft = None if state.first_token_at is None else ms(state.first_token_at)
        time_to_all = ms(state.last_plan_at)
        if ttfp is not None:
            telemetry.record("ttfp", ttfp)
        telemetry.record("time_to_all", time_to_all)
        stats = RoundStats(
            agents=len(self.round.snapshots),
            ttft_ms=ttft,
            ttfp_ms=ttfp,
            time_to_all_ms=time_to_all,
            requests=state.requests,
            retries=state.retries,
            prompt_tokens=state.tokens["prompt"],
            cached_tokens=state.tokens["cached"],
            completion_tokens=state.tokens["completion"],
            usage_reported=state.usage_reported,
            cache_hits=state.cache_hits,
            cache_misses=state.cache_misses,
            cache_adapted=state.cache_adapted,
            cache_rejected=state.cache_rejected,
            cache_refreshed=state.cache_refreshed,
            cache_new_situations=state.cache_new_situations,
            breaker=self.core.breaker.state.value,
        )
        self.emit(RoundDone(self.round.round_id, self.round.squad, stats, state.last_plan_at))
        return stats


def _still_waiting(schedule: Schedule, waiting: set[int]) -> Schedule:
    """A recorded decision, kept to the agents this replayed round still waits for."""
    requests = tuple(
        PlannedRequest(ids, r.max_tokens, r.predicted_s)
        for r in schedule.requests
        if (ids := tuple(a for a in r.agent_ids if a in waiting))
    )
    over = tuple(a for a in schedule.over_budget if a in waiting)
    return replace(schedule, requests=requests, over_budget=over)
