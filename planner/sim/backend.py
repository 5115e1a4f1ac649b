"""The built-in simulated LLM as an in-process backend.

`SimModel` decides the text and the absolute instant each token leaves; this backend
only carries it out. On a `VirtualClock` it never sleeps: each `TextDelta` is stamped
with its scheduled instant and yielded at once (the caller reads time from the stamps).
On a real clock it sleeps until each absolute instant (never a sum of small sleeps, so
pacing does not drift) and stamps the same instants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel

from planner.backends.base import (
    Capabilities,
    Finished,
    LLMRequest,
    StreamEvent,
    TextBudget,
    TextDelta,
    Usage,
)
from planner.clock import Clock, MonotonicClock, VirtualClock
from planner.errors import BackendConnectError, BackendError, BackendHTTPStatus, BackendTimeout
from planner.sim.model import FaultConfig, Preset, SimModel, SimResponse, get_preset

DEFAULT_READ_TIMEOUT_S = 10.0
"""In virtual time a stall raises BackendTimeout this long after the last token."""


class SimBackend:
    name = "sim"
    capabilities = Capabilities(
        json_schema=True,
        schema_outside_prompt_cache=True,
        seed=True,
        cached_tokens=True,
        plan_format="compact",  # like the local engines it stands in for
    )

    def __init__(
        self,
        sim: SimModel,
        clock: Clock,
        *,
        pace: bool | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        self.sim = sim
        self.clock = clock
        self.model = sim.model_name
        self.pace = not isinstance(clock, VirtualClock) if pace is None else pace
        """Sleep until each token's instant (wall mode); False only stamps (virtual mode)."""
        self.read_timeout = read_timeout
        self.last_request_id: int | None = None

    @classmethod
    def create(
        cls,
        preset: str | Preset = "gpu",
        seed: int = 0,
        clock: Clock | None = None,
        num_parallel: int = 1,
        faults: FaultConfig | None = None,
        *,
        persona: str | None = None,
        pace: bool | None = None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_S,
    ) -> SimBackend:
        p = get_preset(preset) if isinstance(preset, str) else preset
        sim = SimModel(p, seed=seed, num_parallel=num_parallel, faults=faults, persona=persona)
        return cls(sim, clock or MonotonicClock(), pace=pace, read_timeout=read_timeout)

    def describe(self) -> str:
        persona = f", simulated persona {self.sim.persona}" if self.sim.persona else ""
        return f"built-in simulated LLM, {self.sim.preset.name} preset{persona}"

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        # Not an async generator itself: arrival and slot order are fixed at call time.
        arrival = self.clock.now()
        if request.not_before is not None:
            arrival = max(arrival, request.not_before)
        response = self.sim.respond(
            arrival,
            [("system", request.system), ("user", request.prompt)],
            request_seed=request.seed,
            max_tokens=request.max_tokens,
        )
        self.last_request_id = response.request_id
        budget = TextBudget(request.max_response_chars, f"response from the {self.describe()}")
        return self._play(response, request.stream, budget)

    async def _until(self, instant: float) -> None:
        if self.pace:
            await self.clock.sleep(instant - self.clock.now())
        else:
            await anyio.lowlevel.checkpoint()

    async def _emit_at(self, instant: float) -> float:
        """Wait for a token's instant; the instant it really leaves (a sleep wakes a little
        late, and that lateness is the sim's, not the planner's overhead)."""
        await self._until(instant)
        return max(instant, self.clock.now()) if self.pace else instant

    async def _play(
        self, r: SimResponse, streaming: bool, budget: TextBudget
    ) -> AsyncIterator[StreamEvent]:
        if r.status != 200:
            await self._until(r.end)
            err = BackendHTTPStatus(
                f"sim: injected HTTP {r.status}",
                r.status,
                body='{"error":"injected fault"}',
                retry_after=r.retry_after,
            )
            err.at = r.end
            raise err
        reached = r.arrival
        finished = False
        try:
            async for event in self._events(r, streaming, budget):
                yield event
                # The client came back for more: it took this token (one it refuses,
                # stamped past its deadline, is where it left, not where it read to).
                if isinstance(event, TextDelta) and event.emitted_at is not None:
                    reached = event.emitted_at
            finished = True
        except BackendError:
            finished = True  # the server's own fault: its slot is held as modelled
            raise
        finally:
            if not finished:
                # The client stopped reading (deadline, superseded round, cancel): the
                # server stops decoding for it, as real servers do on a closed connection.
                self.sim.release(r, self.clock.now() if self.pace else reached)

    async def _events(
        self, r: SimResponse, streaming: bool, budget: TextBudget
    ) -> AsyncIterator[StreamEvent]:
        sent = r.sent_tokens
        brace_at = {index: agent_id for agent_id, index in r.plan_tokens}
        if streaming:
            for i in range(sent):
                at = await self._emit_at(r.token_times[i])
                budget.spend(r.tokens[i], at)
                if i in brace_at:
                    self.sim.record_emission(r.request_id, brace_at[i], at)
                yield TextDelta(r.tokens[i], emitted_at=at)
        elif r.cut_after is None:
            end = await self._emit_at(r.end)
            budget.spend(r.text, end)
            for agent_id, _ in r.plan_tokens:
                self.sim.record_emission(r.request_id, agent_id, end)
            yield TextDelta(r.text, emitted_at=end)

        last = r.token_times[sent - 1] if streaming and sent else r.arrival
        if r.fault == "stall":
            if self.pace:
                await anyio.sleep_forever()  # the caller's read timeout cancels us
            timeout = BackendTimeout("sim: stream stalled (read timeout)")
            timeout.at = last + self.read_timeout
            await self._until(timeout.at)  # like every end: in its own turn (replays agree)
            raise timeout
        if r.fault == "disconnect":
            cut_at = r.token_times[sent] if sent < len(r.token_times) else last
            await self._until(cut_at)
            dropped = BackendConnectError("sim: server closed the connection mid-stream")
            dropped.at = cut_at
            raise dropped

        yield Usage(
            prompt_tokens=r.prompt_tokens,
            cached_tokens=r.cached_tokens,
            completion_tokens=r.completion_tokens,
            server_timings=r.server_timings(),
        )
        yield Finished(r.finish_reason)

    async def aclose(self) -> None:
        return None
