"""A real Jaeger for tests, as a pytest plugin (``pytest_plugins`` in ``tests/conftest.py``).

The ``jaeger`` session fixture builds Jaeger once into the streamcoord cache (needs Go; the test
is skipped, reason printed, where ``go`` is missing and no binary is cached), starts it on free
ports on 127.0.0.1 with a data directory of the session's own, and stops it at the end. Tests
using it are marked ``jaeger``; while the binary is not built yet they get a timeout long enough
for the cold build.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from streamcoord.devtools.jaeger import (
    JaegerPorts,
    JaegerSettings,
    LocalJaeger,
    build_jaeger,
    jaeger_cached,
)
from streamcoord.devtools.kafka import free_port

__all__ = ["JAEGER_BUILD_TIMEOUT", "jaeger"]

#: Seconds a test may take when it first needs Jaeger and the binary must be built (cold: minutes).
JAEGER_BUILD_TIMEOUT = 1800


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "jaeger: needs a real Jaeger (built with Go on first use)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    needs_build = not jaeger_cached()
    for item in items:
        if "jaeger" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.jaeger)
            if needs_build:
                item.add_marker(pytest.mark.timeout(JAEGER_BUILD_TIMEOUT))


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    for _ in range(count * 10):  # bounded: the kernel rarely hands out the same port twice
        port = free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"could not find {count} distinct free ports")


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JaegerSettings]:
    """Settings of a Jaeger that lives for the session (``.otlp_grpc_endpoint``, ``.query_url``)."""
    if not jaeger_cached():
        if shutil.which("go") is None:
            pytest.skip("a real Jaeger needs a Go toolchain to build it once: `go` is not on PATH")
        build_jaeger()
    ports = JaegerPorts(*_distinct_free_ports(5))
    data_dir = tmp_path_factory.mktemp("jaeger")
    server = LocalJaeger(JaegerSettings(ports=ports, data_dir=data_dir))
    server.start()
    try:
        yield server.settings
    finally:
        server.stop()
