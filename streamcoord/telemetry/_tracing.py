"""A tracer provider configured from the standard ``OTEL_*`` environment variables.

Which exporter (read once, at ``configure_tracing``):

- ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``: no exporter.
- ``OTEL_TRACES_EXPORTER=console``: spans printed to stdout.
- ``OTEL_TRACES_EXPORTER=otlp``, or unset while ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set: OTLP, over gRPC or HTTP as
  ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` say
  (``grpc`` or ``http/protobuf``, the specification's default).
- nothing set: no exporter. Spans are still real (trace ids propagate through Kafka headers and
  show in logs); they are just not sent anywhere.

The exporters read their own endpoint, headers, timeout and TLS variables; the SDK reads
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER`` and ``OTEL_BSP_*``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from streamcoord.errors import ConfigError
from streamcoord.telemetry._ids import PresetIdGenerator

__all__ = ["TracingHandle", "configure_tracing", "exporter_from_env"]

_INSTRUMENTATION_NAME = "streamcoord"
_PROTOCOLS = ("grpc", "http/protobuf")


@dataclass(frozen=True)
class TracingHandle:
    """The configured provider; ``shutdown()`` on graceful exit flushes spans still buffered."""

    provider: TracerProvider
    exporter: SpanExporter | None

    def tracer(self, name: str = _INSTRUMENTATION_NAME) -> trace.Tracer:
        """A tracer from this provider (pass it to the span helpers)."""
        return self.provider.get_tracer(name)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span now; False if that did not finish in time."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and close the exporter; spans started afterwards are dropped."""
        self.provider.shutdown()


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() == "true"


def _protocol(environ: Mapping[str, str]) -> str:
    raw = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    protocol = raw.strip().lower()
    if protocol not in _PROTOCOLS:
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={raw!r} is not supported",
            hint=f"use one of {', '.join(_PROTOCOLS)}",
        )
    return protocol


def _otlp_exporter(protocol: str) -> SpanExporter:
    # Imported on demand: each transport pulls in its own stack (grpcio or requests).
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def _exporter_name(environ: Mapping[str, str]) -> str:
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        return named.split(",")[0].strip()
    has_endpoint = any(
        environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    return "otlp" if has_endpoint else "none"


def exporter_from_env(environ: Mapping[str, str] | None = None) -> SpanExporter | None:
    """The span exporter the ``OTEL_*`` variables ask for, or None for "export nothing"."""
    env = os.environ if environ is None else environ
    if _flag(env, "OTEL_SDK_DISABLED"):
        return None
    name = _exporter_name(env)
    if name == "none":
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        return _otlp_exporter(_protocol(env))
    raise ConfigError(
        f"OTEL_TRACES_EXPORTER={name!r} is not supported",
        hint="use otlp, console or none",
    )


def _resource(service_name: str, environ: Mapping[str, str]) -> Resource:
    # OTEL_SERVICE_NAME, when set, wins over the name the program passes (the spec's order).
    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    return Resource.create(attributes)


def configure_tracing(
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> TracingHandle:
    """Make a tracer provider for ``service_name`` and, by default, install it globally.

    Without ``exporter`` the ``OTEL_*`` variables choose one (see the module docstring) and
    spans go through a batch processor. An explicit ``exporter`` (tests, debugging) gets a
    synchronous processor, so each span is exported when it ends. The global provider can be set
    only once per process: tests pass ``set_global=False`` and use ``handle.tracer()``.
    """
    # PresetIdGenerator: spans of runs and attempts get the ids the core derived for them.
    provider = TracerProvider(
        resource=_resource(service_name, os.environ), id_generator=PresetIdGenerator()
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        exporter = exporter_from_env()
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return TracingHandle(provider=provider, exporter=exporter)
