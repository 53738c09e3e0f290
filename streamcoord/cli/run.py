"""``streamcoord run``: the coordinator service."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from streamcoord.cli.common import (
    BootstrapOption,
    ConfigOption,
    PrefixOption,
    kafka_settings,
    load_catalog,
)
from streamcoord.cli.telemetry import telemetry
from streamcoord.kafka.settings import KafkaClient
from streamcoord.kafka.transport import make_transport
from streamcoord.runtime import Coordinator, CoordinatorSettings, tune_garbage_collector
from streamcoord.runtime.health import HealthServer
from streamcoord.runtime.specs import SpecsFollower, SpecSource, StaticSpecs

__all__ = ["run"]

log = logging.getLogger("streamcoord")


def run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Local spec files or directories, for development. Without them the group runs "
            "every version published with `streamcoord specs apply`.",
            exists=True,
        ),
    ] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    group_id: Annotated[
        str | None, typer.Option(help="Consumer group (default streamcoord-coordinator).")
    ] = None,
    topic_prefix: PrefixOption = None,
    instance_id: Annotated[
        str | None,
        typer.Option(help="Static group membership: a restart takes its partitions back at once."),
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(help="Serve GET /livez and /readyz (= /healthz) on 127.0.0.1 at this port."),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1 at this port.")
    ] = None,
    kafka_client: Annotated[
        KafkaClient | None,
        typer.Option(
            help="Kafka client of the consumer and the transactional producers (default: "
            "settings' client, then aiokafka).",
        ),
    ] = None,
    retention_s: Annotated[
        float | None,
        typer.Option(
            help="Seconds a finished run stays in the state (default 604800, 7 days).", min=0.001
        ),
    ] = None,
) -> None:
    """Start the coordinator: consume events, decide, publish triggers exactly once."""
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "group_id": group_id, "topic_prefix": topic_prefix, "health_port": health_port,
            "instance_id": instance_id, "retention_s": retention_s,
        }.items()
        if value is not None
    }  # fmt: skip
    kafka = kafka_settings(bootstrap_servers, config)
    if kafka_client is not None:
        kafka = kafka.model_copy(update={"client": kafka_client})
    if kafka.topic_prefix:  # else STREAMCOORD_TOPIC_PREFIX (or none) applies
        overrides.setdefault("topic_prefix", kafka.topic_prefix)
    settings = CoordinatorSettings(**overrides)
    start_timeout = settings.default_start_timeout_seconds
    retention = timedelta(seconds=settings.retention_s)
    specs: SpecSource = (
        StaticSpecs(
            load_catalog(paths, default_start_timeout_seconds=start_timeout, retention=retention)
        )
        if paths
        else SpecsFollower(
            kafka.client_kwargs(),
            settings.topics,
            wait_s=settings.specs_wait_s,
            default_start_timeout_seconds=start_timeout,
            retention=retention,
        )
    )
    tune_garbage_collector()
    with telemetry("streamcoord-coordinator", metrics_port):
        asyncio.run(_serve(Coordinator(specs, settings, make_transport(kafka)), settings))


async def _serve(coordinator: Coordinator, settings: CoordinatorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    health: HealthServer | None = None
    if settings.health_port is not None:
        health = HealthServer(coordinator.health, settings.health_host, settings.health_port)
        await health.start()
        log.info(
            "health checks on http://%s:%d/livez and /readyz", settings.health_host, health.port
        )
    log.info("coordinator consuming %s as group %s", settings.topics.events, settings.group_id)
    try:
        await coordinator.run(stop)
    finally:
        if health is not None:
            await health.stop()
    log.info("coordinator stopped cleanly")
