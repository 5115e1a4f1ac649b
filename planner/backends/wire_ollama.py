"""Ollama's protocol as pydantic models, both directions: what the client sends and the
sim server validates, and what the server answers and the client validates.

    POST /api/chat, /api/generate   -> OllamaChatRequest, OllamaGenerateRequest
    NDJSON lines (or the whole answer) <- OllamaChunk
    GET /api/tags                    <- OllamaTags

The client (`planner.backends.ollama`) and the sim server (`planner.sim.server`) both
use these classes, so the two ends cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from planner.backends.wire_base import Lenient

# --- requests (client -> server) ----------------------------------------------------


class OllamaOptions(Lenient):
    seed: int | None = None
    temperature: float | None = None
    num_ctx: int | None = None
    num_predict: int | None = None


class OllamaMessage(Lenient):
    """A chat message in a request: its role is required."""

    role: str
    content: str = ""


class OllamaChatRequest(Lenient):
    model: str = ""
    messages: list[OllamaMessage] = Field(default_factory=list)
    stream: bool = True
    options: OllamaOptions | None = None
    keep_alive: Any = None
    format: Any = None
    """A JSON schema (Ollama compiles it into a grammar), or "json"."""
    think: bool | str | None = None
    """Thinking on or off (gpt-oss takes low | medium | high); left out: the model's default."""


class OllamaGenerateRequest(Lenient):
    model: str = ""
    prompt: str = ""
    system: str | None = None
    stream: bool = True
    format: Any = None
    options: OllamaOptions | None = None
    keep_alive: Any = None


# --- responses (server -> client) ---------------------------------------------------


class OllamaReplyMessage(Lenient):
    """The message in an answer line: its text, and a thinking model's `thinking`."""

    content: str | None = None
    thinking: str | None = None


class OllamaChunk(Lenient):
    """One NDJSON line of /api/chat (or the whole non-streaming answer)."""

    message: OllamaReplyMessage | None = None
    done: bool = False
    done_reason: str | None = None
    error: str | None = None
    prompt_eval_count: int | None = None
    eval_count: int | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_duration: int | None = None
    eval_duration: int | None = None


class OllamaModel(Lenient):
    name: str = ""
    model: str = ""


class OllamaTags(Lenient):
    models: list[OllamaModel] = []
