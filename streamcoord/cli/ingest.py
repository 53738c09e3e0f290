"""``streamcoord ingest``: the CloudEvents HTTP endpoint in front of the events topic."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from streamcoord.cli.common import BootstrapOption, ConfigOption
from streamcoord.emit import Emitter
from streamcoord.ingest import create_app
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["ingest"]


def ingest(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 for all).")] = "127.0.0.1",
    topic_prefix: Annotated[str | None, typer.Option(help="Prefix of every topic name.")] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Accept CloudEvents on `POST /events` (structured, binary, batch); 202 once on Kafka."""
    settings = KafkaSettings.load(
        config, bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix
    )
    asyncio.run(_serve(settings, host, port))


async def _serve(settings: KafkaSettings, host: str, port: int) -> None:
    async with Emitter(settings, linger_ms=2) as emitter:
        app = create_app(emitter)
        # uvicorn handles SIGTERM/SIGINT: it stops accepting, finishes open requests, returns;
        # the emitter then flushes and closes.
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
        await server.serve()
