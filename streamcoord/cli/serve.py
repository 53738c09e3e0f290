"""``streamcoord serve``: the read model's projector and the HTTP API in one process.

The projector folds the runs, decisions, events and dead-letter topics into the store (SQLite by
default, PostgreSQL with ``--database postgresql://...``); the API reads the store and turns
every action into a command event. Authentication is on unless ``--insecure`` (loopback only):
with no tokens configured, an admin token is generated at start and printed once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from streamcoord.api import (
    DEFAULT_MAX_BODY_BYTES,
    ApiServices,
    CommandSender,
    FollowedSpecs,
    LocalSpecs,
    SpecViews,
    create_app,
)
from streamcoord.auth import AuthSettings, Principal, Role, TokenRegistry, hash_token, is_loopback
from streamcoord.auth import new_token as generate_token
from streamcoord.backfill import BackfillManager
from streamcoord.cli._uvicorn import QuietServer, stop_on
from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.cli.telemetry import telemetry
from streamcoord.control import CommandTracker, explain_stage
from streamcoord.core import Explanation
from streamcoord.emit import Emitter
from streamcoord.errors import ConfigError
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.readmodel import DEFAULT_DATABASE, open_store, project
from streamcoord.runtime.settings import TopicNames
from streamcoord.runtime.specs import SpecsFollower

__all__ = ["DEFAULT_PORT", "ServeOptions", "auth_registry", "serve"]

log = logging.getLogger("streamcoord")

DEFAULT_PORT = 8090
#: The name of the admin token ``serve`` makes when none is configured.
GENERATED_TOKEN_NAME = "generated-admin"  # noqa: S105 - a name, not a secret


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    database: str
    rebuild: bool
    max_body_bytes: int
    grace: int


def serve(
    spec: Annotated[
        list[Path] | None,
        typer.Option("--spec", exists=True, help="Spec files or directories (default: every "
                     "version published with `streamcoord specs apply`, followed)."),
    ] = None,
    database: Annotated[
        str, typer.Option(envvar="STREAMCOORD_DATABASE",
                          help="The read model: sqlite:///FILE or postgresql://...")
    ] = DEFAULT_DATABASE,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Empty the store and replay the topics into it.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    insecure: Annotated[
        bool, typer.Option("--insecure", help="No authentication (refused off loopback).")
    ] = False,
    max_body_bytes: Annotated[
        int, typer.Option(min=1024, envvar="STREAMCOORD_API_MAX_BODY_BYTES",
                          help="Larger request bodies are refused with 413.")
    ] = DEFAULT_MAX_BODY_BYTES,
    grace: Annotated[
        int, typer.Option(min=0, help="Seconds open requests get to finish on SIGTERM/SIGINT.")
    ] = 10,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:  # fmt: skip
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs) over a read model of every
    run, kept up to date from Kafka."""
    kafka = kafka_settings(bootstrap_servers, config, topic_prefix)
    tokens = auth_registry(config, host, insecure=insecure)
    options = ServeOptions(host, port, database, rebuild, max_body_bytes, grace)
    with telemetry("streamcoord-serve"):
        asyncio.run(_serve(kafka, spec, tokens, options))


def auth_registry(config: Path | None, host: str, *, insecure: bool) -> TokenRegistry:
    """The tokens to accept; prints a generated admin token when none are configured."""
    if insecure:
        if not is_loopback(host):
            raise ConfigError(
                f"--insecure serves without authentication, so it binds to loopback only, not"
                f" {host}",
                hint="drop --insecure and configure tokens (`streamcoord token create`)",
            )  # fmt: skip
        log.warning("--insecure: no authentication; every caller is admin")
        return TokenRegistry(open_as=Principal("anonymous", Role.admin))
    tokens = AuthSettings.load(config).registry()
    if tokens.empty:
        token = generate_token()
        tokens.add(GENERATED_TOKEN_NAME, hash_token(token), Role.admin)
        typer.echo(f"admin token (shown once, valid until this process stops): {token}")
    return tokens


async def _serve(
    kafka: KafkaSettings, spec: list[Path] | None, tokens: TokenRegistry, options: ServeOptions
) -> None:
    topics = TopicNames(kafka.topic_prefix)
    client = kafka.client_kwargs()
    stop = asyncio.Event()
    caught_up = asyncio.Event()
    store = open_store(options.database)
    try:
        async with _command_path(kafka, topics) as commands, _specs(kafka, topics, spec) as specs:
            projector = asyncio.create_task(
                project(store, client, topics, stop, rebuild=options.rebuild, caught_up=caught_up),
                name="projector",
            )

            async def explainer(run_id: str, stage: str) -> Explanation | None:
                return await explain_stage(client, topics, specs.catalogs(), run_id, stage)

            backfills = BackfillManager(kafka, topics.events, topics.runs)
            services = ApiServices(
                store=store, specs=specs, commands=commands, explainer=explainer, tokens=tokens,
                max_body_bytes=options.max_body_bytes,
                ready=lambda: caught_up.is_set() and commands.tracker.caught_up.is_set(),
                backfills=backfills,
            )  # fmt: skip
            try:
                await _run_server(services, options, projector)
            finally:
                await backfills.close()  # their requested runs go on
            stop.set()
            await projector
    finally:
        store.close()
    log.info("serve stopped cleanly")


async def _run_server(
    services: ApiServices, options: ServeOptions, projector: asyncio.Task[None]
) -> None:
    app = create_app(services)
    server = QuietServer(uvicorn.Config(
        app, host=options.host, port=options.port, log_level="info",
        timeout_graceful_shutdown=options.grace,
    ))  # fmt: skip
    stop_on(server, app.state.feed.close)

    def projector_ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the projector stopped: %r; stopping", task.exception())
        app.state.feed.close()
        server.should_exit = True

    projector.add_done_callback(projector_ended)
    log.info("API docs on http://%s:%d/docs", options.host, options.port)
    await server.serve()


@contextlib.asynccontextmanager
async def _command_path(kafka: KafkaSettings, topics: TopicNames) -> AsyncIterator[CommandSender]:
    tracker = CommandTracker(kafka.client_kwargs(), topics)
    await tracker.start()
    try:
        async with Emitter(kafka, topic=topics.events, linger_ms=0) as emitter:
            yield CommandSender(emitter, tracker)
    finally:
        await tracker.stop()


@contextlib.asynccontextmanager
async def _specs(
    kafka: KafkaSettings, topics: TopicNames, paths: list[Path] | None
) -> AsyncIterator[SpecViews]:
    if paths:
        yield LocalSpecs(paths)
        return
    follower = SpecsFollower(kafka.client_kwargs(), topics)
    await follower.start()
    try:
        yield FollowedSpecs(follower)
    finally:
        await follower.stop()
