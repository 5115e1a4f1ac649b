"""A backend that answers from a match record: the recorded streams stand in for the server.

Requests must come in the recorded order with the recorded agent ids (the planner is
deterministic given the same snapshots, settings and seed); each answer replays its
chunks at their recorded offsets after the request, on the caller's clock (virtual in
replays, so nothing waits), and ends the way it ended: usage and finish reason, or the
same error, word for word (so retries, the breaker and fallbacks take the same path).

Requests in flight together are handled in turn: each chunk, and each end the server
sent, arrives in its own turn (one checkpoint, as a backend reading the wire or the sim
on a virtual clock gives), so concurrent requests interleave as they did when recorded;
on a virtual clock a round's shared state (the breaker, retry backoffs on the clock, the
lanes) depends on that order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio

from planner.backends.base import (
    Capabilities,
    Finished,
    LLMRequest,
    StreamEvent,
    TextBudget,
    TextDelta,
    Usage,
)
from planner.clock import Clock
from planner.errors import (
    BackendConnectError,
    BackendError,
    BackendHTTPStatus,
    BackendStreamError,
    BackendTimeout,
    MalformedResponse,
    ResponseTooLarge,
)


@dataclass(frozen=True)
class RecordedChunk:
    offset_s: float
    """Seconds after the request was sent (its first attempt, for every attempt: a retry's
    own start is not recorded, and the replay's retry waits its own backoff)."""
    text: str


@dataclass(frozen=True)
class RecordedResponse:
    """One attempt's answer as recorded: its chunks and how it ended."""

    agent_ids: tuple[int, ...]
    chunks: tuple[RecordedChunk, ...]
    finish_reason: str
    error: str
    error_cause: str
    error_status: int
    retry_after: float | None
    end_offset_s: float
    usage: tuple[int | None, int | None, int | None]
    ended: bool = True
    """False: the original never heard this attempt end (its round was superseded or the
    match ended first); after its chunks nothing more arrives."""
    request_id: int = 0
    """The recorded request this attempt belongs to."""
    attempt: int = 0
    """0 for the request's first try, then 1, 2... for its retries."""


NEVER_S = 24 * 3600.0
"""How late an answer the record does not hold 'arrives' (after any deadline)."""


class ReplayDiverged(BackendError):
    """The replayed planner asked for something the record does not hold."""


def _error(response: RecordedResponse) -> BackendError:
    message = response.error  # word for word: the inspector shows what happened
    match response.error_cause:
        case "timeout":
            return BackendTimeout(message)
        case "deadline":
            # The round's deadline cut it: the same verdict, never retried.
            cut = BackendTimeout(message)
            cut.cause = "deadline"
            cut.transient = False
            return cut
        case "connect":
            return BackendConnectError(message)
        case "oversize":
            return ResponseTooLarge(message)
        case "parse_error":
            return MalformedResponse(message)
        case "http_status" if response.error_status:
            return BackendHTTPStatus(message, response.error_status, "", response.retry_after)
        case _:
            return BackendStreamError(message)


class ReplayBackend:
    name = "replay"
    capabilities = Capabilities()

    def __init__(
        self,
        responses: Sequence[RecordedResponse],
        clock: Clock,
        *,
        model: str,
        source: str,
        capabilities: Capabilities | None = None,
    ) -> None:
        if capabilities is not None:
            # The recorded server's: the replayed requests are built the same way (pinned
            # schemas, output budgets), so their figures are the recorded ones.
            self.capabilities = capabilities
        self._responses = list(responses)
        self._used = [False] * len(self._responses)
        self._first_unused = 0
        self._sent_at: dict[int, float] = {}
        """When each recorded request's first attempt was replayed: its retries' offsets
        count from there."""
        self.clock = clock
        self.model = model
        self.source = source

    def describe(self) -> str:
        return f"replay of {self.source} (recorded on {self.model})"

    @property
    def remaining(self) -> int:
        return self._used.count(False)

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        start = self.clock.now()
        if request.not_before is not None:
            start = max(start, request.not_before)
        while self._first_unused < len(self._used) and self._used[self._first_unused]:
            self._first_unused += 1
        if self._first_unused >= len(self._responses):
            # The original match ended before this answer came: it never arrives.
            silent = ReplayDiverged("replay: the record ends before this answer")
            silent.at = start + NEVER_S
            return self._fail(silent)
        # Requests in flight together may call in another order than they did when
        # recorded (a retry's backoff against a sibling's first try): the answer is the
        # earliest unused one for the same agents, so attempts of one request stay in order.
        # (Records list a request's agents by id; a prompt may list them by urgency.)
        wanted = tuple(sorted(request.agent_ids))
        for index in range(self._first_unused, len(self._responses)):
            if not self._used[index] and tuple(sorted(self._responses[index].agent_ids)) == wanted:
                self._used[index] = True
                response = self._responses[index]
                if response.attempt == 0:
                    self._sent_at[response.request_id] = start
                else:
                    start = self._sent_at.get(response.request_id, start)
                budget = TextBudget(
                    request.max_response_chars, f"replayed response from {self.source}"
                )
                return self._play(response, start, request.stream, budget)
        # No recorded answer for these agents: the original never heard one (its round
        # was superseded or the match ended first), so none arrives now either.
        silent = ReplayDiverged(
            f"replay: the record holds no answer for agents {list(request.agent_ids)}"
        )
        silent.at = start + NEVER_S
        return self._fail(silent)

    async def _fail(self, error: BackendError) -> AsyncIterator[StreamEvent]:
        await anyio.lowlevel.checkpoint()
        for _ in ():  # a generator that yields nothing before failing
            yield TextDelta("")
        raise error

    async def _play(
        self, response: RecordedResponse, start: float, streaming: bool, budget: TextBudget
    ) -> AsyncIterator[StreamEvent]:
        if streaming:
            for chunk in response.chunks:
                await anyio.lowlevel.checkpoint()
                at = start + chunk.offset_s
                budget.spend(chunk.text, at)
                yield TextDelta(chunk.text, emitted_at=at)
        elif response.chunks:
            await anyio.lowlevel.checkpoint()
            text = "".join(c.text for c in response.chunks)
            at = start + response.chunks[-1].offset_s
            budget.spend(text, at)
            yield TextDelta(text, emitted_at=at)
        if not response.ended or response.finish_reason == "late":
            # Never heard to end, or cut by the round's deadline after some plans came:
            # the answer goes on past any deadline, so the replay's deadline cuts it too.
            await anyio.lowlevel.checkpoint()  # the next token, past the deadline
            silent = ReplayDiverged("replay: the record holds no end for this answer")
            silent.at = start + NEVER_S
            raise silent
        if response.error:
            # A status, a closed connection, a read timeout, a token stamped past the
            # deadline (what a `deadline` end records): each arrives in its own turn.
            await anyio.lowlevel.checkpoint()
            error = _error(response)
            error.at = start + response.end_offset_s
            raise error
        prompt, cached, completion = response.usage
        if response.usage != (None, None, None):  # a server that said nothing: unknown
            yield Usage(prompt_tokens=prompt, cached_tokens=cached, completion_tokens=completion)
        yield Finished(response.finish_reason)

    async def aclose(self) -> None:
        return None
