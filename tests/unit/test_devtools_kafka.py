"""streamcoord.devtools.kafka and ``streamcoord dev kafka`` without a broker (no java, no Maven)."""

from __future__ import annotations

import os
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamcoord.cli.main import main
from streamcoord.devtools.kafka import (
    BrokerSettings,
    LocalKafka,
    check_port_free,
    jars_cached,
    render_pom,
    resolve_jars,
    running_brokers,
    server_properties,
)
from streamcoord.errors import EnvironmentProblem

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STREAMCOORD_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["streamcoord", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return int(exit_info.value.code or 0)


def parse_properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_server_properties_proxied_listener_advertises_the_proxy_port() -> None:
    settings = BrokerSettings(port=9999, proxied_listener=(9997, 9996))
    props = parse_properties(server_properties(settings, 9998, Path("/d/logs")))
    assert props["listeners"].split(",")[-1] == "PROXIED://127.0.0.1:9997"
    assert props["advertised.listeners"] == ("PLAINTEXT://127.0.0.1:9999,PROXIED://127.0.0.1:9996")
    assert "PROXIED:PLAINTEXT" in props["listener.security.protocol.map"].split(",")
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_server_properties_one_node_on_loopback_with_single_replica_internal_topics() -> None:
    props = parse_properties(server_properties(BrokerSettings(port=9999), 9998, Path("/d/logs")))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9998"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9999,CONTROLLER://127.0.0.1:9998"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9999"
    assert props["log.dirs"] == "/d/logs"
    assert props["auto.create.topics.enable"] == "false"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
    ):
        assert props[key] == "1", key


@pytest.mark.parametrize(
    ("version", "backend"),
    [("4.4.0", {"log4j-slf4j-impl"}), ("3.9.2", {"slf4j-reload4j", "reload4j"})],
)
def test_pom_brings_the_broker_and_a_logging_backend(version: str, backend: set[str]) -> None:
    root = ET.fromstring(render_pom(version))  # noqa: S314 - parsing our own template
    deps = {
        d.findtext("m:artifactId", namespaces=POM_NS): d.findtext("m:version", namespaces=POM_NS)
        for d in root.iterfind("m:dependencies/m:dependency", POM_NS)
    }
    assert deps.pop("kafka_2.13") == version
    assert set(deps) == backend


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(EnvironmentProblem, match=r"2\.8\.0 is not a supported line"):
        render_pom("2.8.0")


def test_busy_port_is_reported(listening_port: int) -> None:
    with pytest.raises(EnvironmentProblem, match=f"port {listening_port} .* already in use"):
        check_port_free(listening_port)


def test_missing_maven_is_reported(
    empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert not jars_cached("4.4.0")
    with pytest.raises(EnvironmentProblem, match="`mvn` was not found") as info:
        resolve_jars("4.4.0")
    assert "Maven" in info.value.hint


def test_stale_or_foreign_pid_file_is_not_a_running_broker(tmp_path: Path) -> None:
    broker = LocalKafka(BrokerSettings(port=1, data_dir=tmp_path))
    assert broker.running_pid() is None
    broker.pid_file.write_text(str(os.getpid()))  # alive, but not a Kafka broker
    assert broker.running_pid() is None
    broker.pid_file.write_text("garbage")
    assert broker.running_pid() is None


def test_no_running_brokers_in_an_empty_cache(empty_cache: Path) -> None:
    assert running_brokers(9092) == []


def test_cli_busy_port_is_one_red_line_and_exit_1(
    listening_port: int,
    empty_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_cli(monkeypatch, "dev", "kafka", "--port", str(listening_port))
    err = capsys.readouterr().err
    assert code == 1
    assert err.splitlines()[0] == f"error: port {listening_port} on 127.0.0.1 is already in use"
    assert err.splitlines()[1].startswith("hint: ")
    assert "Traceback" not in err
    assert not jars_cached("4.4.0")  # failed before fetching anything


def test_cli_stop_with_nothing_running_succeeds(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "dev", "kafka", "--stop", "--port", "9") == 0
    assert "No detached Kafka broker for port 9" in capsys.readouterr().out


def test_cli_usage_error_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(monkeypatch, "dev", "kafka", "--no-such-option") == 2
