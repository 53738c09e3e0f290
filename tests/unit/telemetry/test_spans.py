"""Spans carry the messaging conventions' names, kinds and attributes, and link fan-in upstreams."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from streamcoord.telemetry import (
    KafkaMessage,
    Operation,
    RunAttributes,
    extract_context,
    fan_in,
    inject_headers,
    messaging_span,
    run_span,
)

RUN = RunAttributes(pipeline="etl", run_id="r-1", stage="load", attempt=2, run_key="2024-01-01")


def test_send_span_is_named_and_attributed_by_the_conventions(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    message = KafkaMessage(topic="triggers", key=b"etl/r-1", message_id="ev-9")
    with messaging_span(Operation.SEND, message, run=RUN, tracer=tracer):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "send triggers"
    assert span.kind is SpanKind.PRODUCER
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.destination.name": "triggers",
        "messaging.kafka.message.key": "etl/r-1",
        "messaging.message.id": "ev-9",
        "streamcoord.pipeline": "etl",
        "streamcoord.run_id": "r-1",
        "streamcoord.stage": "load",
        "streamcoord.attempt": 2,
        "streamcoord.run_key": "2024-01-01",
    }


def test_process_span_records_where_the_message_came_from(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    message = KafkaMessage(
        topic="events", key="k", partition=3, offset=41, consumer_group="coordinator"
    )
    with messaging_span(Operation.PROCESS, message, tracer=tracer, attributes={"extra": 1}):
        pass
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "process events"
    assert span.kind is SpanKind.CONSUMER
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.partition.id"] == "3"
    assert attributes["messaging.kafka.offset"] == 41
    assert attributes["messaging.consumer.group.name"] == "coordinator"
    assert attributes["extra"] == 1
    assert not any(name.startswith("streamcoord.") for name in attributes)


def test_receive_is_a_poll_by_a_consumer(tracer: Tracer, exporter: InMemorySpanExporter) -> None:
    with messaging_span(Operation.RECEIVE, KafkaMessage(topic="events"), tracer=tracer):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER
    assert (span.attributes or {})["messaging.operation.name"] == "poll"


def test_unset_run_attributes_are_left_out() -> None:
    assert RunAttributes(pipeline="etl", attempt=0).as_attributes() == {
        "streamcoord.pipeline": "etl",
        "streamcoord.attempt": 0,
    }


def _upstream(tracer: Tracer, name: str) -> Context:
    """A context as a consumer sees it: extracted from the headers of an upstream's record."""
    with tracer.start_as_current_span(name):
        return extract_context(inject_headers([]))


def test_fan_in_parents_on_the_first_upstream_and_links_every_upstream(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("run"):
        upstreams = [_upstream(tracer, "stage a"), _upstream(tracer, "stage b")]
    parent, links = fan_in([Context(), *upstreams, upstreams[0]])
    with run_span("stage join", run=RUN, parent=parent, links=links, tracer=tracer):
        pass
    spans = {span.name: span for span in exporter.get_finished_spans()}
    join, a, b = spans["stage join"], spans["stage a"], spans["stage b"]
    assert join.parent is not None
    assert join.parent.span_id == a.context.span_id
    assert join.context.trace_id == spans["run"].context.trace_id
    assert [link.context.span_id for link in join.links] == [a.context.span_id, b.context.span_id]


def test_fan_in_without_any_valid_upstream_starts_a_new_trace() -> None:
    assert fan_in([Context(), extract_context([])]) == (None, [])


def test_run_span_continues_the_current_span_by_default(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("run") as run, run_span("decide", tracer=tracer):
        assert trace.get_current_span() is not run
    decide = next(span for span in exporter.get_finished_spans() if span.name == "decide")
    assert decide.parent is not None
    assert decide.parent.span_id == run.get_span_context().span_id


def test_an_escaping_exception_marks_the_span_as_failed(
    tracer: Tracer, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(RuntimeError), run_span("stage", tracer=tracer):
        raise RuntimeError("boom")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]
