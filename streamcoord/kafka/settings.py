"""Kafka connection settings, named as every Kafka client names them.

Sources, highest precedence first: keyword arguments (the CLI's options), environment variables
``STREAMCOORD_KAFKA_<NAME>``, the ``kafka`` table of the config file named by
``STREAMCOORD_CONFIG`` (TOML or YAML), then the defaults.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from streamcoord.errors import ConfigError

__all__ = ["CONFIG_ENV", "ENV_PREFIX", "KafkaSettings", "load_kafka_settings"]

ENV_PREFIX: Final = "STREAMCOORD_KAFKA_"
CONFIG_ENV: Final = "STREAMCOORD_CONFIG"
_CONFIG_TABLE: Final = "kafka"
# The file given to KafkaSettings.load(); the config-file source reads it (else STREAMCOORD_CONFIG).
_config_path: ContextVar[Path | None] = ContextVar("streamcoord_kafka_config", default=None)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
KafkaClient = Literal["aiokafka", "confluent"]


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster; :meth:`client_kwargs` feeds any aiokafka client."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of brokers to start from."
    )
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="Encryption (SSL) and authentication (SASL) of connections."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="SASL mechanism; required with SASL_PLAINTEXT and SASL_SSL."
    )
    sasl_plain_username: str | None = Field(None, description="SASL user name.")
    sasl_plain_password: SecretStr | None = Field(
        None, description="SASL password: give it through the environment, not a file."
    )
    ssl_cafile: Path | None = Field(
        None, description="PEM file of the CAs that sign the brokers' certificates (default: "
        "the system's CAs).",
    )  # fmt: skip
    ssl_certfile: Path | None = Field(
        None, description="PEM client certificate, for brokers that authenticate clients by TLS."
    )
    ssl_keyfile: Path | None = Field(None, description="PEM private key of ssl_certfile.")
    ssl_password: SecretStr | None = Field(None, description="Password of ssl_keyfile, if any.")
    client_id: str = Field("streamcoord", description="Client id the brokers log and quota by.")
    topic_prefix: str = Field(
        "", description="Prefix of every topic name, for installations sharing a cluster."
    )
    client: KafkaClient = Field(
        "aiokafka",
        description="Kafka client of the coordinator's consumer and transactional producers: "
        "aiokafka (pure Python) or confluent (confluent-kafka, on librdkafka). The same "
        "connection settings apply to both.",
    )

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL_") and not (
            self.sasl_mechanism and self.sasl_plain_username and self.sasl_plain_password
        ):
            raise ValueError(
                f"security_protocol {self.security_protocol} needs sasl_mechanism, "
                "sasl_plain_username and sasl_plain_password"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the config file."""
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    @property
    def uses_ssl(self) -> bool:
        """Whether connections are encrypted (SSL or SASL_SSL)."""
        return self.security_protocol in {"SSL", "SASL_SSL"}

    def topic(self, name: str) -> str:
        """A declared topic name as it is on this cluster (with ``topic_prefix``)."""
        return self.topic_prefix + name

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer`` and the admin client."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL_"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_plain_username
            kwargs["sasl_plain_password"] = _reveal(self.sasl_plain_password)
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs

    def confluent_config(self) -> dict[str, Any]:
        """The same connection as librdkafka properties (confluent-kafka's clients)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol.lower(),
        }
        if self.security_protocol.startswith("SASL_"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_plain_username
            config["sasl.password"] = _reveal(self.sasl_plain_password)
        if self.uses_ssl:
            files = {
                "ssl.ca.location": self.ssl_cafile,
                "ssl.certificate.location": self.ssl_certfile,
                "ssl.key.location": self.ssl_keyfile,
            }
            config.update({name: str(path) for name, path in files.items() if path is not None})
            if self.ssl_password is not None:
                config["ssl.key.password"] = _reveal(self.ssl_password)
            # librdkafka checks the broker's host name only when asked; ssl_context() does
            config["ssl.endpoint.identification.algorithm"] = "https"
        return config

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context built from the ``ssl_*`` files (system CAs when no cafile is set)."""
        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=self.ssl_cafile,
                certfile=self.ssl_certfile,
                keyfile=self.ssl_keyfile,
                password=_reveal(self.ssl_password),
            )
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(
                f"cannot build the TLS context from ssl_cafile/ssl_certfile/ssl_keyfile: {error}",
                hint="check the paths and the key's ssl_password",
            ) from None
        return context

    @classmethod
    def load(cls, config: Path | None = None, **overrides: Any) -> KafkaSettings:
        """Settings from ``overrides`` (``None`` values skipped), environment and config file.

        ``config`` replaces ``STREAMCOORD_CONFIG``. Raises ``ConfigError`` when invalid.
        """
        token = _config_path.set(config)
        try:
            return load_kafka_settings(**overrides)
        finally:
            _config_path.reset(token)


def load_kafka_settings(**overrides: Any) -> KafkaSettings:
    """Settings from every source, ``overrides`` (not ``None``) first; raises ``ConfigError``."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return KafkaSettings(**given)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in d['loc']) or 'kafka'}: {d['msg']}"
            for d in error.errors(include_url=False)
        )
        raise ConfigError(
            f"invalid Kafka settings: {problems}",
            hint=f"set them with {ENV_PREFIX}<NAME> variables or the [kafka] table of the "
            f"file named by {CONFIG_ENV}",
        ) from None


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


class _ConfigFileSource(PydanticBaseSettingsSource):
    """The ``kafka`` table (or top-level Kafka keys) of the TOML or YAML config file."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` returns the whole table at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _config_path.get() or os.environ.get(CONFIG_ENV)
        if not path:
            return {}
        content = _read_config(Path(path))
        if _CONFIG_TABLE not in content:
            # A file of Kafka settings only: take the keys that are ours, ignore the rest.
            return {k: v for k, v in content.items() if k in KafkaSettings.model_fields}
        table = content[_CONFIG_TABLE]
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: '{_CONFIG_TABLE}' must be a table of settings")
        return table


def _read_config(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read the config file {path}: {error.strerror}",
            hint=f"fix or unset {CONFIG_ENV}",
        ) from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        loaded = YAML(typ="safe", pure=True).load(text)
    except (tomllib.TOMLDecodeError, YAMLError) as error:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {error}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the config file must hold a mapping")
    return loaded
