"""``streamcoord dev``: tools for running streamcoord on one machine."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from streamcoord.devtools.kafka import (
    DEFAULT_KAFKA_VERSION,
    SUPPORTED_KAFKA_VERSIONS,
    BrokerSettings,
    LocalKafka,
    check_port_free,
    jars_cached,
    resolve_jars,
    running_brokers,
)
from streamcoord.errors import BrokerStartError

__all__ = ["app", "kafka"]

app = typer.Typer(help="Local development tools.", no_args_is_help=True)

_console = Console(highlight=False, soft_wrap=True)


_VERSIONS = ", ".join(SUPPORTED_KAFKA_VERSIONS)


@app.command()
def kafka(
    *,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 9092,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Data, log and pid file. Default: per version and port in the cache.",
        ),
    ] = None,
    kafka_version: Annotated[
        str, typer.Option(help=f"Apache Kafka version; supported: {_VERSIONS}.")
    ] = DEFAULT_KAFKA_VERSION,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start, print the address, return.")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop a detached broker (found by its pid file).")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for startup.")] = 90.0,
) -> None:
    """Run a single-node Kafka broker (KRaft) on 127.0.0.1 from Apache's jars.

    In the foreground it runs until Ctrl-C or SIGTERM. The jars are fetched with Maven the
    first time and cached (STREAMCOORD_CACHE, default ~/.cache/streamcoord).
    """
    settings = BrokerSettings(
        port=port, data_dir=data_dir, version=kafka_version, startup_timeout=timeout
    )
    if stop:
        _stop(settings, explicit_dir=data_dir is not None)
        return
    broker = LocalKafka(settings)
    if detach and broker.running_pid() is not None:
        _console.print(
            f"Kafka is already running at [bold]{broker.bootstrap}[/] (pid {broker.running_pid()})."
        )
        return
    if broker.running_pid() is None:  # else start() says which broker holds the port
        check_port_free(port)  # before any download: a busy port is the cheaper thing to learn
    _fetch_jars(kafka_version)
    if detach:
        _start(broker)
        _console.print(
            "Stop it with [bold]streamcoord dev kafka --stop"
            f"{'' if port == 9092 else f' --port {port}'}[/]."
        )
        return
    _run_foreground(broker)


def _fetch_jars(version: str) -> None:
    if jars_cached(version):
        return
    with _console.status(f"Fetching Apache Kafka {version} jars with Maven (first run only)..."):
        libs = resolve_jars(version)
    _console.print(f"Kafka {version} jars cached in {libs}")


def _start(broker: LocalKafka) -> None:
    with _console.status(f"Starting Kafka {broker.settings.version} on {broker.bootstrap}..."):
        broker.start()
    _console.print(f"Kafka {broker.settings.version} is ready at [bold]{broker.bootstrap}[/]")
    _console.print(f"  log:  {broker.log_file}")
    _console.print(f"  data: {broker.data_dir}")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _run_foreground(broker: LocalKafka) -> None:
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _start(broker)
        _console.print("Press Ctrl-C to stop.")
        code = broker.wait()
    except KeyboardInterrupt:
        with _console.status("Stopping Kafka..."):
            broker.stop()
        _console.print("Kafka stopped.")
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise BrokerStartError(
        f"the Kafka broker exited on its own with code {code}", hint=f"read {broker.log_file}"
    )


def _stop(settings: BrokerSettings, *, explicit_dir: bool) -> None:
    brokers = [LocalKafka(settings)] if explicit_dir else running_brokers(settings.port)
    stopped = [broker for broker in brokers if broker.stop()]
    for broker in stopped:
        _console.print(f"Stopped the Kafka broker at {broker.bootstrap} ({broker.data_dir}).")
    if not stopped:
        _console.print(f"No detached Kafka broker for port {settings.port} is running.")
