"""How the test suite gets a Kafka broker, and helpers for tests that use one.

The broker, in order of preference:

1. ``STREAMCOORD_TEST_BOOTSTRAP=host:port``: a broker someone already runs.
2. ``STREAMCOORD_TEST_KAFKA_VERSION`` set: a local broker of exactly that version (``LocalKafka``).
3. A Docker engine that answers: testcontainers' ``KafkaContainer`` in KRaft mode.
4. Otherwise a local broker of the default version, from Apache's jars.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamcoord.devtools.kafka import DEFAULT_KAFKA_VERSION, BrokerSettings, LocalKafka, free_port

BOOTSTRAP_ENV = "STREAMCOORD_TEST_BOOTSTRAP"
VERSION_ENV = "STREAMCOORD_TEST_KAFKA_VERSION"

# The transaction log defaults to three replicas; one broker needs one or transactions never start.
_CONTAINER_ENV = {
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
}


@contextlib.contextmanager
def provide_broker(workdir: Path) -> Iterator[str]:
    """Yield a bootstrap address ``host:port``; a broker started here is stopped on exit."""
    explicit = os.environ.get(BOOTSTRAP_ENV)
    if explicit:
        yield explicit
        return
    version = os.environ.get(VERSION_ENV)
    if version is None and docker_answers():
        with _container() as bootstrap:
            yield bootstrap
        return
    with _local(version or DEFAULT_KAFKA_VERSION, workdir) as bootstrap:
        yield bootstrap


def docker_answers(timeout: float = 0.5) -> bool:
    """Whether a Docker engine answers ``/_ping`` (on a local socket or loopback only)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        with _docker_socket(host, timeout) as sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status_line = sock.recv(64)
    except (OSError, ValueError):
        return False
    return status_line.startswith(b"HTTP/1.") and b" 200 " in status_line


def _docker_socket(host: str, timeout: float) -> socket.socket:
    if host.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(host.removeprefix("unix://"))
        except OSError:
            sock.close()
            raise
        return sock
    match = re.fullmatch(r"tcp://(?:127\.0\.0\.1|localhost):(\d+)/?", host)
    if match is None:
        raise ValueError(f"not a local Docker engine: {host}")  # tests talk to 127.0.0.1 only
    return socket.create_connection(("127.0.0.1", int(match[1])), timeout=timeout)


@contextlib.contextmanager
def _container() -> Iterator[str]:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # older testcontainers: the deprecated location
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from testcontainers.kafka import KafkaContainer
    container = KafkaContainer().with_kraft()
    for key, value in _CONTAINER_ENV.items():
        container = container.with_env(key, value)
    with container:
        yield str(container.get_bootstrap_server())


@contextlib.contextmanager
def _local(version: str, workdir: Path) -> Iterator[str]:
    data_dir = workdir / f"kafka-{version}"
    settings = BrokerSettings(port=free_port(), data_dir=data_dir, version=version)
    broker = LocalKafka(settings)
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def unique_name(prefix: str, test_name: str) -> str:
    """A legal topic or group name, unique per call: ``<prefix>.<test>.<8 hex>``."""
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", test_name).strip("-")[:80]
    return f"{prefix}.{test}.{uuid.uuid4().hex[:8]}"


async def create_topics(
    bootstrap: str,
    names: Sequence[str],
    *,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
) -> None:
    """Create ``names`` on the broker (replication factor 1) and return once it has them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        topic_config: dict[str, Any] = dict(config or {})
        new = [NewTopic(name, partitions, 1, topic_configs=topic_config) for name in names]
        response = await admin.create_topics(new, timeout_ms=10_000)
        errors = [(t[0], t[1]) for t in response.topic_errors if t[1] != 0]
        assert not errors, f"create_topics failed: {errors}"
    finally:
        await admin.close()
