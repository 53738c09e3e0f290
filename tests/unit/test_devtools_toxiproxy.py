"""streamcoord.devtools.toxiproxy: a real toxiproxy server, built from the Go module proxy on
first use (as the chaos suite does), in front of a local echo server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamcoord.devtools.toxiproxy import (
    LocalToxiproxy,
    ToxiproxyError,
    binary_path,
    build_toxiproxy,
    toxiproxy_cached,
)
from streamcoord.errors import EnvironmentProblem


@pytest.fixture(scope="session")
def built() -> None:
    """Build toxiproxy once (about a minute, cached afterwards); skipped only without Go."""
    if not toxiproxy_cached() and shutil.which("go") is None:
        pytest.skip("toxiproxy is not built and Go is not installed to build it")
    build_toxiproxy()


def test_binary_lives_in_the_cache_per_version(tmp_path: Path) -> None:
    assert binary_path("v9.9.9", cache=tmp_path) == tmp_path / "toxiproxy/v9.9.9/toxiproxy-server"
    assert not toxiproxy_cached("v9.9.9", cache=tmp_path)


def test_build_answers_from_the_cache_without_go(tmp_path: Path) -> None:
    target = binary_path("v1.0.0", cache=tmp_path)
    target.parent.mkdir(parents=True)
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)
    assert build_toxiproxy("v1.0.0", cache=tmp_path) == target


def test_start_without_a_build_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="not built yet"):
        LocalToxiproxy(tmp_path, version="v0.0.0-missing").start()


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP echo server on 127.0.0.1, one thread per connection."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets or closes connections
            while data := conn.recv(1024):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    server.close()


def round_trip(port: int) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"ping")
        assert conn.recv(16) == b"ping"
    return time.monotonic() - started


@pytest.mark.usefixtures("built")
def test_proxy_latency_cut_and_reset(tmp_path: Path, echo_port: int) -> None:
    proxy = LocalToxiproxy(tmp_path)
    proxy.start()
    try:
        port = proxy.create_proxy("echo", f"127.0.0.1:{echo_port}")
        assert round_trip(port) < 0.9
        proxy.add_toxic("echo", "slow", "latency", {"latency": 1000})
        assert round_trip(port) >= 1.0
        proxy.remove_toxic("echo", "slow")
        proxy.set_enabled("echo", False)
        with pytest.raises(ConnectionRefusedError):
            round_trip(port)
        proxy.set_enabled("echo", True)
        assert round_trip(port) < 0.9
        proxy.add_toxic("echo", "reset", "reset_peer", {"timeout": 0})
        with pytest.raises(ConnectionError):  # reset by peer, or a broken pipe on send
            round_trip(port)
        proxy.reset()
        assert round_trip(port) < 0.9
        with pytest.raises(ToxiproxyError, match="404"):
            proxy.remove_toxic("echo", "absent")
    finally:
        assert proxy.stop()
