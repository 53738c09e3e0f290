"""``streamcoord ingest``: the CloudEvents HTTP endpoint in front of the events topic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from typing import Annotated

import typer
import uvicorn

from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.emit import Emitter
from streamcoord.ingest import create_app
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["ingest"]

log = logging.getLogger("streamcoord")


def ingest(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 for all).")] = "127.0.0.1",
    topic_prefix: PrefixOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    grace: Annotated[
        int, typer.Option(min=0, help="Seconds in-flight requests get to finish on SIGTERM/SIGINT.")
    ] = 10,
) -> None:
    """Accept CloudEvents on `POST /events` (structured, binary, batch); 202 once on Kafka."""
    settings = kafka_settings(bootstrap_servers, config, topic_prefix)
    asyncio.run(_serve(settings, host, port, grace))


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: after a graceful stop it raises the signal
    again, so the process died of SIGTERM (exit -15) before the producer was flushed."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(settings: KafkaSettings, host: str, port: int, grace: int) -> None:
    async with Emitter(settings, linger_ms=2) as emitter:
        server = _Server(
            uvicorn.Config(
                create_app(emitter), host=host, port=port, log_level="info",
                timeout_graceful_shutdown=grace,
            )
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _stop, server, signum)
        # On a signal uvicorn stops accepting, lets open requests finish (up to `grace`) and
        # returns; leaving the block then flushes the producer. The exit status is 0.
        await server.serve()
    log.info("ingest stopped cleanly")


def _stop(server: uvicorn.Server, signum: int) -> None:
    if server.should_exit:  # a second signal: stop waiting for open requests
        server.force_exit = True
        return
    log.info("%s: finishing open requests, then stopping", signal.Signals(signum).name)
    server.should_exit = True
