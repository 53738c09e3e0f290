"""``streamcoord ingest``: the CloudEvents HTTP endpoint in front of the events topic.

With tokens configured (the ``[auth]`` settings, as for ``serve``), senders need an operator or
admin token. Without any, the endpoint is open, which is allowed on a loopback address only:
anything that can reach a non-loopback bind could otherwise send commands as anyone.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from streamcoord.auth import AuthSettings, TokenRegistry, is_loopback
from streamcoord.cli._uvicorn import QuietServer, stop_on
from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.emit import Emitter
from streamcoord.errors import ConfigError
from streamcoord.ingest import create_app
from streamcoord.ingest._app import MAX_REQUEST_BYTES
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
    max_body_bytes: Annotated[
        int, typer.Option(min=1024, envvar="STREAMCOORD_INGEST_MAX_BODY_BYTES",
                          help="Larger request bodies are refused with 413.")
    ] = MAX_REQUEST_BYTES,
) -> None:  # fmt: skip
    """Accept CloudEvents on `POST /events` (structured, binary, batch); 202 once on Kafka."""
    settings = kafka_settings(bootstrap_servers, config, topic_prefix)
    tokens = ingest_tokens(config, host)
    asyncio.run(_serve(settings, host, port, grace, tokens, max_body_bytes))


def ingest_tokens(config: Path | None, host: str) -> TokenRegistry | None:
    """The configured tokens; None (open) only on a loopback address."""
    tokens = AuthSettings.load(config).registry()
    if not tokens.empty:
        return tokens
    if not is_loopback(host):
        raise ConfigError(
            f"ingest without tokens accepts events from anyone, so it binds to loopback only,"
            f" not {host}",
            hint="configure tokens (`streamcoord token create NAME --role operator`), or bind"
            " 127.0.0.1",
        )
    log.warning("ingest: no tokens configured; open to every caller on %s", host)
    return None


async def _serve(
    settings: KafkaSettings, host: str, port: int, grace: int, tokens: TokenRegistry | None,
    max_body_bytes: int,
) -> None:  # fmt: skip
    async with Emitter(settings, linger_ms=2) as emitter:
        app = create_app(emitter, tokens=tokens, max_body_bytes=max_body_bytes)
        server = QuietServer(
            uvicorn.Config(
                app, host=host, port=port, log_level="info", timeout_graceful_shutdown=grace,
            )
        )  # fmt: skip
        stop_on(server)
        # On a signal uvicorn stops accepting, lets open requests finish (up to `grace`) and
        # returns; leaving the block then flushes the producer. The exit status is 0.
        await server.serve()
    log.info("ingest stopped cleanly")
