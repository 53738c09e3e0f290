"""Telemetry for the long-running entry points: tracing from the ``OTEL_*`` variables, JSON logs
with trace ids (rich text on a terminal), and an optional Prometheus endpoint; spans are flushed
when the command ends (a graceful shutdown)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from streamcoord.telemetry import configure_logging, configure_metrics, configure_tracing

__all__ = ["telemetry"]

log = logging.getLogger("streamcoord")


@contextmanager
def telemetry(service_name: str, metrics_port: int | None = None) -> Iterator[None]:
    """Configure tracing, logs and (with ``metrics_port``) metrics around a command's work."""
    configure_logging()
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    tracing = configure_tracing(service_name)
    metrics = None
    if metrics_port is not None:
        metrics = configure_metrics(service_name, port=metrics_port)
        log.info("metrics on %s", metrics.url)
    try:
        yield
    finally:
        if metrics is not None:
            metrics.shutdown()
        tracing.shutdown()  # flushes the spans still buffered
