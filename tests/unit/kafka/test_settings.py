"""KafkaSettings: sources and the mapping onto aiokafka's keyword arguments."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from streamcoord.errors import ConfigError
from streamcoord.events import topology
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.confluent import ConfluentTransport
from streamcoord.kafka.settings import KafkaSettings, load_kafka_settings
from streamcoord.kafka.transport import make_transport


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMCOORD_CONFIG", raising=False)
    for name in KafkaSettings.model_fields:
        monkeypatch.delenv(f"STREAMCOORD_KAFKA_{name.upper()}", raising=False)


def test_defaults_reach_a_local_plaintext_broker() -> None:
    assert load_kafka_settings().client_kwargs() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "client_id": "streamcoord",
        "security_protocol": "PLAINTEXT",
    }


def test_sasl_ssl_maps_to_aiokafka_names_with_the_secret_revealed_only_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMCOORD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMCOORD_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAMCOORD_KAFKA_SASL_PLAIN_USERNAME", "svc")
    monkeypatch.setenv("STREAMCOORD_KAFKA_SASL_PLAIN_PASSWORD", "s3cret")
    settings = load_kafka_settings()

    kwargs = settings.client_kwargs()

    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc"
    assert kwargs["sasl_plain_password"] == "s3cret"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(settings)


def test_sasl_plaintext_has_no_tls_context() -> None:
    settings = load_kafka_settings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="u",
        sasl_plain_password="p",
    )
    assert "ssl_context" not in settings.client_kwargs()


def test_sasl_without_credentials_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs sasl_mechanism"):
        load_kafka_settings(security_protocol="SASL_SSL")


def test_unknown_protocol_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="security_protocol"):
        load_kafka_settings(security_protocol="TLS")


def test_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    settings = load_kafka_settings(security_protocol="SSL", ssl_cafile=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="TLS context"):
        settings.client_kwargs()


def test_precedence_is_arguments_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "streamcoord.toml"
    config.write_text(
        '[kafka]\nbootstrap_servers = "file:1"\nclient_id = "from-file"\ntopic_prefix = "f."\n'
    )
    monkeypatch.setenv("STREAMCOORD_CONFIG", str(config))
    monkeypatch.setenv("STREAMCOORD_KAFKA_CLIENT_ID", "from-env")

    settings = load_kafka_settings(topic_prefix="arg.", bootstrap_servers=None)

    assert (settings.bootstrap_servers, settings.client_id, settings.topic_prefix) == (
        "file:1",
        "from-env",
        "arg.",
    )
    assert settings.topic(topology.EVENTS) == "arg.streamcoord.events"


def test_yaml_config_file_given_explicitly(tmp_path: Path) -> None:
    config = tmp_path / "kafka.yaml"
    config.write_text("bootstrap_servers: yaml:2\nother_component_setting: 1\n")
    assert KafkaSettings.load(config).bootstrap_servers == "yaml:2"


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        KafkaSettings.load(tmp_path / "missing.toml")


def test_malformed_config_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        KafkaSettings.load(config)


def test_the_same_connection_maps_to_librdkafka_names_for_the_confluent_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMCOORD_KAFKA_CLIENT", "confluent")
    monkeypatch.setenv("STREAMCOORD_KAFKA_SASL_PLAIN_PASSWORD", "s3cret")
    ca = tmp_path / "ca.pem"
    settings = load_kafka_settings(
        bootstrap_servers="broker:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="svc",
        ssl_cafile=ca,
    )

    assert settings.client == "confluent"
    assert settings.confluent_config() == {
        "bootstrap.servers": "broker:9093",
        "client.id": "streamcoord",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_the_client_setting_chooses_the_coordinators_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(make_transport(load_kafka_settings()), KafkaTransport)
    monkeypatch.setenv("STREAMCOORD_KAFKA_CLIENT", "confluent")
    chosen = make_transport(load_kafka_settings(bootstrap_servers="broker:9093"))
    assert isinstance(chosen, ConfluentTransport)
    assert chosen.config["bootstrap.servers"] == "broker:9093"


def test_an_unknown_client_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="client"):
        load_kafka_settings(client="kafka-python")
