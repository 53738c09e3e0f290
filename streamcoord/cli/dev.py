"""``streamcoord dev``: tools for running streamcoord on one machine."""

from __future__ import annotations

import enum
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from streamcoord.devtools._security import (
    ADMIN,
    CLIENT,
    COORDINATOR,
    COORDINATOR_GROUP,
    SCRAM_MECHANISM,
    WORKER_GROUP_PREFIX,
)
from streamcoord.devtools.jaeger import (
    DEFAULT_JAEGER_VERSION,
    JaegerPorts,
    JaegerSettings,
    LocalJaeger,
    binary_path,
    build_jaeger,
    jaeger_cached,
    require_go,
)
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
from streamcoord.errors import BrokerStartError, EnvironmentProblem

__all__ = ["app", "jaeger", "kafka"]

app = typer.Typer(help="Local development tools.", no_args_is_help=True)

_console = Console(highlight=False, soft_wrap=True)


_VERSIONS = ", ".join(SUPPORTED_KAFKA_VERSIONS)


class Security(enum.StrEnum):
    """``--security`` choices: the entries of SECURITY_MODES."""

    scram_tls = "scram-tls"


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
    security: Annotated[
        Security | None,
        typer.Option(
            help="scram-tls: SASL_SSL with SCRAM-SHA-512 users, TLS with a session CA, and ACLs."
            " Default: PLAINTEXT.",
        ),
    ] = None,
) -> None:
    """Run a single-node Kafka broker (KRaft) on 127.0.0.1 from Apache's jars.

    In the foreground it runs until Ctrl-C or SIGTERM. The jars are fetched with Maven the
    first time and cached (STREAMCOORD_CACHE, default ~/.cache/streamcoord).

    With --security scram-tls the client listener needs TLS and a SCRAM-SHA-512 login: users
    admin (super user), coordinator and client get passwords written to a file only you can
    read; the command prints the client settings (never a password).
    """
    settings = BrokerSettings(
        port=port, data_dir=data_dir, version=kafka_version, startup_timeout=timeout,
        security=security.value if security else None,
    )  # fmt: skip
    if stop:
        _stop(settings, explicit_dir=data_dir is not None)
        return
    broker = LocalKafka(settings)
    if detach and broker.running_pid() is not None:
        _console.print(
            f"Kafka is already running at [bold]{broker.bootstrap}[/] (pid {broker.running_pid()})."
        )
        _print_client_settings(broker)
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
    _print_client_settings(broker)


def _print_client_settings(broker: LocalKafka) -> None:
    """The settings a client of a secured broker gives; the passwords stay in their file."""
    security = broker.load_security()
    if security is None:
        return
    lines = [
        "Client settings ([kafka] table of the STREAMCOORD_CONFIG file, or STREAMCOORD_KAFKA_*):",
        f'  bootstrap_servers = "{broker.bootstrap}"',
        '  security_protocol = "SASL_SSL"',
        f'  sasl_mechanism = "{SCRAM_MECHANISM}"',
        f'  sasl_plain_username = "{CLIENT}"  # or "{COORDINATOR}", "{ADMIN}"',
        f'  ssl_cafile = "{security.ca_file}"',
        f"  sasl_plain_password: the user's entry in {security.password_file}",
        f"Users: {ADMIN} (super user: topics, ACLs), {COORDINATOR} (`streamcoord run`, group"
        f" {COORDINATOR_GROUP}), {CLIENT} (workers in groups {WORKER_GROUP_PREFIX}*, emit,"
        " ingest, status/runs).",
    ]
    for line in lines:
        _console.print(line, markup=False)


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


@app.command()
def jaeger(
    *,
    otlp_grpc_port: Annotated[int, typer.Option(min=1, max=65535, help="OTLP gRPC.")] = 4317,
    otlp_http_port: Annotated[int, typer.Option(min=1, max=65535, help="OTLP HTTP.")] = 4318,
    query_port: Annotated[int, typer.Option(min=1, max=65535, help="Query API (HTTP).")] = 16686,
    query_grpc_port: Annotated[int, typer.Option(min=1, max=65535, help="Query gRPC.")] = 16685,
    health_port: Annotated[int, typer.Option(min=1, max=65535, help="Health check.")] = 13133,
    detach: Annotated[
        bool, typer.Option("--detach", help="Start, print the addresses, return.")
    ] = False,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop a detached Jaeger (found by its pid file).")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for startup.")] = 60.0,
) -> None:
    """Run Jaeger v2 on 127.0.0.1 with in-memory storage, built from source with Go.

    The first run builds it with the local Go toolchain (about 15 minutes on 2 cores, 3 GB of
    Go caches) and caches the binary (STREAMCOORD_CACHE, default ~/.cache/streamcoord); later
    runs need no network. Send OTLP to 4317 (gRPC) or 4318 (HTTP); read traces from
    http://127.0.0.1:16686/api/v3/traces/<trace_id>.
    """
    ports = JaegerPorts(otlp_grpc_port, otlp_http_port, query_port, query_grpc_port, health_port)
    server = LocalJaeger(JaegerSettings(ports=ports, startup_timeout=timeout))
    if stop:
        stopped = server.stop()
        _console.print("Jaeger stopped." if stopped else "No detached Jaeger is running.")
        return
    if server.running_pid() is not None:
        if detach:
            _console.print(f"Jaeger is already running (pid {server.running_pid()}).")
            return
        raise EnvironmentProblem(
            f"a detached Jaeger is already running (pid {server.running_pid()})",
            hint="use it, or stop it: `streamcoord dev jaeger --stop`",
        )
    for busy in ports.all():  # before any build: a busy port is the cheaper thing to learn
        check_port_free(busy)
    _build_jaeger()
    _start_jaeger(server)
    if detach:
        suffix = "" if query_port == 16686 else f" --query-port {query_port}"
        _console.print(f"Stop it with [bold]streamcoord dev jaeger --stop{suffix}[/].")
        return
    _run_jaeger_foreground(server)


def _build_jaeger() -> None:
    if jaeger_cached():
        return
    require_go()
    target = binary_path()
    _console.print(f"Building Jaeger {DEFAULT_JAEGER_VERSION} with Go into {target}")
    _console.print("  (first run only: ~15 minutes on 2 cores, ~3 GB of Go module and build cache)")
    with _console.status("Building Jaeger...") as status:
        build_jaeger(progress=lambda line: status.update(f"Building Jaeger: {line[:90]}"))
    _console.print(f"Jaeger built: {target}")


def _start_jaeger(server: LocalJaeger) -> None:
    settings = server.settings
    with _console.status("Starting Jaeger..."):
        server.start()
    _console.print(f"Jaeger is ready; query API at [bold]{settings.query_url}[/]")
    _console.print(f"  OTLP gRPC: {settings.otlp_grpc_endpoint}")
    _console.print(f"  OTLP HTTP: {settings.otlp_http_endpoint}")
    _console.print(f"  a trace:   {settings.query_url}/api/v3/traces/<trace_id>")
    _console.print(f"  log:       {server.log_file}")


def _run_jaeger_foreground(server: LocalJaeger) -> None:
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        _console.print("Press Ctrl-C to stop.")
        code = server.wait()
    except KeyboardInterrupt:
        with _console.status("Stopping Jaeger..."):
            server.stop()
        _console.print("Jaeger stopped.")
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise EnvironmentProblem(
        f"Jaeger exited on its own with code {code}", hint=f"read {server.log_file}"
    )
