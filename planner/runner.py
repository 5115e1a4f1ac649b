"""The request runner: one request of a round, carried out.

It builds the request, sends it through the retry policy and the circuit breaker,
feeds the stream to the plan parser (each element goes to `Delivery` the moment it
closes), ends it at the round's deadline, says how it ended (`ResponseEnded`), and
records why its agents are still waiting when it could not answer for them. What to
send and to whom is decided elsewhere (`RoundRun`, and for `auto` planner/schedule.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace

import anyio

from game.rules.snapshot import Snapshot
from planner.backends.base import Finished, LLMRequest, TextDelta, ThinkingDelta, Usage
from planner.delivery import Delivery, plan_format
from planner.errors import BackendTimeout, Cause, CircuitOpen, PlannerError
from planner.events import (
    ChunkReceived,
    FirstToken,
    RequestSent,
    ResponseEnded,
    ThinkingReceived,
)
from planner.fallback import TIER_TOOLS, Tier
from planner.prompts import build_batch_prompt
from planner.resilience import call_with_retry
from planner.round_state import Answer, SentRequest
from planner.schedule import RequestObservation
from planner.schema import AgentScope, max_answer_chars, plan_json_schema
from planner.stream import PlanStreamParser

OUTPUT_SLACK = 40
"""Output tokens on top of the longest answer the schema admits (a fence, a word)."""
MORE_ROOM = 2
"""An agent whose answer was cut by its output budget is asked again with this much more."""


class RequestRunner:
    def __init__(self, delivery: Delivery) -> None:
        """Shares the round's parts with the delivery it hands every answer to."""
        self.delivery = delivery
        self.core = delivery.core
        self.settings = delivery.settings
        self.round = delivery.round
        self.emit = delivery.emit
        self.time = delivery.time
        self.state = delivery.state

    async def request(
        self,
        snaps: Sequence[Snapshot],
        tier: Tier,
        *,
        max_tokens: int | None = None,
        keep_order: bool = False,
        not_before: float | None = None,
    ) -> SentRequest | None:
        """Ask for the plans of `snaps` (those still waiting) in one request."""
        state = self.state
        wanted = {s.me.id: s for s in snaps if s.me.id in state.pending}
        if not wanted:
            return None
        fmt = plan_format(self.core, self.settings)
        grid = self.round.grid
        intent = self.settings.intent
        parts = build_batch_prompt(
            tuple(wanted.values()), tier, keep_order=keep_order, fmt=fmt, grid=grid, intent=intent
        )
        caps = self.core.backend.capabilities
        ids = parts.agent_ids
        schema = self.core.static_schema(tier, grid, fmt, intent)
        pinned = (
            plan_json_schema(
                TIER_TOOLS[tier],
                grid.width,
                grid.height,
                [AgentScope.of(wanted[i], grid) for i in ids],
                fmt=fmt,
                intent=intent,
            )
            if caps.schema_outside_prompt_cache
            else None
        )
        if max_tokens is None:
            # Room for the longest answer the schema allows: a whole answer always fits.
            longest = max_answer_chars(pinned or schema, len(ids), caps.grammar_whitespace)
            max_tokens = longest + OUTPUT_SLACK
        if any(state.re_requested.get(i) == "truncated" for i in ids):
            max_tokens *= MORE_ROOM
        think = self.settings.think
        if think == "on" or (think == "auto" and self.core.seen_thinking):
            max_tokens += self.settings.think_tokens  # room to think before the plan
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
            think=self.settings.think,
        )
        now = self.time.now()
        sent_at = now if not_before is None else max(now, not_before)
        req = SentRequest(
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

        attempt_request = llm_request

        def on_retry(attempt: int, exc: PlannerError, wait: float) -> None:
            nonlocal attempt_request
            state.retries += 1
            self.core.telemetry.incr("retries")
            if self.time.virtual and exc.at is not None:
                # A retry leaves once the failure was heard and its backoff is over (the
                # shared clock alone could start it before its failed attempt ended: the
                # attempts would overlap, and a record could not tell their chunks apart).
                leaves = max(llm_request.not_before or exc.at, exc.at + wait)
                attempt_request = replace(llm_request, not_before=leaves)

        try:
            await call_with_retry(
                lambda: self._attempt(req, attempt_request),
                self.core.retry,
                self.core.breaker,
                self.core.clock,
                self.core.rng,
                on_retry=on_retry,
                deadline=self.time.deadline,
                failed=lambda cut: cut,
            )
        except PlannerError as exc:
            self.core.telemetry.incr("errors")
            at = self.time.now(exc.at)
            failure, message = exc, exc.message
            if isinstance(exc, CircuitOpen) and isinstance(exc.__cause__, PlannerError):
                # This request did fail, and the breaker (opened by it and its siblings)
                # refused its retry: the cause is the failure, not the refusal.
                failure = exc.__cause__
                message = f"{failure.message} (retry refused: circuit open)"
            cause: Cause = "deadline" if self.time.past_deadline(at) else failure.cause
            for agent_id in req.snaps:
                # a model still thinking at the deadline keeps that cause
                known = state.causes.get(agent_id)
                thought = known is not None and known[0] == "thinking_over_budget"
                if agent_id in state.pending and not (cause == "deadline" and thought):
                    state.causes[agent_id] = (cause, message)
        return req

    def observation(self, req: SentRequest, wave: int) -> RequestObservation:
        """What `auto` learns from this request (one of `wave` sent together)."""
        answer = req.answer
        usage = None if answer is None else answer.usage
        chars = 0 if answer is None else answer.chars
        completion = (
            usage.completion_tokens if usage and usage.completion_tokens else -(-chars // 4)
        )
        uncached = (
            usage.prompt_tokens - (usage.cached_tokens or 0)
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

    def end_of(self, req: SentRequest) -> float:
        """Now, on this request's timeline (virtual: its last chunk's instant)."""
        return self.time.end_of(req.last_at)

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, req: SentRequest, llm_request: LLMRequest) -> PlannerError | None:
        """One try; raises only when nothing was delivered (so a retry is safe). A stream
        that broke after some of its plans were delivered returns its error instead: not
        retried, but counted against the breaker."""
        state = self.state
        state.requests += 1
        self.core.telemetry.incr("requests")
        if not req.announced:
            self._announce(req)
        expected = [i for i in req.snaps if i in state.pending]
        parser = PlanStreamParser(expected_ids=expected)
        started = self.time.now()
        if self.time.virtual and llm_request.not_before is not None:
            # it leaves when its lane is free, or (a retry) once its failure was heard
            started = max(started, llm_request.not_before)
        answer = Answer(started_at=started)
        req.answer = answer
        limit = self.time.request_limit(self.core.timeouts)
        try:
            with self.time.request_scope(limit):
                in_time = await self._consume(req, llm_request, parser, answer)
        except TimeoutError:
            if limit < self.core.timeouts.request_s:
                return self._cut_by_deadline(req, answer, expected)
            error = BackendTimeout(
                f"no complete answer within {self.core.timeouts.request_ms:.0f} ms"
            )
            self._ended(req, answer, "error", error)
            raise error from None
        except anyio.get_cancelled_exc_class():
            if self.time.deadline_cancelled():
                self._cancelled_by_deadline(req, answer, expected)
            raise
        except PlannerError as exc:
            if exc.at is not None and not self.time.in_time(exc.at):
                # Virtual time: the failure came after the round's deadline, which ended
                # the request first (as the wall clock's deadline would have).
                return self._cut_by_deadline(req, answer, expected)
            self._ended(req, answer, "error", exc)
            if not self._delivered_some(expected):
                raise
            # Some plans already landed: the rest are re-requested, not retried whole.
            for agent_id in expected:
                if agent_id in state.pending:
                    state.causes[agent_id] = (exc.cause, exc.message)
                    state.cut_short.add(agent_id)
            return exc
        if not in_time:
            # Virtual time: the next token was stamped past the deadline. (Outside the try:
            # the error it raises is this request's verdict, not a new stream failure.)
            return self._cut_by_deadline(req, answer, expected)
        self.core.telemetry.incr("successes")
        self._ended(req, answer, answer.finish_reason or "stop")
        summary = parser.finish()
        end = self.end_of(req)
        if summary.partial is not None:
            self.delivery.on_result(summary.partial, req, None, end)
        for rejected in summary.rejected:
            self.delivery.on_result(rejected, req, None, end)
        cut = answer.finish_reason == "length"
        truncated = cut or summary.trailing_error is not None
        for agent_id in summary.missing:
            if agent_id not in state.pending:
                continue
            if cut and answer.only_thought:
                tokens = llm_request.max_tokens
                state.causes[agent_id] = (
                    "thinking_over_budget",
                    f"thought for all {tokens} output tokens, wrote no plan",
                )
            elif cut and state.causes.get(agent_id, ("parse_error", ""))[0] == "parse_error":
                # the output budget ran out before this plan (or in the middle of it)
                tokens = llm_request.max_tokens
                state.causes[agent_id] = ("truncated", f"cut at {tokens} output tokens")
            elif agent_id not in state.causes:
                detail = summary.trailing_error or f"no plan for agent {agent_id} in the answer"
                state.causes[agent_id] = (
                    ("parse_error", detail) if truncated else ("missing_from_batch", detail)
                )
        return None

    async def _consume(
        self,
        req: SentRequest,
        llm_request: LLMRequest,
        parser: PlanStreamParser,
        answer: Answer,
    ) -> bool:
        """Feed the stream to the parser; False if (virtual time) it ran past the deadline."""
        state = self.state
        events = self.core.backend.stream(llm_request)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, TextDelta):
                    at = self.time.now(event.emitted_at)
                    if not self.time.in_time(at):
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
                        self.delivery.on_result(result, req, emitted, at)
                elif isinstance(event, ThinkingDelta):
                    # thinking: timed and kept for the inspector, never parsed
                    at = self.time.now(event.emitted_at)
                    if not self.time.in_time(at):
                        return False
                    req.last_at = max(req.last_at, at)
                    answer.thinking_chars += len(event.text)
                    self.core.seen_thinking = True
                    self._first_token(req, at)
                    self.emit(
                        ThinkingReceived(
                            self.round.round_id, self.round.squad, req.request_id, event.text, at
                        )
                    )
                elif isinstance(event, Usage):
                    answer.usage = event
                    state.usage_reported += 1
                    state.tokens["prompt"] += event.prompt_tokens or 0
                    state.tokens["cached"] += event.cached_tokens or 0
                    state.tokens["completion"] += event.completion_tokens or 0
                elif isinstance(event, Finished):
                    answer.finish_reason = event.reason
        return True

    def _ended(
        self,
        req: SentRequest,
        answer: Answer,
        how: str,
        error: PlannerError | None = None,
        *,
        at: float | None = None,
    ) -> None:
        usage = answer.usage or Usage()
        if at is None:
            at = (
                self.time.now(error.at)
                if error is not None and error.at is not None
                else self.end_of(req)
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

    def _announce(self, req: SentRequest) -> None:
        req.announced = True
        now = self.time.now()
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

    def _cut_by_deadline(
        self, req: SentRequest, answer: Answer, expected: Sequence[int]
    ) -> PlannerError | None:
        """The round's deadline ended this request. A server that delivered nothing by then
        failed (the breaker sees it; never retried: the round is over); one that delivered
        some plans is slow, and only its other agents are late."""
        self._late(req, answer)
        if self._delivered_some(expected):
            # Ended when the deadline cut it (virtual time: the deadline, not its last
            # chunk; a match ending meanwhile must not show the cut before it happened).
            self._ended(req, answer, "late", at=self.time.fallback_at())
            return None
        error = BackendTimeout("no plan before the round deadline")
        error.cause = "deadline"
        error.transient = False
        error.at = self.time.deadline.at
        self._ended(req, answer, "error", error)
        raise error

    def _cancelled_by_deadline(
        self, req: SentRequest, answer: Answer, expected: Sequence[int]
    ) -> None:
        """The round's deadline cancelled this request before its own timeout was seen: a
        late event loop runs both timers at once, and anyio then delivers the round's
        cancellation, not the request's TimeoutError. The breaker hears the same verdict
        the timeout would have given (the cancellation itself still propagates)."""
        try:
            self._cut_by_deadline(req, answer, expected)
        except BackendTimeout:
            self.core.telemetry.incr("errors")
            self.core.breaker.record_failure()
        else:
            self.core.breaker.record_success()

    def _delivered_some(self, expected: Sequence[int]) -> bool:
        """Did this attempt deliver any of its agents' plans? (Its own agents: a sibling
        request's deliveries say nothing about this one.)"""
        return any(agent_id not in self.state.pending for agent_id in expected)

    def _late(self, req: SentRequest, answer: Answer) -> None:
        cause: tuple[Cause, str] = (
            ("thinking_over_budget", "still thinking at the round deadline, no plan text")
            if answer.only_thought
            else ("deadline", "plan would arrive after the round deadline")
        )
        for agent_id in req.snaps:
            if agent_id in self.state.pending:
                self.state.causes[agent_id] = cause
        self.time.reach_deadline()

    def _first_token(self, req: SentRequest, at: float) -> None:
        if req.first_token_at is not None:
            return
        req.first_token_at = at
        ttft = (at - req.sent_at) * 1000
        self.core.telemetry.record("ttft", ttft)
        if self.state.first_token_at is None or at < self.state.first_token_at:
            self.state.first_token_at = at  # the earliest (as first_plan_at)
        self.emit(FirstToken(self.round.round_id, self.round.squad, req.request_id, ttft, at))
