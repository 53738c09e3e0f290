"""Spans sent by ``configure_tracing`` over OTLP arrive in a real Jaeger as one connected trace.

The trace is read back through Jaeger's query API (``/api/v3/traces/<trace_id>``, OTLP JSON), the
way an operator opens a run's trace.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from streamcoord.devtools.jaeger import JaegerSettings
from streamcoord.telemetry import (
    KafkaHeaders,
    KafkaMessage,
    Operation,
    RunAttributes,
    configure_tracing,
    extract_context,
    fan_in,
    inject_headers,
    messaging_span,
    run_span,
)

RUN = RunAttributes(pipeline="etl", run_id="r-42", run_key="2024-01-01")


def _fetch_trace(
    settings: JaegerSettings, trace_id: str, expected_spans: int
) -> list[dict[str, Any]]:
    """The trace's spans once all ``expected_spans`` arrived (404 until the first does)."""
    url = f"{settings.query_url}/api/v3/traces/{trace_id}"
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    for _ in range(200):  # bounded in count and in time
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1
                body = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        else:
            spans = [
                span
                for resource in body["result"]["resourceSpans"]
                for scope in resource["scopeSpans"]
                for span in scope["spans"]
            ]
            if len(spans) >= expected_spans:
                return spans
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)  # Jaeger gives no notification to await; poll its API
    pytest.fail(f"Jaeger had {len(spans)} of {expected_spans} spans of {trace_id} after 20s")


def _send_run_trace(tracer: trace.Tracer) -> str:
    """A run: root, a stage handing a trigger over Kafka headers, a join linking two stages."""
    with run_span("run etl", run=RUN, tracer=tracer) as root:
        headers: KafkaHeaders = []
        with messaging_span(
            Operation.SEND, KafkaMessage("triggers", key="etl/r-42"), run=RUN, tracer=tracer
        ):
            inject_headers(headers)
        upstream_a = extract_context(headers)
        with messaging_span(
            Operation.PROCESS,
            KafkaMessage("triggers", key="etl/r-42"),
            run=RunAttributes(pipeline="etl", run_id="r-42", stage="a", attempt=1),
            parent=upstream_a,
            tracer=tracer,
        ):
            upstream_b = extract_context(inject_headers([]))
        parent, links = fan_in([upstream_a, upstream_b])
        with run_span(
            "stage join", run=RUN, parent=parent, links=links, kind=SpanKind.CONSUMER, tracer=tracer
        ):
            pass
    return trace.format_trace_id(root.get_span_context().trace_id)


@pytest.mark.parametrize(
    ("protocol", "port_of"), [("grpc", "otlp_grpc"), ("http/protobuf", "otlp_http")]
)
def test_a_run_is_one_connected_trace_in_jaeger(
    jaeger: JaegerSettings, monkeypatch: pytest.MonkeyPatch, protocol: str, port_of: str
) -> None:
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{getattr(jaeger.ports, port_of)}"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    handle = configure_tracing("streamcoord-jaeger-test", set_global=False)
    trace_id = _send_run_trace(handle.tracer())
    handle.shutdown()  # flushes the batch processor: what a graceful exit does

    spans = {span["name"]: span for span in _fetch_trace(jaeger, trace_id, expected_spans=4)}
    assert set(spans) == {"run etl", "send triggers", "process triggers", "stage join"}
    assert {span["traceId"] for span in spans.values()} == {trace_id}
    root, send, process, join = (
        spans[name] for name in ("run etl", "send triggers", "process triggers", "stage join")
    )
    assert not root.get("parentSpanId")
    assert send["parentSpanId"] == root["spanId"]
    assert process["parentSpanId"] == send["spanId"]  # continued from the Kafka headers
    assert join["parentSpanId"] == send["spanId"]  # fan-in: parented on the first upstream
    assert [(link["traceId"], link["spanId"]) for link in join["links"]] == [
        (trace_id, send["spanId"]),
        (trace_id, process["spanId"]),
    ]
    attributes = {item["key"]: item["value"] for item in process["attributes"]}
    assert attributes["messaging.destination.name"] == {"stringValue": "triggers"}
    assert attributes["streamcoord.run_id"] == {"stringValue": "r-42"}
