"""The example settings file in deploy/ loads as an operator would use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamcoord.kafka.settings import KafkaSettings

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_example_settings_give_a_sasl_ssl_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCOORD_KAFKA_SASL_PLAIN_PASSWORD", "from-the-environment")
    settings = KafkaSettings.load(DEPLOY / "streamcoord.toml")
    assert settings.security_protocol == "SASL_SSL"
    assert settings.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.sasl_plain_password is not None
    assert settings.sasl_plain_password.get_secret_value() == "from-the-environment"
    assert settings.bootstrap_servers.count(",") == 2
