"""A tracer on a provider made for each test, exporting into memory (the global one stays unset)."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from streamcoord.telemetry import TracingHandle, configure_tracing


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> TracingHandle:
    return configure_tracing("streamcoord-test", exporter=exporter, set_global=False)


@pytest.fixture
def tracer(tracing: TracingHandle) -> Tracer:
    return tracing.tracer()
