"""A meter provider whose metrics are scraped by Prometheus over HTTP on 127.0.0.1.

The port and host come from the arguments, else ``OTEL_EXPORTER_PROMETHEUS_PORT`` /
``OTEL_EXPORTER_PROMETHEUS_HOST`` (the specification's names), else 9464 on 127.0.0.1.

prometheus_client's server already answers an oversized request line 414, oversized or too many
headers 431 and garbage 400; a client that resets the connection, though, made the standard
library print a traceback to stderr. Such errors are logged on one debug line instead, and a
client gets :data:`READ_TIMEOUT_S` to send its request rather than holding a thread forever.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics as metrics_api
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from prometheus_client import CollectorRegistry, start_http_server

from streamcoord.errors import ConfigError, EnvironmentProblem
from streamcoord.telemetry.metrics import METER_NAME, Instruments

__all__ = ["DEFAULT_METRICS_PORT", "MetricsHandle", "configure_metrics"]

log = logging.getLogger(__name__)

DEFAULT_METRICS_PORT = 9464
READ_TIMEOUT_S = 10.0


@dataclass
class MetricsHandle:
    """A running scrape endpoint; ``shutdown()`` closes it."""

    provider: MeterProvider
    instruments: Instruments
    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        """Where Prometheus scrapes: ``http://host:port/metrics``."""
        return f"http://{self.host}:{self.port}/metrics"

    def shutdown(self) -> None:
        """Stop serving and release the provider."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.provider.shutdown()


def _port(port: int | None) -> int:
    if port is not None:
        return port
    raw = os.environ.get("OTEL_EXPORTER_PROMETHEUS_PORT", str(DEFAULT_METRICS_PORT))
    if not raw.isdigit():
        raise ConfigError(
            f"OTEL_EXPORTER_PROMETHEUS_PORT={raw!r} is not a port number",
            hint="set it to a number between 1 and 65535, or 0 for any free port",
        )
    return int(raw)


def configure_metrics(
    service_name: str,
    *,
    port: int | None = None,
    host: str | None = None,
    set_global: bool = True,
) -> MetricsHandle:
    """Serve metrics for Prometheus and, by default, make them the global meter provider.

    With ``set_global`` the module-level instruments in ``streamcoord.telemetry.metrics`` start
    recording; that can happen once per process. With ``set_global=False`` (tests) use
    ``handle.instruments``. ``port=0`` picks a free port (read it back from ``handle.port``).
    """
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    resource = Resource.create({SERVICE_NAME: service_name})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    address = host or os.environ.get("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    try:
        server, thread = start_http_server(_port(port), addr=address, registry=registry)
    except OSError as error:
        provider.shutdown()
        raise EnvironmentProblem(
            f"cannot serve metrics on {address}:{_port(port)}: {error.strerror}",
            hint="pick another port (OTEL_EXPORTER_PROMETHEUS_PORT)",
        ) from error
    _quieten(server)
    if set_global:
        metrics_api.set_meter_provider(provider)
    instruments = Instruments(provider.get_meter(METER_NAME))
    actual_port = int(server.server_port)
    return MetricsHandle(provider, instruments, address, actual_port, server, thread)


def _quieten(server: WSGIServer) -> None:
    """Time out idle clients and log broken connections without a traceback."""
    handler = server.RequestHandlerClass
    if isinstance(handler, type):  # always (typeshed only promises a callable)
        server.RequestHandlerClass = type(handler.__name__, (handler,), {"timeout": READ_TIMEOUT_S})
    server.handle_error = _log_request_error  # type: ignore[method-assign]  # per instance


def _log_request_error(request: object, client_address: object) -> None:
    error = sys.exc_info()[1]
    if isinstance(error, OSError):  # reset, broken pipe, timeout: the client's doing
        log.debug("metrics request from %s ended early: %r", client_address, error)
    else:
        log.warning("metrics request from %s failed: %r", client_address, error)
