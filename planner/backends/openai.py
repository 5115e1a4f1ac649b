"""OpenAI-compatible client (vLLM, llama.cpp server, LM Studio, OpenAI):
`POST /v1/chat/completions` streaming SSE, `GET /v1/models`.

The API key comes from `OPENAI_API_KEY` only, goes out as a bearer header, and is
never part of describe(), repr() or any error message. A `user:password@` in the URL
is dropped (never sent as Basic auth, never shown); error bodies are redacted.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
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
from planner.backends.framing import SSEDecoder
from planner.backends.http_edge import HttpEdge, redact, whole_body_chars
from planner.backends.profiles import (
    Profile,
    ResponseFormat,
    get_profile,
    profile_for_owners,
    profile_for_url,
)
from planner.backends.wire_openai import (
    OpenAIChatRequest,
    OpenAICompletion,
    OpenAIJsonSchema,
    OpenAIMessage,
    OpenAIModelEntry,
    OpenAIModelList,
    OpenAIResponseFormat,
    OpenAIStreamOptions,
)
from planner.errors import (
    BackendConnectError,
    BackendError,
    BackendHTTPStatus,
    BackendStreamError,
)

FormatMode = ResponseFormat
FORMAT_REJECTED_STATUSES = frozenset({400, 422, 500})
"""Statuses with which servers refuse a response_format they do not support
(llama-cpp-python answers 500 to json_schema; vLLM/pydantic servers 400/422)."""
DONE = "[DONE]"


def parse_completion(data: str) -> OpenAICompletion:
    try:
        chunk = OpenAICompletion.model_validate_json(data)
    except ValidationError:
        raise BackendStreamError(f"server sent a malformed event: {redact(data[:80])!r}") from None
    if chunk.error is not None:
        detail = chunk.error if isinstance(chunk.error, str) else chunk.error.message
        raise BackendStreamError(f"server error mid-stream: {redact(detail)}")
    return chunk


class UsageAccumulator:
    """Merges `usage` (OpenAI/vLLM) and `timings` (llama.cpp) into one Usage."""

    def __init__(self) -> None:
        self.seen = False
        self.prompt_tokens: int | None = None
        self.cached_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.timings: dict[str, float] = {}

    def add(self, chunk: OpenAICompletion) -> None:
        if chunk.usage is not None:
            self.seen = True
            u = chunk.usage
            self.prompt_tokens = u.prompt_tokens if u.prompt_tokens is not None else None
            self.completion_tokens = u.completion_tokens
            if u.prompt_tokens_details and u.prompt_tokens_details.cached_tokens is not None:
                self.cached_tokens = u.prompt_tokens_details.cached_tokens
        t = chunk.timings
        if t is not None:
            self.seen = True
            if t.cache_n is not None:
                self.cached_tokens = t.cache_n
            if self.prompt_tokens is None and t.prompt_n is not None:
                # llama.cpp's prompt_n counts only the tokens it had to evaluate
                self.prompt_tokens = t.prompt_n + (t.cache_n or 0)
            if self.completion_tokens is None and t.predicted_n is not None:
                self.completion_tokens = t.predicted_n
            if t.prompt_ms is not None:
                self.timings["prompt_ms"] = t.prompt_ms
            if t.predicted_ms is not None:
                self.timings["predicted_ms"] = t.predicted_ms

    def usage(self) -> Usage:
        # what the server did not say stays None: unknown, not 0
        return Usage(
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            completion_tokens=self.completion_tokens,
            server_timings=dict(self.timings),
        )


def split_base_url(url: str) -> str:
    """Accept both 'http://host:8080' and 'http://host:8080/v1'."""
    text = url.strip().rstrip("/")
    return text[: -len("/v1")] if text.endswith("/v1") else text


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        url: str,
        model: str,
        *,
        profile: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        source = os.environ if env is None else env
        api_key = source.get("OPENAI_API_KEY", "").strip()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._edge = HttpEdge(
            split_base_url(url), timeout=timeout, headers=headers, transport=transport
        )
        self.url = self._edge.base_url
        self.model = model
        known = profile or profile_for_url(self.url)
        self.profile: Profile = get_profile(known or "generic")
        self.capabilities: Capabilities = self.profile.capabilities
        self._profile_settled = known is not None
        self._format: FormatMode | None = None
        """The response_format that worked, once one has."""
        self._discovering: anyio.Event | None = None
        """Set while one request finds the profile and the format; the others wait."""

    @property
    def format_mode(self) -> FormatMode | None:
        return self._format

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(url={self.url!r}, model={self.model!r}, profile={self.profile.name!r})"
        )

    def describe(self) -> str:
        return f"OpenAI-compatible ({self.profile.label}) at {self.url}, model {self.model}"

    async def aclose(self) -> None:
        await self._edge.aclose()

    async def list_model_entries(
        self, timeout: httpx.Timeout | None = None
    ) -> list[OpenAIModelEntry]:
        data = await self._edge.get_json("/v1/models", timeout=timeout)
        try:
            return OpenAIModelList.model_validate(data).data
        except ValidationError:
            raise BackendError(f"unexpected /v1/models answer from {self.url}") from None

    async def list_models(self, timeout: httpx.Timeout | None = None) -> list[str]:
        return [m.id for m in await self.list_model_entries(timeout) if m.id]

    async def detect_profile(self, timeout: httpx.Timeout | None = None) -> Profile:
        """Settle the profile from /v1/models `owned_by` (unless given or known by host).

        A server that cannot list models is generic; a connection failure propagates
        and leaves the profile unsettled, so the next call asks again."""
        if not self._profile_settled:
            try:
                entries = await self.list_model_entries(timeout)
            except BackendHTTPStatus:
                entries = []
            self.profile = get_profile(profile_for_owners(m.owned_by for m in entries))
            self.capabilities = self.profile.capabilities
            self._profile_settled = True
        return self.profile

    def payload(self, request: LLMRequest, mode: FormatMode) -> dict[str, Any]:
        """The JSON body of /v1/chat/completions (fields left unset are left out)."""
        schema = self._schema_for(request)
        response_format: OpenAIResponseFormat | None = None
        if mode == "json_schema" and schema is not None:
            response_format = OpenAIResponseFormat(
                type="json_schema",
                json_schema=OpenAIJsonSchema(name="plan", schema=schema, strict=True),
            )
        elif mode == "json_object_schema" and schema is not None:
            response_format = OpenAIResponseFormat(type="json_object", schema=schema)
        elif mode == "json_object":
            response_format = OpenAIResponseFormat(type="json_object")
        max_completion = self.profile.max_tokens_field == "max_completion_tokens"
        body = OpenAIChatRequest(
            model=self.model,
            messages=[
                OpenAIMessage(role="system", content=request.system),
                OpenAIMessage(role="user", content=request.prompt),
            ],
            stream=request.stream,
            stream_options=OpenAIStreamOptions(include_usage=True) if request.stream else None,
            response_format=response_format,
            max_tokens=None if max_completion else request.max_tokens,
            max_completion_tokens=request.max_tokens if max_completion else None,
            temperature=request.temperature,
            seed=request.seed if self.capabilities.seed else None,
        )
        payload = body.model_dump(mode="json", by_alias=True, exclude_none=True)
        payload.update(self.profile.think_fields(request.think, response_format is not None))
        return payload

    def _schema_for(self, request: LLMRequest) -> dict[str, Any] | None:
        if self.capabilities.schema_outside_prompt_cache and request.pinned_schema is not None:
            return request.pinned_schema
        return request.schema

    def _modes(self, request: LLMRequest) -> tuple[FormatMode, ...]:
        """The formats to try, best first: the remembered one, or the profile's chain."""
        if not self.capabilities.json_schema:
            return ("none",)
        if self._format is not None:
            return (self._format,)
        chain = self.profile.response_formats
        if self._schema_for(request) is None:
            chain = tuple(m for m in chain if m in ("json_object", "none")) or ("none",)
        return chain

    async def stream(self, request: LLMRequest) -> AsyncIterator[StreamEvent]:
        # Discovery (the profile from /v1/models, then the first response_format the
        # server accepts) happens once per backend: while one request discovers, the
        # others (parallel mode sends several at once) wait for it, then use the
        # format it found instead of each meeting the same refusals.
        while self._discovering is not None:
            await self._discovering.wait()
        discovering = self._format is None or not self._profile_settled
        if discovering:
            self._discovering = anyio.Event()
        try:
            if discovering:
                await self.detect_profile()
            modes = self._modes(request)
            for i, mode in enumerate(modes):
                last = i == len(modes) - 1
                try:
                    async with self._edge.open(
                        "POST", "/v1/chat/completions", json_body=self.payload(request, mode)
                    ) as resp:
                        # the server accepted this format: remember it for later requests
                        self._format = mode
                        discovering = self._discovered(discovering)
                        budget = TextBudget(
                            request.max_response_chars, f"response from {self.describe()}"
                        )
                        if request.stream:
                            async for event in self._read_stream(resp, budget):
                                yield event
                        else:
                            async for event in self._read_whole(resp, budget):
                                yield event
                        return
                except BackendHTTPStatus as exc:
                    # a refused response_format is answered before any byte of the body,
                    # so retrying with the next format cannot duplicate output
                    if (
                        last
                        or self._format is not None
                        or exc.status not in FORMAT_REJECTED_STATUSES
                    ):
                        raise
        finally:
            self._discovered(discovering)

    def _discovered(self, discovering: bool) -> bool:
        """End this request's discovery (if it was discovering): wake the waiters."""
        if discovering and self._discovering is not None:
            self._discovering.set()
            self._discovering = None
        return False

    async def _read_stream(
        self, resp: httpx.Response, budget: TextBudget
    ) -> AsyncIterator[StreamEvent]:
        usage = UsageAccumulator()
        decoder = SSEDecoder()
        finish: str | None = None
        got_text = False
        done = False
        async for piece in self._edge.iter_text(resp):
            for event in decoder.feed(piece):
                if event.event == "error":
                    detail = redact(event.data[:200], self._edge.secrets())
                    raise BackendStreamError(f"server error mid-stream: {detail}")
                if event.data.strip() == DONE:
                    done = True
                    break
                if not event.data.strip():
                    continue
                chunk = parse_completion(event.data)
                usage.add(chunk)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    thinking = choice.delta.thinking() if choice.delta else ""
                    if thinking:
                        budget.spend(thinking)
                        yield ThinkingDelta(thinking)
                    content = choice.delta.content if choice.delta else None
                    if content:
                        budget.spend(content)
                        got_text = True
                        yield TextDelta(content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
            if done:
                break
        if not done and finish is None:
            raise BackendConnectError(f"stream from {self.url} ended before [DONE]")
        if usage.seen:
            yield usage.usage()
        if finish is None:
            # [DONE] with no finish_reason: llama-cpp-python cut this stream off for a
            # newer request (nothing came); with text, servers that omit it
            finish = "stop" if got_text else "cancelled"
        yield Finished(finish)

    async def _read_whole(
        self, resp: httpx.Response, budget: TextBudget
    ) -> AsyncIterator[StreamEvent]:
        body = await self._edge.read_text(resp, whole_body_chars(budget.limit))
        chunk = parse_completion(body)
        usage = UsageAccumulator()
        usage.add(chunk)
        choice = next((c for c in chunk.choices if c.index == 0), None)
        thinking = choice.message.thinking() if choice and choice.message else ""
        if thinking:
            budget.spend(thinking)
            yield ThinkingDelta(thinking)
        content = choice.message.content if choice and choice.message else None
        if content:
            budget.spend(content)
            yield TextDelta(content)
        if usage.seen:
            yield usage.usage()
        yield Finished((choice.finish_reason if choice else None) or "stop")
