"""The one narrow seam every backend implements.

`stream(request)` yields `StreamEvent`s: text deltas as they arrive, then at most one
`Usage` and one `Finished`. With `request.stream` false the backend asks the server
for a whole answer and yields it as a single delta, so every layer above is the same.
Backends raise only `planner.errors.BackendError` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Capabilities:
    """A backend's quirks, as data (pydantic-ai style), not as if-chains."""

    json_schema: bool = True
    """Server enforces a JSON schema on the output."""
    schema_outside_prompt_cache: bool = False
    """The schema is compiled into a grammar outside the prompt cache (llama.cpp, vLLM,
    Ollama), so it may pin each request's agent ids without spoiling the prefix cache."""
    seed: bool = True
    cached_tokens: bool = False
    """Server reports how many prompt tokens came from its prefix cache."""


@dataclass(frozen=True)
class LLMRequest:
    system: str
    """The static prefix: instructions, tool doc, output format (byte-identical per scenario)."""
    prompt: str
    """Per-round part: the agents' compact snapshots, the id list, "exactly N plans"."""
    agent_ids: tuple[int, ...]
    schema: dict[str, Any] | None = None
    """Static JSON schema for the tier (cacheable)."""
    pinned_schema: dict[str, Any] | None = None
    """Same schema with agent ids and plan count pinned (only for servers whose
    capabilities say the schema lives outside the prompt cache)."""
    stream: bool = True
    max_tokens: int = 1024
    temperature: float = 0.2
    seed: int | None = None
    not_before: float | None = None
    """Virtual time only: the instant the request leaves (after a client-side queue).
    On the wall clock a request leaves when it is made, and backends ignore this."""


@dataclass(frozen=True)
class TextDelta:
    text: str
    emitted_at: float | None = None
    """When the server emitted it, on the sim's clock; None for real servers."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    server_timings: dict[str, float] = field(default_factory=dict)
    """Server-side durations in ms when the server reports them (prompt_ms, predicted_ms...)."""


@dataclass(frozen=True)
class Finished:
    reason: str
    """stop | length (truncated) | cancelled (server cut the stream) | ..."""


StreamEvent = TextDelta | Usage | Finished


class Backend(Protocol):
    name: str
    """ollama | openai | sim"""
    model: str
    capabilities: Capabilities

    def describe(self) -> str:
        """One line for the screen: 'Ollama at http://..., model llama3.1'."""
        ...

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]: ...

    async def aclose(self) -> None: ...
