"""Trace context survives a trip through Kafka record headers."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from streamcoord.telemetry import KafkaHeaders, extract_context, inject_headers


def test_consumer_span_continues_the_producers_trace(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    headers: KafkaHeaders = [("ce_type", b"order.created")]
    with tracer.start_as_current_span("send"):
        inject_headers(headers)
    with tracer.start_as_current_span("process", context=extract_context(headers)):
        pass
    send, process = exporter.get_finished_spans()
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None
    assert process.parent.span_id == send.context.span_id
    assert process.parent.is_remote


def test_headers_use_w3c_names_and_keep_other_headers(tracer: Tracer) -> None:
    headers: KafkaHeaders = [("ce_id", b"1")]
    with tracer.start_as_current_span("send") as span:
        inject_headers(headers)
    names = [name for name, _ in headers]
    assert names == ["ce_id", "traceparent"]
    traceparent = dict(headers)["traceparent"].decode()
    assert traceparent.split("-")[1] == trace.format_trace_id(span.get_span_context().trace_id)


def test_injecting_twice_replaces_instead_of_duplicating(tracer: Tracer) -> None:
    headers: KafkaHeaders = []
    with tracer.start_as_current_span("first"):
        inject_headers(headers)
    with tracer.start_as_current_span("second") as second:
        inject_headers(headers)
    assert [name for name, _ in headers] == ["traceparent"]
    context = trace.get_current_span(extract_context(headers)).get_span_context()
    assert context.span_id == second.get_span_context().span_id


def test_explicit_context_is_injected_rather_than_the_current_one(tracer: Tracer) -> None:
    with tracer.start_as_current_span("upstream") as upstream:
        saved = trace.set_span_in_context(upstream)
    headers = inject_headers([], context=saved)
    extracted = trace.get_current_span(extract_context(headers)).get_span_context()
    assert extracted.span_id == upstream.get_span_context().span_id


def test_tracestate_and_header_name_case_are_honoured() -> None:
    headers = [
        ("TraceParent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("tracestate", b"vendor=value"),
    ]
    context = trace.get_current_span(extract_context(headers)).get_span_context()
    assert f"{context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert context.trace_state.get("vendor") == "value"


def test_records_without_or_with_broken_trace_headers_start_a_new_trace() -> None:
    for headers in (None, [], [("traceparent", b"\xff\xfe not a traceparent")]):
        context = trace.get_current_span(extract_context(headers)).get_span_context()
        assert not context.is_valid


def test_nothing_is_injected_outside_a_span() -> None:
    assert inject_headers([]) == []
