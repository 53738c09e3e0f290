"""streamcoord.devtools.jaeger and ``streamcoord dev jaeger`` without building or running Jaeger."""

from __future__ import annotations

import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from streamcoord.cli.main import main
from streamcoord.devtools.jaeger import (
    JaegerPorts,
    JaegerSettings,
    LocalJaeger,
    binary_path,
    build_jaeger,
    jaeger_cached,
    render_config,
)
from streamcoord.devtools.kafka import free_port
from streamcoord.errors import EnvironmentProblem

PORTS = JaegerPorts(otlp_grpc=1, otlp_http=2, query_http=3, query_grpc=4, health=5)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STREAMCOORD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["streamcoord", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def test_config_binds_every_listener_to_loopback_on_the_given_ports() -> None:
    text = render_config(JaegerSettings(ports=PORTS, max_traces=7))
    endpoints = re.findall(r"endpoint: (\S+)", text)
    assert sorted(endpoints) == [f"127.0.0.1:{port}" for port in range(1, 6)]
    config = YAML(typ="safe").load(text)
    assert config["extensions"]["jaeger_storage"]["backends"]["memstore"]["memory"] == {
        "max_traces": 7
    }
    assert config["extensions"]["healthcheckv2"]["http"]["status"]["path"] == "/status"
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_settings_give_the_addresses_clients_need() -> None:
    settings = JaegerSettings(ports=PORTS)
    assert settings.otlp_grpc_endpoint == "http://127.0.0.1:1"
    assert settings.otlp_http_endpoint == "http://127.0.0.1:2"
    assert settings.query_url == "http://127.0.0.1:3"
    assert settings.health_url == "http://127.0.0.1:5/status"


def test_binary_lives_in_the_cache_per_version(empty_cache: Path) -> None:
    assert binary_path("v1.76.0") == empty_cache / "jaeger" / "v1.76.0" / "jaeger"
    assert not jaeger_cached("v1.76.0")


def test_missing_go_is_reported_with_what_to_install(
    empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(EnvironmentProblem, match="`go` was not found") as info:
        build_jaeger()
    assert "Go" in info.value.hint


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on now (fixed numbers can collide with clients' ephemeral ports)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def test_starting_without_a_built_binary_says_how_to_build(empty_cache: Path) -> None:
    ports = JaegerPorts(*free_ports(5))
    with pytest.raises(EnvironmentProblem, match="not built yet") as info:
        LocalJaeger(JaegerSettings(ports=ports)).start()
    assert "streamcoord dev jaeger" in info.value.hint


def test_cli_without_go_is_one_red_line_and_exit_1(
    empty_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    query, health = (str(port) for port in free_ports(2))
    code = run_cli(monkeypatch, "dev", "jaeger", "--query-port", query, "--health-port", health)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines()[0] == (
        "error: `go` was not found on PATH; it is needed once to build Jaeger"
    )
    assert "Traceback" not in captured.err
    assert "Building" not in captured.out


def test_cli_busy_port_fails_before_any_build(
    listening_port: int,
    empty_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_cli(monkeypatch, "dev", "jaeger", "--otlp-grpc-port", str(listening_port))
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[0] == f"error: port {listening_port} on 127.0.0.1 is already in use"
    assert not (empty_cache / "jaeger").exists()


def test_cli_stop_with_nothing_running_says_so(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "dev", "jaeger", "--stop", "--query-port", "40009") == 0
    assert "No detached Jaeger is running." in capsys.readouterr().out


FAKE_GO = """#!/bin/sh
echo "go $*"
if [ "$1" = build ]; then printf '#!/bin/sh\\n' > "$4" && chmod +x "$4"; fi
if [ "$1" = get ] && [ -n "$FAKE_GO_FAIL" ]; then echo "no proxy" && exit 1; fi
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `go` that prints a line per step and writes an executable for `go build -o`."""
    tools = tmp_path / "tools"
    tools.mkdir()
    go = tools / "go"
    go.write_text(FAKE_GO)
    go.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    return go


def test_a_cold_build_closes_every_pipe_it_opened(empty_cache: Path, fake_go: Path) -> None:
    # Warnings are errors here: an unclosed pipe of a Go step would fail this test.
    lines: list[str] = []
    binary = build_jaeger(progress=lines.append)
    assert binary == binary_path()
    assert jaeger_cached()
    assert [line.split()[1] for line in lines] == ["mod", "get", "build"]


def test_a_failing_go_step_reports_its_output_and_closes_its_pipe(
    empty_cache: Path, fake_go: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    with pytest.raises(EnvironmentProblem, match="no proxy"):
        build_jaeger()
    assert not jaeger_cached()
