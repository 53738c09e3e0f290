"""Telemetry: traces, metrics and logs around the pure core (never inside it).

- ``configure_tracing(service_name)``: a tracer provider from the ``OTEL_*`` variables; call
  ``handle.shutdown()`` on graceful exit to flush spans.
- ``inject_headers`` / ``extract_context``: W3C trace context in Kafka record headers.
- ``messaging_span``, ``run_span``, ``fan_in``: spans after the messaging semantic conventions,
  with ``streamcoord.*`` run attributes and links for fan-in.
- ``configure_metrics(service_name)``: a Prometheus scrape endpoint for the instruments in
  ``streamcoord.telemetry.metrics``.
- ``configure_logging()``: JSON log lines with trace and span ids (rich text on a terminal).
"""

from __future__ import annotations

from streamcoord.telemetry import metrics
from streamcoord.telemetry._ids import PresetIdGenerator, preset_ids
from streamcoord.telemetry._logging import JsonFormatter, TraceContextFilter, configure_logging
from streamcoord.telemetry._prometheus import DEFAULT_METRICS_PORT, MetricsHandle, configure_metrics
from streamcoord.telemetry._propagation import (
    HeaderGetter,
    HeaderSetter,
    KafkaHeaders,
    extract_context,
    inject_headers,
)
from streamcoord.telemetry._spans import (
    KafkaMessage,
    Operation,
    RunAttributes,
    fan_in,
    links_to,
    messaging_attributes,
    messaging_span,
    run_span,
)
from streamcoord.telemetry._tracing import TracingHandle, configure_tracing, exporter_from_env

__all__ = [
    "DEFAULT_METRICS_PORT",
    "HeaderGetter",
    "HeaderSetter",
    "JsonFormatter",
    "KafkaHeaders",
    "KafkaMessage",
    "MetricsHandle",
    "Operation",
    "PresetIdGenerator",
    "RunAttributes",
    "TraceContextFilter",
    "TracingHandle",
    "configure_logging",
    "configure_metrics",
    "configure_tracing",
    "exporter_from_env",
    "extract_context",
    "fan_in",
    "inject_headers",
    "links_to",
    "messaging_attributes",
    "messaging_span",
    "metrics",
    "preset_ids",
    "run_span",
]
