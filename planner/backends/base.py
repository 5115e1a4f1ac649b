"""The one narrow seam every backend implements.

`stream(request)` yields `StreamEvent`s: text deltas as they arrive, then at most one
`Usage` and one `Finished`. A reasoning model's thinking comes as `ThinkingDelta`s (never
text: it must not reach the plan parser). With `request.stream` false the backend asks the server
for a whole answer and yields it as a single delta, so every layer above is the same.
Backends raise only `planner.errors.BackendError` subclasses.

Every backend bounds the text it hands on by `request.max_response_chars`, counted with
a `TextBudget`: past it the stream ends in `ResponseTooLarge` (cause `oversize`), and
no text past the bound is yielded. The planner counts nothing itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from planner.errors import ResponseTooLarge
from planner.schema import PlanFormat

DEFAULT_MAX_RESPONSE_CHARS = 256 * 1024
"""Default bound on the model's generated text per response (`PlannerSettings` uses it)."""

Think = Literal["auto", "on", "off"]
THINK_CHOICES: tuple[Think, ...] = ("auto", "on", "off")


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
    plan_format: PlanFormat = "verbose"
    """The plan format asked for when the settings say `auto` (planner/schema.py): compact
    where the schema becomes a grammar that enforces its `prefixItems` tuples (llama.cpp,
    vLLM, Ollama, LM Studio); verbose where it may not (OpenAI strict mode refuses
    `prefixItems`; an unknown server may ignore the schema)."""
    grammar_whitespace: int = 1
    """Most whitespace characters the engine's schema grammar lets a model write after
    a JSON token: llama.cpp's C++ converter allows a newline or two and 20 indents (22),
    llama-cpp-python's one space. The output budget leaves room for them."""


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
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS
    """Bound on the generated text of the answer; the backend cuts it past this."""
    think: Think = "auto"
    """Reasoning switch: `auto` sends nothing (the server's default); `on`/`off` send the
    profile's own field for it where the server has one (planner/backends/profiles.py)."""


@dataclass(frozen=True)
class TextDelta:
    text: str
    emitted_at: float | None = None
    """When the server emitted it, on the sim's clock; None for real servers."""


@dataclass(frozen=True)
class ThinkingDelta:
    """A reasoning model's thinking text (`reasoning_content`/`reasoning` in OpenAI-style
    SSE, `message.thinking` in Ollama's NDJSON): kept for the inspector, never parsed."""

    text: str
    emitted_at: float | None = None


@dataclass(frozen=True)
class Usage:
    """What the server said the answer cost; None where it did not say (unknown, not 0)."""

    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    server_timings: dict[str, float] = field(default_factory=dict)
    """Server-side durations in ms when the server reports them (prompt_ms, predicted_ms...)."""


@dataclass(frozen=True)
class Finished:
    reason: str
    """stop | length (truncated) | cancelled (server cut the stream) | ..."""


StreamEvent = TextDelta | ThinkingDelta | Usage | Finished


class TextBudget:
    """Counts characters against a bound; over it -> ResponseTooLarge."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.used = 0

    def spend(self, text: str, at: float | None = None) -> None:
        """Count `text` (before handing it on). `at`: when it was emitted, on the
        backend's clock, if known; the error carries it."""
        self.used += len(text)
        if self.used > self.limit:
            error = ResponseTooLarge(f"{self.what} exceeded {self.limit} characters; cancelled")
            error.at = at
            raise error


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
