"""Telemetry for the long-running entry points: tracing from the ``OTEL_*`` variables, JSON logs
with trace ids (rich text on a terminal), and an optional Prometheus endpoint; spans are flushed
when the command ends (a graceful shutdown)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["telemetry", "tracing_requested"]

log = logging.getLogger("streamcoord")


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the ``OTEL_*`` variables ask for spans to be exported."""
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return any(
        environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


@contextmanager
def telemetry(service_name: str, metrics_port: int | None = None) -> Iterator[None]:
    """Configure tracing, logs and (with ``metrics_port``) metrics around a command's work."""
    # OpenTelemetry is imported by the commands that run, not by every command's start.
    from streamcoord.telemetry import configure_logging, configure_metrics, configure_tracing  # noqa: PLC0415

    configure_logging()
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # Kafka 3.6+ brokers verify that a transactional produce's partition was added to the
    # transaction (KIP-890) and answer clients as old as aiokafka's protocol with a retryable
    # NOT_ENOUGH_REPLICAS until it is; aiokafka retries and logs each one as a warning.
    logging.getLogger("aiokafka.producer.sender").setLevel(logging.ERROR)
    # Tracing costs about a third of the coordinator's throughput; it is on only when the
    # standard variables name somewhere to send spans.
    tracing = configure_tracing(service_name) if tracing_requested() else None
    metrics = None
    if metrics_port is not None:
        metrics = configure_metrics(service_name, port=metrics_port)
        log.info("metrics on %s", metrics.url)
    try:
        yield
    finally:
        if metrics is not None:
            metrics.shutdown()
        if tracing is not None:
            tracing.shutdown()  # flushes the spans still buffered
