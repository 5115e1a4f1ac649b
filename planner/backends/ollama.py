"""Ollama client: `POST /api/chat` streaming NDJSON, `GET /api/tags`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import ValidationError

from planner.backends.base import (
    Capabilities,
    Finished,
    LLMRequest,
    StreamEvent,
    TextBudget,
    TextDelta,
    ThinkingDelta,
    Usage,
)
from planner.backends.framing import NDJSONDecoder
from planner.backends.http_edge import HttpEdge, redact, whole_body_chars
from planner.backends.profiles import get_profile
from planner.backends.wire_ollama import (
    OllamaChatRequest,
    OllamaChunk,
    OllamaMessage,
    OllamaOptions,
    OllamaTags,
)
from planner.errors import BackendConnectError, BackendError, BackendStreamError

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
NS_PER_MS = 1_000_000


def parse_chunk(line: str) -> OllamaChunk:
    try:
        chunk = OllamaChunk.model_validate_json(line)
    except ValidationError:
        raise BackendStreamError(f"Ollama sent a malformed line: {line[:80]!r}") from None
    if chunk.error is not None:
        raise BackendStreamError(f"Ollama error: {redact(str(chunk.error))}")
    return chunk


def usage_of(chunk: OllamaChunk) -> Usage:
    """Token counts and the nanosecond durations, as ms (the names llama.cpp uses)."""
    timings: dict[str, float] = {}
    for key, value in (
        ("total_ms", chunk.total_duration),
        ("load_ms", chunk.load_duration),
        ("prompt_ms", chunk.prompt_eval_duration),
        ("predicted_ms", chunk.eval_duration),
    ):
        if value is not None:
            timings[key] = value / NS_PER_MS
    return Usage(
        prompt_tokens=chunk.prompt_eval_count,
        completion_tokens=chunk.eval_count,
        server_timings=timings,
    )


class OllamaBackend:
    name = "ollama"

    def __init__(
        self,
        url: str = DEFAULT_OLLAMA_URL,
        model: str = "llama3.1",
        *,
        timeout: httpx.Timeout | None = None,
        keep_alive: str | int = "10m",
        num_ctx: int = 8192,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._edge = HttpEdge(url, timeout=timeout, transport=transport)
        self.url = self._edge.base_url
        self.model = model
        self.profile = get_profile("ollama")
        self.capabilities: Capabilities = self.profile.capabilities
        self.keep_alive = keep_alive
        self.num_ctx = num_ctx

    def __repr__(self) -> str:
        return f"OllamaBackend(url={self.url!r}, model={self.model!r})"

    def describe(self) -> str:
        return f"Ollama at {self.url}, model {self.model}"

    async def aclose(self) -> None:
        await self._edge.aclose()

    async def list_models(self, timeout: httpx.Timeout | None = None) -> list[str]:
        data = await self._edge.get_json("/api/tags", timeout=timeout)
        try:
            tags = OllamaTags.model_validate(data)
        except ValidationError:
            raise BackendError(f"unexpected /api/tags answer from {self.url}") from None
        return [m.name or m.model for m in tags.models if m.name or m.model]

    def payload(self, request: LLMRequest) -> dict[str, Any]:
        """The JSON body of /api/chat (fields left unset are left out)."""
        body = OllamaChatRequest(
            model=self.model,
            messages=[
                OllamaMessage(role="system", content=request.system),
                OllamaMessage(role="user", content=request.prompt),
            ],
            stream=request.stream,
            options=OllamaOptions(
                temperature=request.temperature,
                num_ctx=self.num_ctx,
                num_predict=request.max_tokens,
                seed=request.seed if self.capabilities.seed else None,
            ),
            keep_alive=self.keep_alive,
            format=self._schema_for(request),
        )
        payload = body.model_dump(mode="json", exclude_none=True)
        payload.update(self.profile.think_fields(request.think, body.format is not None))
        return payload

    def _schema_for(self, request: LLMRequest) -> dict[str, Any] | None:
        if not self.capabilities.json_schema:
            return None
        if self.capabilities.schema_outside_prompt_cache and request.pinned_schema is not None:
            return request.pinned_schema
        return request.schema

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        budget = TextBudget(request.max_response_chars, f"response from {self.describe()}")
        async with self._edge.open("POST", "/api/chat", json_body=self.payload(request)) as resp:
            if not request.stream:
                body = await self._edge.read_text(resp, whole_body_chars(budget.limit))
                for event in _events(parse_chunk(body), budget, final=True):
                    yield event
                return
            decoder = NDJSONDecoder()
            async for piece in self._edge.iter_text(resp):
                for line in decoder.feed(piece):
                    chunk = parse_chunk(line)
                    for event in _events(chunk, budget, final=chunk.done):
                        yield event
                    if chunk.done:
                        return
            for line in decoder.finish():  # a last line without its newline
                chunk = parse_chunk(line)
                for event in _events(chunk, budget, final=chunk.done):
                    yield event
                if chunk.done:
                    return
        raise BackendConnectError(f"stream from {self.url} ended before its final line")


def _events(chunk: OllamaChunk, budget: TextBudget, *, final: bool) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    thinking = chunk.message.thinking if chunk.message else None
    if thinking:
        budget.spend(thinking)
        events.append(ThinkingDelta(thinking))
    content = chunk.message.content if chunk.message else None
    if content:
        budget.spend(content)
        events.append(TextDelta(content))
    if final:
        events.append(usage_of(chunk))
        events.append(Finished(chunk.done_reason or "stop"))
    return events
