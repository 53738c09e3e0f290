"""``streamcoord run``: the coordinator service."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from streamcoord.cli.common import BootstrapOption, ConfigOption, kafka_settings, load_catalog
from streamcoord.cli.telemetry import telemetry
from streamcoord.runtime import Coordinator, CoordinatorSettings, tune_garbage_collector
from streamcoord.runtime.health import HealthServer

__all__ = ["run"]

log = logging.getLogger("streamcoord")


def run(
    paths: Annotated[
        list[Path], typer.Argument(help="Spec files or directories.", exists=True)
    ],
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    group_id: Annotated[
        str | None, typer.Option(help="Consumer group (default streamcoord-coordinator).")
    ] = None,
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of every topic name.")] = None,
    instance_id: Annotated[
        str | None,
        typer.Option(help="Static group membership: a restart takes its partitions back at once."),
    ] = None,
    health_port: Annotated[
        int | None, typer.Option(help="Serve GET /healthz on 127.0.0.1 at this port.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1 at this port.")
    ] = None,
    retention_s: Annotated[
        float | None,
        typer.Option(help="Seconds a finished run stays in the state (default 604800, 7 days).",
                     min=0.001),
    ] = None,
) -> None:
    """Start the coordinator: consume events, decide, publish triggers exactly once."""
    catalog = load_catalog(paths)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "group_id": group_id, "topic_prefix": topic_prefix, "health_port": health_port,
            "instance_id": instance_id, "retention_s": retention_s,
        }.items()
        if value is not None
    }  # fmt: skip
    kafka = kafka_settings(bootstrap_servers, config)
    overrides.setdefault("topic_prefix", kafka.topic_prefix)
    settings = CoordinatorSettings(**overrides)
    tune_garbage_collector()
    with telemetry("streamcoord-coordinator", metrics_port):
        asyncio.run(_serve(Coordinator(catalog, settings, kafka.client_kwargs()), settings))


async def _serve(coordinator: Coordinator, settings: CoordinatorSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    health: HealthServer | None = None
    if settings.health_port is not None:
        health = HealthServer(
            coordinator.status.as_dict, settings.health_host, settings.health_port
        )
        await health.start()
        log.info("health check on http://%s:%d/healthz", settings.health_host, health.port)
    log.info(
        "coordinator consuming %s as group %s", settings.topics.events, settings.group_id
    )
    try:
        await coordinator.run(stop)
    finally:
        if health is not None:
            await health.stop()
    log.info("coordinator stopped cleanly")


