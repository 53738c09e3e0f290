"""Options and loaders that several commands share."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # imported by the functions below: `--help` of a command needs neither
    from streamcoord.core import Catalog
    from streamcoord.kafka.settings import KafkaSettings

__all__ = ["BootstrapOption", "ConfigOption", "PrefixOption", "kafka_settings", "load_catalog"]

BootstrapOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        help="Kafka bootstrap servers (default: settings, then 127.0.0.1:9092).",
        envvar="STREAMCOORD_KAFKA_BOOTSTRAP_SERVERS",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file (Kafka client settings: security_protocol, sasl_*, ssl_*).",
        envvar="STREAMCOORD_CONFIG",
        exists=True,
        dir_okay=False,
    ),
]

PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--topic-prefix",
        help="Prefix of every topic name (default: settings' topic_prefix).",
        envvar="STREAMCOORD_KAFKA_TOPIC_PREFIX",
    ),
]


def kafka_settings(
    bootstrap_servers: str | None, config: Path | None, topic_prefix: str | None = None
) -> KafkaSettings:
    """Settings from the config file and environment, with the command line on top."""
    from streamcoord.kafka.settings import KafkaSettings  # noqa: PLC0415

    return KafkaSettings.load(
        config, bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix
    )


def load_catalog(paths: Iterable[Path | str], **options: Any) -> Catalog:
    """:func:`streamcoord.runtime.specs.load_catalog`, imported when a command needs specs."""
    from streamcoord.runtime.specs import load_catalog as load  # noqa: PLC0415

    return load(paths, **options)
