"""The OpenAI chat-completions protocol as pydantic models, both directions: what the
client sends and the sim server validates, and what the server answers and the client
validates.

    POST /v1/chat/completions  -> OpenAIChatRequest
    SSE data (or the whole answer) <- OpenAICompletion
    GET /v1/models             <- OpenAIModelList

The client (`planner.backends.openai`) and the sim server (`planner.sim.server`) both
use these classes, so the two ends cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from planner.backends.wire_base import Lenient

# --- requests (client -> server) ----------------------------------------------------


class OpenAITextPart(Lenient):
    type: str = "text"
    text: str = ""


class OpenAIMessage(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[OpenAITextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class OpenAIJsonSchema(Lenient):
    name: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class OpenAIResponseFormat(Lenient):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: OpenAIJsonSchema | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """llama-cpp-python's form: `{"type": "json_object", "schema": {...}}`."""


class OpenAIStreamOptions(Lenient):
    include_usage: bool = False


class OpenAIChatRequest(Lenient):
    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: OpenAIStreamOptions | None = None
    response_format: OpenAIResponseFormat | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    reasoning_effort: str | None = None
    """OpenAI's reasoning switch (o-series, gpt-5: minimal | low | medium | high)."""
    chat_template_kwargs: dict[str, Any] | None = None
    """vLLM, SGLang and llama-server: `{"enable_thinking": false}` turns Qwen3-style
    thinking off in the chat template."""


# --- responses (server -> client) ---------------------------------------------------


class OpenAIErrorBody(Lenient):
    message: str = ""
    type: str | None = None
    code: int | str | None = None


class OpenAIDelta(Lenient):
    """A choice's `delta` (streamed) or `message` (whole): its text, and a reasoning
    model's thinking, which servers name `reasoning_content` (SGLang, llama-server with
    a reasoning format, older vLLM) or `reasoning` (vLLM since 0.11)."""

    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None

    def thinking(self) -> str:
        # one of the two: a server in transition may send the same text under both names
        return self.reasoning or self.reasoning_content or ""


class OpenAIChoice(Lenient):
    index: int = 0
    delta: OpenAIDelta | None = None
    message: OpenAIDelta | None = None
    finish_reason: str | None = None


class OpenAIPromptTokensDetails(Lenient):
    cached_tokens: int | None = None


class OpenAIUsage(Lenient):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: OpenAIPromptTokensDetails | None = None


class OpenAITimings(Lenient):
    """llama.cpp server's own timing block."""

    cache_n: int | None = None
    prompt_n: int | None = None
    prompt_ms: float | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None


class OpenAICompletion(Lenient):
    """A streamed chunk or a whole non-streaming answer."""

    choices: list[OpenAIChoice] = []
    usage: OpenAIUsage | None = None
    timings: OpenAITimings | None = None
    error: OpenAIErrorBody | str | None = None


class OpenAIModelEntry(Lenient):
    id: str = ""
    owned_by: str = ""


class OpenAIModelList(Lenient):
    data: list[OpenAIModelEntry] = []
