"""``streamcoord airflow bridge``: Airflow asset events become streamcoord events."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.emit import Emitter
from streamcoord.integrations.airflow_api import AirflowClient
from streamcoord.integrations.airflow_bridge import ASSET_EVENT_TYPE, AssetEventBridge

__all__ = ["app", "bridge"]

log = logging.getLogger("streamcoord")

app = typer.Typer(help="Airflow: its asset events as streamcoord events.", no_args_is_help=True)


@app.command("bridge")
def bridge(
    base_url: Annotated[
        str, typer.Option(help="The Airflow API server, e.g. http://airflow:8080.")
    ],
    cursor: Annotated[
        Path, typer.Option(help="JSON file keeping how far the bridge got (created if missing).")
    ],
    username: Annotated[
        str | None, typer.Option(envvar="STREAMCOORD_AIRFLOW_USERNAME", help="Airflow user.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="STREAMCOORD_AIRFLOW_PASSWORD",
            show_default=False,
            help="Its password (from the environment: keep it off the command line).",
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="STREAMCOORD_AIRFLOW_TOKEN",
            show_default=False,
            help="A bearer token instead of user and password (from the environment).",
        ),
    ] = None,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 5.0,
    event_type: Annotated[
        str, typer.Option("--type", help="CloudEvents type of the events sent.")
    ] = ASSET_EVENT_TYPE,
    from_beginning: Annotated[
        bool,
        typer.Option(
            help="Without a cursor file: send every asset event Airflow has (default:"
            " only those recorded from now on)."
        ),
    ] = False,
    once: Annotated[bool, typer.Option(help="Poll once, then exit.")] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Poll Airflow's REST API for asset events and send each new one to streamcoord."""
    settings = kafka_settings(bootstrap_servers, config, topic_prefix)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        client = AirflowClient(base_url, token=token, username=username, password=password)
        async with client, Emitter(settings) as emitter:
            relay = AssetEventBridge(
                client, emitter, cursor, interval_s=interval, from_beginning=from_beginning,
                event_type=event_type,
            )  # fmt: skip
            if once:
                typer.echo(f"sent {await relay.poll_once()} asset event(s)")
                return
            log.info("bridging asset events of %s every %gs", base_url, interval)
            await relay.run(stop)
            log.info("bridge stopped after %d asset event(s)", relay.sent)

    asyncio.run(main())
