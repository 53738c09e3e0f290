"""The Prometheus scrape endpoint shows every instrument, and the values move as code records."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamcoord.errors import EnvironmentProblem
from streamcoord.telemetry import MetricsHandle, configure_metrics, metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def endpoint() -> Iterator[MetricsHandle]:
    handle = configure_metrics("metrics-test", port=0, set_global=False)
    yield handle
    handle.shutdown()


def _scrape(handle: MetricsHandle) -> Samples:
    """Every sample on the endpoint, keyed by name and labels (over real HTTP)."""
    with urllib.request.urlopen(handle.url, timeout=5) as response:  # noqa: S310 - 127.0.0.1
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    matches = [value for (key, got), value in samples.items() if key == name and wanted <= got]
    assert matches, f"{name} {labels} not scraped"
    return sum(matches)


def test_endpoint_serves_on_loopback_at_the_port_it_reports(endpoint: MetricsHandle) -> None:
    assert endpoint.host == "127.0.0.1"
    assert endpoint.port > 0
    assert endpoint.url == f"http://127.0.0.1:{endpoint.port}/metrics"


def test_counters_move_per_attribute(endpoint: MetricsHandle) -> None:
    consumed = endpoint.instruments.events_consumed
    consumed.add(1, {"type": "order.created"})
    first = _scrape(endpoint)
    consumed.add(2, {"type": "order.created"})
    consumed.add(1, {"type": "order.paid"})
    second = _scrape(endpoint)
    name = "streamcoord_events_consumed_total"
    assert _value(first, name, type="order.created") == 1
    assert _value(second, name, type="order.created") == 3
    assert _value(second, name, type="order.paid") == 1


def test_histograms_gauges_and_up_down_counters_are_scraped(endpoint: MetricsHandle) -> None:
    instruments = endpoint.instruments
    instruments.decision_duration.record(0.0003)
    instruments.decision_duration.record(0.002)
    instruments.stage_duration.record(42.0, {"pipeline": "etl", "stage": "load"})
    instruments.active_runs.add(2, {"pipeline": "etl"})
    instruments.active_runs.add(-1, {"pipeline": "etl"})
    instruments.consumer_lag.set(17, {"topic": "events", "partition": "0"})
    samples = _scrape(endpoint)
    assert _value(samples, "streamcoord_decision_duration_seconds_count") == 2
    assert _value(samples, "streamcoord_decision_duration_seconds_bucket", le="0.0005") == 1
    assert _value(samples, "streamcoord_stage_duration_seconds_sum", stage="load") == 42.0
    assert _value(samples, "streamcoord_runs_active", pipeline="etl") == 1
    assert _value(samples, "streamcoord_consumer_lag", partition="0") == 17


def test_every_instrument_named_by_issue_7_exists_and_the_module_exposes_it(
    endpoint: MetricsHandle,
) -> None:
    names = [
        "events_consumed", "decision_duration", "event_to_trigger_latency", "triggers_published",
        "stage_outcomes", "stage_duration", "active_runs", "dead_letters", "consumer_lag",
        "restore_duration", "events_forwarded",
        "policy_violations",  # issue 17
    ]  # fmt: skip
    assert sorted(names) == sorted(vars(endpoint.instruments))
    assert set(names) <= set(metrics.__all__)


_GLOBAL_PROGRAM = """
import subprocess
import sys
import urllib.request
from streamcoord.telemetry import configure_metrics, metrics
metrics.triggers_published.add(1, {"pipeline": "early"})  # before configuring: not recorded
handle = configure_metrics("global-test", port=0)
metrics.triggers_published.add(5, {"pipeline": "etl"})
print(urllib.request.urlopen(handle.url, timeout=5).read().decode())
handle.shutdown()
"""


def test_module_level_instruments_record_once_the_global_provider_is_configured() -> None:
    # A process of its own: the global meter provider can be set only once per process.
    result = subprocess.run(
        [sys.executable, "-c", _GLOBAL_PROGRAM],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    samples = {
        (sample.name, sample.labels.get("pipeline")): sample.value
        for family in text_string_to_metric_families(result.stdout)
        for sample in family.samples
    }
    assert samples[("streamcoord_triggers_published_total", "etl")] == 5
    assert ("streamcoord_triggers_published_total", "early") not in samples


def test_a_busy_port_is_reported_with_what_to_do(endpoint: MetricsHandle) -> None:
    with pytest.raises(EnvironmentProblem, match=f"127.0.0.1:{endpoint.port}") as error:
        configure_metrics("second", port=endpoint.port, set_global=False)
    assert "OTEL_EXPORTER_PROMETHEUS_PORT" in error.value.hint


def _raw(handle: MetricsHandle, request: bytes, *, reset: bool = False) -> bytes:
    """Send ``request`` as is; with ``reset``, abort the connection instead of reading."""
    with socket.create_connection((handle.host, handle.port), timeout=5) as sock:
        with contextlib.suppress(ConnectionError):
            sock.sendall(request)
        if reset:  # SO_LINGER 0: close with a RST, as a crashing or impatient client does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return b""
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


# Each request ends where the server stops reading it (the standard library reads lines of up to
# 65,536 bytes and 100 headers): bytes left unread would make closing reset the connection, and
# the client could lose the answer.
@pytest.mark.parametrize(
    ("request_bytes", "answer"),
    [
        (b"GET /" + b"a" * (65_537 - 5), b"HTTP/1.0 414 "),
        (b"GET /metrics HTTP/1.1\r\n" + b"X: " + b"a" * (65_537 - 3), b"HTTP/1.0 431 "),
        (b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * 101, b"HTTP/1.0 431 "),
        # not even a request line: the answer is an HTTP/0.9 error page, without a status line
        (b"\x16\x03\x01\x02\x00garbage\r\n", b"Error code: 400"),
    ],
    ids=["long-line", "long-header", "many-headers", "garbage"],
)
def test_oversized_and_garbage_requests_are_refused_without_a_traceback(
    endpoint: MetricsHandle, request_bytes: bytes, answer: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    assert answer in _raw(endpoint, request_bytes)
    _raw(endpoint, request_bytes, reset=True)  # used to print a ConnectionResetError traceback
    _raw(endpoint, b"GET /" + b"a" * 100_000, reset=True)
    with urllib.request.urlopen(endpoint.url, timeout=5) as response:  # noqa: S310 - 127.0.0.1
        assert response.status == 200  # still serving
    assert "Traceback" not in capfd.readouterr().err
