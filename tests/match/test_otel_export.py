"""OpenTelemetry export, checked with the SDK's in-memory exporter and metric reader: a
span per round and per request (GenAI semantic-convention names), per-agent plan events,
the three GenAI client metrics, unknown usage left out (never 0)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from game.match.otel import INSTALL, OtelObserver, otlp_observer
from planner.errors import ConfigError
from planner.events import PlanEvent, ResponseEnded, ThinkingReceived
from planner.settings import PlannerSettings
from tests.planning_helpers import ScriptedBackend, make_core, planning_round, run_round

COMPACT = '{"plans":[[2,[["Scan"]]],[4,[["Scan"]]],[6,[["Wait"]]],[8,[["Scan"]]]]}'


def exported(events: Sequence[PlanEvent]) -> tuple[list[ReadableSpan], dict[str, Any]]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    observer = OtelObserver(
        tracer_provider, MeterProvider(metric_readers=[reader]), provider="llamacpp", model="tiny"
    )
    for event in events:
        observer.on_event(event)
    observer.on_match_end(0, "red", "hash")
    data = reader.get_metrics_data()
    metrics = {
        m.name: m
        for rm in (data.resource_metrics if data else [])
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    return list(spans.get_finished_spans()), metrics


def a_round(thinking: bool = False) -> list[PlanEvent]:
    backend = ScriptedBackend([COMPACT])
    events = run_round(
        make_core(backend),
        PlannerSettings(mode="batched", plan_format="compact"),
        planning_round(scenario="skirmish"),
    )
    if thinking:  # a reasoning model's thinking, as the runner emits it, before the answer
        at = next(e for e in events if isinstance(e, ResponseEnded)).started_at
        events.insert(2, ThinkingReceived(1, "red", 1, "hmm", at))
    return events


def test_a_span_per_round_and_per_request_with_genai_names() -> None:
    spans, _ = exported(a_round(thinking=True))
    rounds = [s for s in spans if s.name == "plan_round"]
    requests = [s for s in spans if s.name == "chat tiny"]
    assert len(rounds) == 1 and len(requests) == 1
    request, round_span = requests[0], rounds[0]
    assert request.parent is not None
    assert request.parent.span_id == round_span.context.span_id
    attrs = dict(request.attributes or {})
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "llamacpp"
    assert attrs["gen_ai.request.model"] == "tiny"
    assert attrs["gen_ai.usage.input_tokens"] == 10  # what the scripted server reported
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert [e.name for e in request.events] == ["gen_ai.thinking.start", "gen_ai.first_chunk"]
    assert round_span.start_time is not None and request.start_time is not None
    assert round_span.start_time <= request.start_time
    delivered = [e for e in round_span.events if e.name == "squadmind.plan.delivered"]
    agents = sorted(dict(e.attributes or {})["squadmind.agent.id"] for e in delivered)
    assert agents == [2, 4, 6, 8]


def test_genai_client_metrics() -> None:
    _, metrics = exported(a_round())
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.token.usage",
    } <= metrics.keys()
    usage = metrics["gen_ai.client.token.usage"].data.data_points
    kinds = sorted(dict(p.attributes or {})["gen_ai.token.type"] for p in usage)
    assert kinds == ["input", "output"]
    assert metrics["gen_ai.client.operation.duration"].unit == "s"


def test_unknown_usage_is_left_out_not_zero() -> None:
    events = [e if not isinstance(e, ResponseEnded) else _without_usage(e) for e in a_round()]
    spans, metrics = exported(events)
    request = next(s for s in spans if s.name == "chat tiny")
    assert "gen_ai.usage.input_tokens" not in (request.attributes or {})
    assert "gen_ai.client.token.usage" not in metrics


def _without_usage(event: ResponseEnded) -> ResponseEnded:
    return replace(event, prompt_tokens=None, cached_tokens=None, completion_tokens=None)


def test_otel_without_its_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ConfigError) as info:
        otlp_observer("ollama", "m")
    assert info.value.message == INSTALL
