"""OpenTelemetry export of planning (the optional `otel` extra): rounds show up in
Langfuse, Phoenix, Jaeger or Tempo.

A `MatchObserver` that folds the same planner events the trace folds, at the edge:
nothing in the planner imports opentelemetry. Per round a span (`plan_round`), per
request attempt a child span named as the GenAI semantic conventions say (`chat
{model}`, with gen_ai.operation.name, gen_ai.provider.name and the older gen_ai.system,
gen_ai.request.model, gen_ai.usage.input_tokens/output_tokens where the server said
them, gen_ai.response.finish_reasons, error.type), per agent a span event on its round
(plan delivered: tier, cause, cache; fell back: cause). Metrics:
gen_ai.client.operation.duration and gen_ai.client.operation.time_to_first_chunk
(seconds), gen_ai.client.token.usage ({token}, by gen_ai.token.type).

Instants are the planner's clock (perf_counter or virtual seconds), laid on the wall
clock from the first event on, so spans keep their real lengths and order.

`--otel` builds the SDK's providers with the OTLP/HTTP exporters, which read
OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) themselves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.errors import ConfigError
from planner.events import (
    AgentFellBack,
    FirstToken,
    PlanDelivered,
    PlanEvent,
    RequestSent,
    ResponseEnded,
    RoundCancelled,
    RoundDone,
    RoundStarted,
    ThinkingReceived,
)

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from game.rules.steps import Step
    from planner.core import PlanningRound

SCOPE = "squadmind.planner"
OPERATION = "chat"
INSTALL = "--otel needs the otel extra: pip install 'squadmind[otel]'"


@dataclass
class _Request:
    agent_ids: tuple[int, ...]
    first_chunk_at: float | None = None
    thinking_at: float | None = None


@dataclass
class _Round:
    span: Span
    requests: dict[int, _Request] = field(default_factory=dict)


class OtelObserver:
    """Spans and metrics from planner events (a `MatchObserver`)."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        *,
        provider: str,
        model: str,
        owned: bool = False,
    ) -> None:
        """`provider`: gen_ai.provider.name (openai, ollama, vllm, llamacpp, sim...).
        `owned`: this observer made the providers, so it flushes and shuts them down at
        the match's end."""
        self._providers = (tracer_provider, meter_provider)
        self._owned = owned
        self.tracer = tracer_provider.get_tracer(SCOPE)
        meter = meter_provider.get_meter(SCOPE)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration"
        )
        self.first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to the first chunk of a streamed answer",
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used"
        )
        self.base = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": provider,
            "gen_ai.system": provider,
            "gen_ai.request.model": model,
        }
        self.model = model
        self._rounds: dict[int, _Round] = {}
        self._origin: tuple[float, int] | None = None

    # ------------------------------------------------------------- time

    def ns(self, at: float) -> int:
        """A planner instant as epoch nanoseconds (anchored at the first event seen)."""
        if self._origin is None:
            self._origin = (at, time.time_ns())
        at0, ns0 = self._origin
        return ns0 + round((at - at0) * 1e9)

    # ------------------------------------------------------------- observer

    def on_round_submitted(self, tick: int, planning: PlanningRound) -> None:
        return None

    def on_plan_applied(
        self, tick: int, unit_id: int, steps: tuple[Step, ...], source: Any
    ) -> None:
        return None

    def on_match_end(self, tick: int, winner: str, state_hash: str) -> None:
        for round_id in list(self._rounds):
            self._end_round(round_id, None, {"squadmind.round.left_open": True})
        if self._owned:
            tracer_provider, meter_provider = self._providers
            for provider in (tracer_provider, meter_provider):
                shutdown = getattr(provider, "shutdown", None)
                if shutdown is not None:
                    shutdown()

    def on_event(self, event: PlanEvent) -> None:
        match event:
            case RoundStarted():
                self._started(event)
            case RequestSent():
                live = self._rounds.get(event.round_id)
                if live is not None:
                    live.requests[event.request_id] = _Request(event.agent_ids)
            case FirstToken():
                request = self._request(event.round_id, event.request_id)
                if request is not None and request.first_chunk_at is None:
                    request.first_chunk_at = event.at
                    self.first_chunk.record(event.ttft_ms / 1000, self.base)
            case ThinkingReceived():
                request = self._request(event.round_id, event.request_id)
                if request is not None and request.thinking_at is None:
                    request.thinking_at = event.at
            case ResponseEnded():
                self._response(event)
            case PlanDelivered():
                self._plan(event)
            case AgentFellBack():
                live = self._rounds.get(event.round_id)
                if live is not None:
                    live.span.add_event(
                        "squadmind.agent.fell_back",
                        {
                            "squadmind.agent.id": event.agent_id,
                            "squadmind.tier.from": event.from_tier.value,
                            "squadmind.tier.to": event.to_tier.value,
                            "squadmind.fallback.cause": event.cause,
                        },
                        timestamp=self.ns(event.at),
                    )
            case RoundDone():
                s = event.stats
                attributes: dict[str, Any] = {
                    "squadmind.round.requests": s.requests,
                    "squadmind.round.time_to_all_ms": s.time_to_all_ms,
                }
                if s.ttfp_ms is not None:
                    attributes["squadmind.round.ttfp_ms"] = s.ttfp_ms
                self._end_round(event.round_id, event.at, attributes)
            case RoundCancelled():
                self._end_round(event.round_id, event.at, {"squadmind.round.cancelled": True})
            case _:
                pass

    # ------------------------------------------------------------- pieces

    def _started(self, event: RoundStarted) -> None:
        span = self.tracer.start_span(
            "plan_round",
            start_time=self.ns(event.at),
            attributes={
                "squadmind.round.id": event.round_id,
                "squadmind.squad": event.squad,
                "squadmind.round.mode": event.mode,
                "squadmind.round.stream": event.stream,
                "squadmind.round.agents": list(event.agent_ids),
                "gen_ai.request.model": self.model,
            },
        )
        self._rounds[event.round_id] = _Round(span)

    def _request(self, round_id: int, request_id: int) -> _Request | None:
        live = self._rounds.get(round_id)
        return None if live is None else live.requests.get(request_id)

    def _response(self, event: ResponseEnded) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        live = self._rounds.get(event.round_id)
        request = self._request(event.round_id, event.request_id)
        if live is None or request is None:
            return
        attributes: dict[str, Any] = {
            **self.base,
            "gen_ai.response.finish_reasons": [event.finish_reason],
            "squadmind.request.id": event.request_id,
            "squadmind.request.agents": list(request.agent_ids),
        }
        usage = (
            ("gen_ai.usage.input_tokens", "input", event.prompt_tokens),
            ("gen_ai.usage.output_tokens", "output", event.completion_tokens),
        )
        for key, _, value in usage:
            if value is not None:  # unknown stays absent, never 0
                attributes[key] = value
        if event.cached_tokens is not None:
            attributes["gen_ai.usage.cache_read.input_tokens"] = event.cached_tokens
        error_type = event.error_cause or None
        if error_type is not None:
            attributes["error.type"] = error_type
        span = self.tracer.start_span(
            f"{OPERATION} {self.model}",
            context=trace.set_span_in_context(live.span),
            kind=trace.SpanKind.CLIENT,
            start_time=self.ns(event.started_at),
            attributes=attributes,
        )
        if request.thinking_at is not None:
            span.add_event("gen_ai.thinking.start", timestamp=self.ns(request.thinking_at))
        if request.first_chunk_at is not None:
            span.add_event("gen_ai.first_chunk", timestamp=self.ns(request.first_chunk_at))
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR, event.error))
        span.end(end_time=self.ns(event.at))
        metric = dict(self.base)
        if error_type is not None:
            metric["error.type"] = error_type
        self.duration.record(max(0.0, event.at - event.started_at), metric)
        for _, kind, value in usage:
            if value is not None:
                self.tokens.record(value, {**self.base, "gen_ai.token.type": kind})

    def _plan(self, event: PlanDelivered) -> None:
        live = self._rounds.get(event.round_id)
        if live is None:
            return
        outcome = event.outcome
        attributes: dict[str, Any] = {
            "squadmind.agent.id": outcome.agent_id,
            "squadmind.tier": outcome.tier.value,
            "squadmind.plan.from_cache": outcome.from_cache,
            "squadmind.plan.wait_ms": event.plan_wait_ms,
            "squadmind.plan.steps": len(outcome.steps),
        }
        if outcome.cause is not None:
            attributes["squadmind.fallback.cause"] = outcome.cause
        if event.request_id is not None:
            attributes["squadmind.request.id"] = event.request_id
        live.span.add_event("squadmind.plan.delivered", attributes, timestamp=self.ns(event.at))

    def _end_round(self, round_id: int, at: float | None, attributes: dict[str, Any]) -> None:
        live = self._rounds.pop(round_id, None)
        if live is None:
            return
        live.span.set_attributes(attributes)
        live.span.end(end_time=None if at is None else self.ns(at))


def otlp_observer(provider: str, model: str) -> OtelObserver:
    """The `--otel` observer: the SDK's providers with OTLP/HTTP exporters (endpoint and
    headers from OTEL_EXPORTER_OTLP_* as the SDK reads them). A ConfigError naming the
    extra when it is not installed."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigError(INSTALL) from None
    resource = Resource.create({"service.name": "squadmind"})
    tracer_provider = SdkTracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    meter_provider = SdkMeterProvider(resource=resource, metric_readers=[reader])
    return OtelObserver(tracer_provider, meter_provider, provider=provider, model=model, owned=True)
