"""One planning round, in any dispatch mode, with streaming on or off.

`RoundRun.run()` takes a squad's snapshots to a plan for every agent:

1. cache: hits are delivered at once and left out of every request;
2. LLM tier: batched (one request), sequential (one per agent, in order) or parallel
   (one per agent, all in flight up to `concurrency`); each streamed plan is validated
   and delivered the moment the parser emits it;
3. re-request: agents missing or invalid are asked for once more (alone, or as a
   smaller batch) at the next LLM tier, if the round's deadline allows;
4. the rest get a heuristic plan (the emergency plan if that fails), with the cause.

Every request goes through the retry policy and the circuit breaker. Deadlines are
cancel scopes on the wall clock; on a virtual clock (deterministic headless matches with
the sim) the timeline is the sim's emission stamps, and a token stamped after the
deadline counts as not received.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio

from game.rules.snapshot import Snapshot
from planner.backends.base import Finished, LLMRequest, TextDelta, Usage
from planner.cache import cache_key, similarity_key
from planner.core import CachedPlan, PlannerCore, PlanningRound, validate_plan_steps
from planner.errors import BackendTimeout, Cause, PlannerError
from planner.events import (
    AgentFellBack,
    ChunkReceived,
    FirstToken,
    PlanDelivered,
    PlanEvent,
    RequestSent,
    ResponseEnded,
    RoundDone,
    RoundScheduled,
    RoundStarted,
    RoundStats,
    ScheduledRequest,
)
from planner.fallback import TIER_TOOLS, AgentOutcome, Tier, heuristic_plan, next_llm_tier
from planner.prompts import build_batch_prompt
from planner.resilience import (
    BreakerState,
    RoundDeadline,
    call_with_retry,
)
from planner.schedule import RequestObservation, plan_round
from planner.schema import AgentScope, PlanFormat, max_answer_chars, plan_json_schema
from planner.settings import PlannerSettings
from planner.stream import ParsedPlan, PlanStreamParser, RejectedElement
from planner.validate import validate_plan

RE_REQUESTED: frozenset[Cause] = frozenset(
    {"missing_from_batch", "parse_error", "validation_error", "truncated"}
)
"""Faults of the answer, worth asking once more. A request that failed whole (after its
retries) is not asked again; the server is the problem, and the heuristic is faster."""

DEADLINE_MARGIN_S = 0.002
"""A request's own timeout fires this much before the round's deadline."""

OUTPUT_SLACK = 40
"""Output tokens on top of the longest answer the schema admits (a fence, a word)."""
MORE_ROOM = 2
"""An agent whose answer was cut by its output budget is asked again with this much more."""


@dataclass
class _Answer:
    """What one attempt's stream said besides text."""

    started_at: float
    finish_reason: str = ""
    usage: Usage | None = None
    chars: int = 0
    """Text received (what `auto` learns tokens per plan from when no usage comes)."""


@dataclass
class _Request:
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
    answer: _Answer | None = None
    """The latest attempt's answer (what the scheduler learns from)."""
    plans_seen: int = 0
    """Plan elements the answer carried, valid or not."""


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
        self._send = emit
        self.t0 = core.clock.now()
        self.deadline = RoundDeadline(self.t0, settings.budget_ms)
        self.latest = self.t0
        self.pending: dict[int, Snapshot] = {s.me.id: s for s in planning.snapshots}
        self.causes: dict[int, tuple[Cause, str]] = {}
        self.cut_short: set[int] = set()
        """Agents whose stream broke after some of its plans had landed."""
        self.re_requested: dict[int, Cause] = {}
        """Agents asked for a second time, with why the first answer failed them."""
        self.first_token_at: float | None = None
        self.first_plan_at: float | None = None
        self.last_plan_at = self.t0
        self.requests = 0
        self.retries = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.tokens = {"prompt": 0, "cached": 0, "completion": 0}
        self._deadline_scope: anyio.CancelScope | None = None
        """The wall clock's round deadline (see `_attempt`)."""

    def emit(self, event: PlanEvent) -> None:
        self._send(event)

    # ------------------------------------------------------------------ time

    def _now(self, stamp: float | None = None) -> float:
        """The instant of something that just happened, on this round's timeline."""
        if self.core.virtual:
            t = self.core.clock.now() if stamp is None else stamp
            self.latest = max(self.latest, t)
            return t
        return self.core.clock.now()

    def _past_deadline(self, at: float | None = None) -> bool:
        return self.deadline.expired(self.latest if at is None else at)

    def _catch_up(self) -> None:
        """Virtual time: the next request leaves when the previous one ended."""
        if self.core.virtual:
            clock = self.core.clock
            ahead = self.latest - clock.now()
            if ahead > 0 and hasattr(clock, "advance"):
                clock.advance(ahead)

    def _ms(self, at: float) -> float:
        return (at - self.t0) * 1000

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
            if self.core.virtual:
                await self._llm_phase()
            else:
                with anyio.move_on_after(self.deadline.remaining(self.core.clock.now())) as scope:
                    self._deadline_scope = scope
                    await self._llm_phase()
                self.latest = self.core.clock.now()
        self.fall_back_rest()
        return self.finish()

    def _serve_from_cache(self) -> None:
        tier = self.settings.start_tier
        blocks = build_batch_prompt(tuple(self.pending.values()), tier).agent_blocks
        for agent_id, snap in list(self.pending.items()):
            block_key, similar = self._cache_keys(snap, tier, blocks[agent_id])
            started = self.core.clock.now()
            hit = self.core.cache.lookup(
                block_key, similar, accept=functools.partial(self._still_valid, snap)
            )
            self.core.telemetry.record("cache_lookup", (self.core.clock.now() - started) * 1000)
            if hit is None:
                self.core.telemetry.incr("cache_misses")
                self.cache_misses += 1
                continue
            checked = validate_plan_steps(hit.value.steps, snap, self.round.grid, hit.value.tier)
            if not checked:
                continue
            self.core.telemetry.incr("cache_hits")
            self.cache_hits += 1
            self._deliver(
                AgentOutcome(agent_id, checked, hit.value.tier, from_cache=True),
                request=None,
                raw="",
                emitted_at=None,
                at=self._now(),
            )

    def _format(self) -> PlanFormat:
        """The plan format asked for now (`auto`: the backend's, which a server whose
        profile is found on its first request may change)."""
        return self.settings.plan_format_for(self.core.backend.capabilities)

    def _cache_keys(
        self, snap: Snapshot, tier: Tier, block: str | None = None, fmt: PlanFormat | None = None
    ) -> tuple[str, str | None]:
        """The exact and similarity keys; `block` is the agent's prompt line when the
        caller already built it (an agent's line is the same alone or in a batch);
        `fmt` the plan format asked for (default: the one asked for now)."""
        if block is None:
            block = build_batch_prompt((snap,), tier).agent_blocks[snap.me.id]
        fmt = fmt or self._format()
        model = self.core.backend.model
        # The agent's line holds no map name: the scenario is part of what the answer depends on.
        options = {"scenario": snap.scenario, "size": [snap.width, snap.height]}
        key = cache_key(model, tier.value, options, block, fmt=fmt)
        similar = (
            similarity_key(model, tier.value, options, snap, fmt=fmt)
            if self.settings.similarity
            else None
        )
        return key, similar

    def _still_valid(self, snap: Snapshot, plan: CachedPlan) -> bool:
        return bool(validate_plan_steps(plan.steps, snap, self.round.grid, plan.tier))

    async def _llm_phase(self) -> None:
        tier = self.settings.start_tier
        await self._dispatch(list(self.pending.values()), tier)
        again = [
            snap
            for agent_id, snap in self.pending.items()
            if agent_id in self.cut_short
            or self.causes.get(agent_id, ("missing_from_batch", ""))[0] in RE_REQUESTED
        ]
        if not again or self._past_deadline() or self.core.breaker.state == BreakerState.open:
            return
        retry_tier = next_llm_tier(tier) or tier
        for snap in again:
            cause, detail = self.causes.pop(snap.me.id, ("missing_from_batch", ""))
            self.re_requested[snap.me.id] = cause
            self.emit(
                AgentFellBack(
                    self.round.round_id,
                    self.round.squad,
                    snap.me.id,
                    tier,
                    retry_tier,
                    cause,
                    f"re-requested once: {detail}" if detail else "re-requested once",
                    self._now(),
                )
            )
        self._catch_up()
        await self._dispatch(again, retry_tier)

    async def _dispatch(self, snaps: Sequence[Snapshot], tier: Tier) -> None:
        mode = self.settings.mode
        if mode == "auto":
            await self._auto(snaps, tier)
        elif mode == "batched":
            await self._request(snaps, tier)
        elif mode == "sequential":
            for snap in sorted(snaps, key=lambda s: s.me.id):
                if self._past_deadline():
                    break
                self._catch_up()
                await self._request((snap,), tier)
        else:
            limit = anyio.Semaphore(self.settings.concurrency)
            # Virtual time: each of the `concurrency` lanes is free again when its last
            # request ended, so the cap holds on the virtual clock as on the wall clock.
            lanes = [self.t0] * self.settings.concurrency

            async def one(snap: Snapshot) -> None:
                async with limit:
                    lane = min(range(len(lanes)), key=lanes.__getitem__)
                    start, lanes[lane] = lanes[lane], math.inf
                    req = await self._request(
                        (snap,), tier, not_before=start if self.core.virtual else None
                    )
                    lanes[lane] = self._end_of(req) if req is not None else start

            async with anyio.create_task_group() as tg:
                for snap in sorted(snaps, key=lambda s: s.me.id):
                    tg.start_soon(one, snap)

    async def _auto(self, snaps: Sequence[Snapshot], tier: Tier) -> None:
        """Shape the dispatch to the budget (planner/schedule.py), send every request at
        once, and learn from how they went."""
        wanted = [s for s in snaps if s.me.id in self.pending]
        if not wanted:
            return
        blocks = build_batch_prompt(tuple(wanted), tier).agent_blocks
        block_tokens = {a: -(-len(b) // 4) for a, b in blocks.items()}
        now = self._now()
        left = self.deadline.remaining(max(now, self.latest))
        server = self.core.server
        recorded = self.core.recorded_schedules
        caps = self.core.backend.capabilities
        static = self.core.static_schema(tier, self.round.grid, self._format())

        def room(agents: int) -> int:
            return max_answer_chars(static, agents, caps.grammar_whitespace) + OUTPUT_SLACK

        schedule = (
            recorded.popleft()
            if recorded
            else plan_round(wanted, server, left, block_tokens, room=room)
        )
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
                self.causes[agent_id] = ("over_budget", schedule.reason)
            self._fall_back(schedule.over_budget, now)
        by_id = {s.me.id: s for s in wanted}
        sent: list[_Request] = []
        wave = len(schedule.requests)

        async def one(agent_ids: tuple[int, ...], max_tokens: int) -> None:
            req = await self._request(
                [by_id[a] for a in agent_ids], tier, max_tokens=max_tokens, keep_order=True
            )
            if req is not None:
                sent.append(req)

        async with anyio.create_task_group() as tg:
            for planned in schedule.requests:
                tg.start_soon(one, planned.agent_ids, planned.max_tokens)
        server.observe_wave([self._observation(req, wave) for req in sent])

    def _observation(self, req: _Request, wave: int) -> RequestObservation:
        answer = req.answer
        usage = None if answer is None else answer.usage
        chars = 0 if answer is None else answer.chars
        completion = (
            usage.completion_tokens if usage and usage.completion_tokens else -(-chars // 4)
        )
        uncached = (
            usage.prompt_tokens - usage.cached_tokens
            if usage and usage.prompt_tokens
            else -(-len(req.user) // 4)
        )
        return RequestObservation(
            sent_at=req.sent_at,
            first_token_at=req.first_token_at,
            last_token_at=req.last_at if req.first_token_at is not None else None,
            uncached_prompt_tokens=uncached,
            completion_tokens=completion,
            plans=req.plans_seen,
            wave=wave,
            streamed=self.settings.stream,
        )

    # ------------------------------------------------------------------ one request

    async def _request(
        self,
        snaps: Sequence[Snapshot],
        tier: Tier,
        *,
        max_tokens: int | None = None,
        keep_order: bool = False,
        not_before: float | None = None,
    ) -> _Request | None:
        wanted = {s.me.id: s for s in snaps if s.me.id in self.pending}
        if not wanted:
            return None
        fmt = self._format()
        parts = build_batch_prompt(tuple(wanted.values()), tier, keep_order=keep_order, fmt=fmt)
        grid = self.round.grid
        caps = self.core.backend.capabilities
        ids = parts.agent_ids
        schema = self.core.static_schema(tier, grid, fmt)
        pinned = (
            plan_json_schema(
                TIER_TOOLS[tier],
                grid.width,
                grid.height,
                [AgentScope.of(wanted[i], grid) for i in ids],
                fmt=fmt,
            )
            if caps.schema_outside_prompt_cache
            else None
        )
        if max_tokens is None:
            # Room for the longest answer the schema allows: a whole answer always fits.
            longest = max_answer_chars(pinned or schema, len(ids), caps.grammar_whitespace)
            max_tokens = longest + OUTPUT_SLACK
        if any(self.re_requested.get(i) == "truncated" for i in ids):
            max_tokens *= MORE_ROOM
        llm_request = LLMRequest(
            system=parts.system,
            prompt=parts.user,
            agent_ids=ids,
            schema=schema,
            pinned_schema=pinned,
            stream=self.settings.stream,
            max_tokens=max_tokens,
            seed=self.core.rng.randrange(2**31),
            not_before=not_before,
            max_response_chars=self.settings.max_response_chars,
        )
        sent_at = self._now() if not_before is None else max(self._now(), not_before)
        req = _Request(
            next(self.core.request_ids),
            tier,
            wanted,
            parts.agent_blocks,
            sent_at,
            last_at=sent_at,
            system=parts.system,
            user=parts.user,
            fmt=fmt,
            not_before=not_before,
        )

        def on_retry(attempt: int, exc: PlannerError, wait: float) -> None:
            self.retries += 1
            self.core.telemetry.incr("retries")

        try:
            await call_with_retry(
                lambda: self._attempt(req, llm_request),
                self.core.retry,
                self.core.breaker,
                self.core.clock,
                self.core.rng,
                on_retry=on_retry,
                deadline=self.deadline,
                failed=lambda cut: cut,
            )
        except PlannerError as exc:
            self.core.telemetry.incr("errors")
            at = self._now(exc.at)
            cause: Cause = "deadline" if self._past_deadline(at) else exc.cause
            for agent_id in req.snaps:
                if agent_id in self.pending:
                    self.causes[agent_id] = (cause, exc.message)
        return req

    async def _attempt(self, req: _Request, llm_request: LLMRequest) -> PlannerError | None:
        """One try; raises only when nothing was delivered (so a retry is safe). A stream
        that broke after some of its plans were delivered returns its error instead: not
        retried, but counted against the breaker."""
        self.requests += 1
        self.core.telemetry.incr("requests")
        if not req.announced:
            self._announce(req)
        expected = [i for i in req.snaps if i in self.pending]
        parser = PlanStreamParser(expected_ids=expected)
        delivered_before = len(self.pending)
        answer = _Answer(started_at=self._now())
        req.answer = answer
        # On the wall clock a request ends just before the round does, so that a server
        # with nothing to show by then is a failure the breaker sees (not a silent cut).
        limit = self.core.timeouts.request_s
        if not self.core.virtual:
            left = self.deadline.remaining(self.core.clock.now()) - DEADLINE_MARGIN_S
            limit = max(0.001, min(limit, left))
        timeout: contextlib.AbstractContextManager[object] = (
            contextlib.nullcontext() if self.core.virtual else anyio.fail_after(limit)
        )
        try:
            with timeout:
                if not await self._consume(req, llm_request, parser, answer):
                    # Virtual time: the next token was stamped past the deadline.
                    return self._cut_by_deadline(req, answer, delivered_before)
        except TimeoutError:
            if limit < self.core.timeouts.request_s:
                return self._cut_by_deadline(req, answer, delivered_before)
            error = BackendTimeout(
                f"no complete answer within {self.core.timeouts.request_ms:.0f} ms"
            )
            self._ended(req, answer, "error", error)
            raise error from None
        except anyio.get_cancelled_exc_class():
            if self._deadline_scope is not None and self._deadline_scope.cancel_called:
                self._cancelled_by_deadline(req, answer, delivered_before)
            raise
        except PlannerError as exc:
            self._ended(req, answer, "error", exc)
            if len(self.pending) == delivered_before:
                raise
            # Some plans already landed: the rest are re-requested, not retried whole.
            for agent_id in expected:
                if agent_id in self.pending:
                    self.causes[agent_id] = (exc.cause, exc.message)
                    self.cut_short.add(agent_id)
            return exc
        self.core.telemetry.incr("successes")
        self._ended(req, answer, answer.finish_reason or "stop")
        summary = parser.finish()
        end = self._end_of(req)
        if summary.partial is not None:
            self._on_result(summary.partial, req, None, end)
        for rejected in summary.rejected:
            self._on_result(rejected, req, None, end)
        cut = answer.finish_reason == "length"
        truncated = cut or summary.trailing_error is not None
        for agent_id in summary.missing:
            if agent_id not in self.pending:
                continue
            if cut and self.causes.get(agent_id, ("parse_error", ""))[0] == "parse_error":
                # the output budget ran out before this plan (or in the middle of it)
                tokens = llm_request.max_tokens
                self.causes[agent_id] = ("truncated", f"cut at {tokens} output tokens")
            elif agent_id not in self.causes:
                detail = summary.trailing_error or f"no plan for agent {agent_id} in the answer"
                self.causes[agent_id] = (
                    ("parse_error", detail) if truncated else ("missing_from_batch", detail)
                )
        return None

    async def _consume(
        self,
        req: _Request,
        llm_request: LLMRequest,
        parser: PlanStreamParser,
        answer: _Answer,
    ) -> bool:
        """Feed the stream to the parser; False if (virtual time) it ran past the deadline."""
        events = self.core.backend.stream(llm_request)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, TextDelta):
                    at = self._now(event.emitted_at)
                    if self.core.virtual and self._past_deadline(at):
                        return False
                    req.last_at = max(req.last_at, at)
                    answer.chars += len(event.text)
                    self._first_token(req, at)
                    self.emit(
                        ChunkReceived(
                            self.round.round_id,
                            self.round.squad,
                            req.request_id,
                            event.text,
                            at,
                            event.emitted_at,
                        )
                    )
                    # A real server does not say when it emitted a chunk: its arrival
                    # stands in, so overhead is our own parse/validate/deliver time.
                    emitted = event.emitted_at if event.emitted_at is not None else at
                    for result in parser.feed(event.text):
                        self._on_result(result, req, emitted, at)
                elif isinstance(event, Usage):
                    answer.usage = event
                    self.tokens["prompt"] += event.prompt_tokens
                    self.tokens["cached"] += event.cached_tokens
                    self.tokens["completion"] += event.completion_tokens
                elif isinstance(event, Finished):
                    answer.finish_reason = event.reason
        return True

    def _ended(
        self, req: _Request, answer: _Answer, how: str, error: PlannerError | None = None
    ) -> None:
        usage = answer.usage or Usage()
        at = (
            self._now(error.at) if error is not None and error.at is not None else self._end_of(req)
        )
        self.emit(
            ResponseEnded(
                self.round.round_id,
                self.round.squad,
                req.request_id,
                how,
                "" if error is None else error.message,
                "" if error is None else error.cause,
                getattr(error, "status", 0) or 0,
                getattr(error, "retry_after", None),
                usage.prompt_tokens,
                usage.cached_tokens,
                usage.completion_tokens,
                at,
                answer.started_at,
            )
        )

    def _announce(self, req: _Request) -> None:
        req.announced = True
        now = self._now()
        req.sent_at = req.last_at = now if req.not_before is None else max(now, req.not_before)
        self.emit(
            RequestSent(
                self.round.round_id,
                self.round.squad,
                req.request_id,
                tuple(sorted(req.snaps)),
                req.tier,
                len(req.system),
                len(req.user),
                req.sent_at,
                req.system,
                req.user,
            )
        )

    def _end_of(self, req: _Request) -> float:
        """Now, on this request's timeline (virtual: its last chunk's instant)."""
        return req.last_at if self.core.virtual else self.core.clock.now()

    def _cut_by_deadline(
        self, req: _Request, answer: _Answer, delivered_before: int
    ) -> PlannerError | None:
        """The round's deadline ended this request. A server that delivered nothing by then
        failed (the breaker sees it; never retried: the round is over); one that delivered
        some plans is slow, and only its other agents are late."""
        self._late(req)
        if len(self.pending) != delivered_before:
            self._ended(req, answer, "late")
            return None
        error = BackendTimeout("no plan before the round deadline")
        error.cause = "deadline"
        error.transient = False
        error.at = self.deadline.at
        self._ended(req, answer, "error", error)
        raise error

    def _cancelled_by_deadline(self, req: _Request, answer: _Answer, delivered_before: int) -> None:
        """The round's deadline cancelled this request before its own timeout was seen: a
        late event loop runs both timers at once, and anyio then delivers the round's
        cancellation, not the request's TimeoutError. The breaker hears the same verdict
        the timeout would have given (the cancellation itself still propagates)."""
        try:
            self._cut_by_deadline(req, answer, delivered_before)
        except BackendTimeout:
            self.core.telemetry.incr("errors")
            self.core.breaker.record_failure()
        else:
            self.core.breaker.record_success()

    def _late(self, req: _Request) -> None:
        for agent_id in req.snaps:
            if agent_id in self.pending:
                self.causes[agent_id] = ("deadline", "plan would arrive after the round deadline")
        self.latest = max(self.latest, self.deadline.at or self.latest)

    def _first_token(self, req: _Request, at: float) -> None:
        if req.first_token_at is not None:
            return
        req.first_token_at = at
        ttft = (at - req.sent_at) * 1000
        self.core.telemetry.record("ttft", ttft)
        if self.first_token_at is None:
            self.first_token_at = at
        self.emit(FirstToken(self.round.round_id, self.round.squad, req.request_id, ttft, at))

    def _on_result(
        self,
        result: ParsedPlan | RejectedElement,
        req: _Request,
        emitted_at: float | None,
        at: float,
    ) -> None:
        req.plans_seen += 1
        if isinstance(result, RejectedElement):
            agent_id = result.agent_id
            if agent_id is not None and agent_id in req.snaps and agent_id in self.pending:
                self.causes.setdefault(agent_id, (result.cause, result.error))
            return
        agent_id = result.plan.agent_id
        snap = req.snaps.get(agent_id)
        if snap is None or agent_id not in self.pending:
            return
        checked = validate_plan(result.plan, snap, self.round.grid, TIER_TOOLS[req.tier])
        if not checked.valid:
            reasons = "; ".join(d.reason for d in checked.dropped) or "no legal step"
            self.causes[agent_id] = ("validation_error", reasons)
            return
        start_tier = self.settings.start_tier
        cause = self.re_requested.get(agent_id)
        outcome = AgentOutcome(
            agent_id,
            checked.steps,
            req.tier,
            cause=cause,
            partial=result.partial,
            dropped=checked.dropped,
            repaired=checked.repaired,
        )
        self._deliver(outcome, req, result.raw, emitted_at, at)
        if self.settings.cache and not result.partial:
            # Stored after delivery: the world should not wait for the cache.
            block = req.blocks.get(agent_id) if req.tier == start_tier else None
            key, similar = self._cache_keys(snap, start_tier, block, req.fmt)
            self.core.cache.put(key, CachedPlan(checked.steps, req.tier), similar)

    # ------------------------------------------------------------------ delivery

    def _deliver(
        self,
        outcome: AgentOutcome,
        request: _Request | None,
        raw: str,
        emitted_at: float | None,
        at: float,
    ) -> None:
        agent_id = outcome.agent_id
        if self.pending.pop(agent_id, None) is None:
            return
        if not self.core.virtual:
            # On the wall clock a plan is delivered now, once parsed and validated, not
            # when the chunk that closed it arrived: plan_wait and overhead include that work.
            at = max(at, self.core.clock.now())
        plan_wait = self._ms(at)
        overhead = None
        if emitted_at is not None and not self.core.virtual:
            overhead = max(0.0, (at - emitted_at) * 1000)
            self.core.telemetry.record("overhead", overhead)
        self.core.telemetry.record("plan_wait", plan_wait)
        if self.first_plan_at is None:
            self.first_plan_at = at
        self.last_plan_at = max(self.last_plan_at, at)
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
        if not self.pending:
            return
        at = max(self.latest, self._now())
        if self.core.virtual:
            deadline_at = self.deadline.at
            if deadline_at is not None and self._past_deadline(at):
                at = deadline_at
        self._fall_back(tuple(self.pending), at)

    def _fall_back(self, agent_ids: Sequence[int], at: float) -> None:
        """A rule plan for each of `agent_ids` now, with the cause that dropped it."""
        expired = self._past_deadline(at)
        for agent_id in agent_ids:
            snap = self.pending.get(agent_id)
            if snap is None:
                continue
            cause, detail = self.causes.get(
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
            self._deliver(
                AgentOutcome(agent_id, steps, tier, cause=rule_cause or cause),
                request=None,
                raw="",
                emitted_at=None,
                at=at,
            )

    def finish(self) -> RoundStats:
        telemetry = self.core.telemetry
        ttfp = None if self.first_plan_at is None else self._ms(self.first_plan_at)
        ttft = None if self.first_token_at is None else self._ms(self.first_token_at)
        time_to_all = self._ms(self.last_plan_at)
        if ttfp is not None:
            telemetry.record("ttfp", ttfp)
        telemetry.record("time_to_all", time_to_all)
        stats = RoundStats(
            agents=len(self.round.snapshots),
            ttft_ms=ttft,
            ttfp_ms=ttfp,
            time_to_all_ms=time_to_all,
            requests=self.requests,
            retries=self.retries,
            prompt_tokens=self.tokens["prompt"],
            cached_tokens=self.tokens["cached"],
            completion_tokens=self.tokens["completion"],
            cache_hits=self.cache_hits,
            cache_misses=self.cache_misses,
            breaker=self.core.breaker.state.value,
        )
        self.emit(RoundDone(self.round.round_id, self.round.squad, stats, self.last_plan_at))
        return stats
