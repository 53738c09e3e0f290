"""The OTEL_* variables choose the exporter; shutdown flushes what is still buffered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from streamcoord.errors import ConfigError
from streamcoord.telemetry import configure_tracing, exporter_from_env


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, type(None)),
        ({"OTEL_TRACES_EXPORTER": "none"}, type(None)),
        ({"OTEL_TRACES_EXPORTER": "console"}, ConsoleSpanExporter),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, HttpExporter),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, HttpExporter),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, HttpExporter),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            HttpExporter,
        ),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, type(None)),
    ],
)
def test_environment_chooses_the_exporter(environ: dict[str, str], expected: type) -> None:
    assert type(exporter_from_env(environ)) is expected


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
    ],
)
def test_unsupported_choices_are_config_errors_naming_the_variable(
    environ: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match="OTEL_"):
        exporter_from_env(environ)


class _Collector(BaseHTTPRequestHandler):
    """Records the paths OTLP/HTTP exports are posted to."""

    posted: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.posted.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads ``posted``."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[str]]]:
    posted: list[str] = []
    handler = type("Handler", (_Collector,), {"posted": posted})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", posted
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_shutdown_flushes_spans_the_batch_processor_still_holds(
    monkeypatch: pytest.MonkeyPatch, collector: tuple[str, list[str]]
) -> None:
    endpoint, posted = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # nothing leaves on a timer
    handle = configure_tracing("flush-test", set_global=False)
    with handle.tracer().start_as_current_span("last words"):
        pass
    assert posted == []
    handle.shutdown()
    assert posted == ["/v1/traces"]


def test_service_name_comes_from_the_program_unless_the_environment_names_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    handle = configure_tracing("coordinator", set_global=False)
    assert handle.provider.resource.attributes["service.name"] == "coordinator"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "coordinator-eu")
    handle = configure_tracing("coordinator", set_global=False)
    assert handle.provider.resource.attributes["service.name"] == "coordinator-eu"
