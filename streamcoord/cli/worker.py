"""``streamcoord worker shell|webhook|streaming|dbt|airflow``: the built-in executors."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption
from streamcoord.cli.dbt import DbtPythonOption
from streamcoord.cli.telemetry import telemetry
from streamcoord.events import topology
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.pipelines.executors import AIRFLOW_TRIGGER_TOPIC, DBT_TRIGGER_TOPIC
from streamcoord.runtime.health import HealthServer
from streamcoord.worker import Handler, Worker, WorkerSettings
from streamcoord.worker.airflow import AirflowExecutor
from streamcoord.worker.dbt import DbtExecutor
from streamcoord.worker.shell import KILL_GRACE_SECONDS, ShellExecutor
from streamcoord.worker.streaming import OffsetFollowerJob
from streamcoord.worker.tracing import WorkerTracing
from streamcoord.worker.webhook import WebhookExecutor

__all__ = ["STREAMING_TOPIC", "app", "serve"]

#: Default executor topic of streaming stages (streamcoord/events/topics.yaml).
STREAMING_TOPIC = topology.STREAMING_TRIGGERS

log = logging.getLogger("streamcoord")
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

app = typer.Typer(
    help="Run stage executors: each consumes an executor topic.", no_args_is_help=True
)

TopicOption = Annotated[
    list[str] | None,
    typer.Option("--topic", help="Executor topic (repeatable; default streamcoord.triggers)."),
]
ConcurrencyOption = Annotated[int, typer.Option(min=1, help="Attempts running at once.")]
GroupOption = Annotated[str | None, typer.Option(help="Consumer group (default per executor).")]
HeartbeatOption = Annotated[float, typer.Option(help="Seconds between heartbeats.")]
GraceOption = Annotated[
    float, typer.Option(help="Seconds in-flight attempts may finish after SIGTERM.")
]


class Engine(StrEnum):
    """What runs a streaming job: plain aiokafka or a Faust app."""

    aiokafka = "aiokafka"
    faust = "faust"


#: CLI parameter of each worker setting a command passes (its default is the executor kind's).
_PARAMETERS = {
    "concurrency": "concurrency", "heartbeat_interval_s": "heartbeat_interval",
    "shutdown_grace_s": "shutdown_grace",
}  # fmt: skip


def _worker(
    ctx: typer.Context,
    kind: str,
    topics: list[str] | None,
    group_id: str | None,
    options: dict[str, float | int],
    kafka: tuple[str | None, Path | None, str | None],
) -> Worker:
    """A worker of ``kind``: each setting from its option when given, else from the
    environment or config (``STREAMCOORD_WORKER_*``), else the kind's default."""
    bootstrap_servers, config, topic_prefix = kafka
    settings = KafkaSettings.load(
        config, bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix
    )
    given = _given_options(ctx, options)
    if group_id:
        given["group_id"] = group_id
    if topics:
        given["topics"] = topics
    worker_settings = WorkerSettings(**given)  # type: ignore[arg-type]  # pydantic validates
    kind_defaults: dict[str, object] = {"group_id": f"streamcoord-worker-{kind}", **options}
    worker_settings = worker_settings.model_copy(update={
        name: value for name, value in kind_defaults.items()
        if name not in worker_settings.model_fields_set
    })  # fmt: skip
    tracing = WorkerTracing()
    return Worker(
        worker_settings, settings, middleware=[tracing.middleware], send_hooks=[tracing.send_hook]
    )


def _given_options(ctx: typer.Context, options: dict[str, float | int]) -> dict[str, object]:
    """The options the user typed (not left at the command's default)."""
    return {
        name: value for name, value in options.items()
        if getattr(ctx.get_parameter_source(_PARAMETERS[name]), "name", "DEFAULT") != "DEFAULT"
    }  # fmt: skip


def serve(worker: Worker, handler: Handler) -> None:
    """Run ``handler`` for every trigger on the worker's topics until SIGTERM or SIGINT."""
    worker.registry.add(None, handler)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        topics = ", ".join(worker.kafka.topic(t) for t in worker.settings.topics)
        log.info("worker consuming %s as group %s", topics, worker.settings.group_id)
        health = await _start_health(worker)
        try:
            await worker.run(stop)
        finally:
            if health is not None:
                await health.stop()
        log.info("worker stopped: %s", worker.status.as_dict())

    with telemetry("streamcoord-worker"):
        asyncio.run(main())


async def _start_health(worker: Worker) -> HealthServer | None:
    """The health endpoints, when ``health_port`` is set: ready while the worker consumes."""
    settings = worker.settings
    if settings.health_port is None:
        return None

    def snapshot() -> dict[str, object]:
        return {"ready": worker.status.consuming, **worker.status.as_dict()}

    health = HealthServer(snapshot, settings.health_host, settings.health_port)
    await health.start()
    log.info("health checks on http://%s:%d/livez and /readyz", settings.health_host, health.port)
    return health


@app.command("shell")
def shell(
    ctx: typer.Context,
    topic: TopicOption = None,
    concurrency: ConcurrencyOption = 4,
    group_id: GroupOption = None,
    heartbeat_interval: HeartbeatOption = 10.0,
    shutdown_grace: GraceOption = 30.0,
    kill_grace: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds a cancelled or timed-out command's process group has between"
            " SIGTERM and SIGKILL (a stage's executor.config.kill_grace_seconds wins).",
        ),
    ] = KILL_GRACE_SECONDS,
    topic_prefix: PrefixOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Run each trigger's `executor.config.command`; the exit code decides the outcome."""
    options = {"concurrency": concurrency, "heartbeat_interval_s": heartbeat_interval,
               "shutdown_grace_s": shutdown_grace}  # fmt: skip
    kafka = (bootstrap_servers, config, topic_prefix)
    worker = _worker(ctx, "shell", topic, group_id, options, kafka)
    serve(worker, ShellExecutor(kill_grace_s=kill_grace))


@app.command("webhook")
def webhook(
    ctx: typer.Context,
    topic: TopicOption = None,
    concurrency: ConcurrencyOption = 16,
    group_id: GroupOption = None,
    heartbeat_interval: HeartbeatOption = 10.0,
    shutdown_grace: GraceOption = 30.0,
    topic_prefix: PrefixOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """POST each trigger as a CloudEvent to `executor.config.url`; the reply decides."""
    options = {"concurrency": concurrency, "heartbeat_interval_s": heartbeat_interval,
               "shutdown_grace_s": shutdown_grace}  # fmt: skip
    kafka = (bootstrap_servers, config, topic_prefix)
    serve(_worker(ctx, "webhook", topic, group_id, options, kafka), WebhookExecutor())


@app.command("streaming")
def streaming(
    ctx: typer.Context,
    topic: TopicOption = None,
    concurrency: ConcurrencyOption = 8,
    group_id: GroupOption = None,
    heartbeat_interval: HeartbeatOption = 10.0,
    shutdown_grace: GraceOption = 10.0,
    progress_interval: Annotated[
        float, typer.Option(help="Seconds between progress reports.")
    ] = 5.0,
    engine: Annotated[
        Engine, typer.Option(help="faust runs each job as a Faust app (the streaming extra).")
    ] = Engine.aiokafka,
    topic_prefix: PrefixOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Follow each trigger's `executor.config.source_topic`, reporting offsets and watermark."""
    options = {"concurrency": concurrency, "heartbeat_interval_s": heartbeat_interval,
               "shutdown_grace_s": shutdown_grace}  # fmt: skip
    kafka = (bootstrap_servers, config, topic_prefix)
    worker = _worker(ctx, "streaming", topic or [STREAMING_TOPIC], group_id, options, kafka)
    serve(worker, _streaming_job(engine, worker.kafka, progress_interval))


@app.command("dbt")
def dbt(
    ctx: typer.Context,
    topic: Annotated[
        list[str] | None,
        typer.Option("--topic", help=f"Executor topic (repeatable; default {DBT_TRIGGER_TOPIC})."),
    ] = None,
    concurrency: ConcurrencyOption = 2,
    group_id: GroupOption = None,
    heartbeat_interval: HeartbeatOption = 10.0,
    shutdown_grace: GraceOption = 30.0,
    progress_interval: Annotated[
        float, typer.Option(help="Least seconds between progress reports (nodes done).")
    ] = 1.0,
    dbt_python: DbtPythonOption = sys.executable,
    topic_prefix: PrefixOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Run `dbt build` (or `executor.config.command`) for each trigger's selection."""
    options = {"concurrency": concurrency, "heartbeat_interval_s": heartbeat_interval,
               "shutdown_grace_s": shutdown_grace}  # fmt: skip
    kafka = (bootstrap_servers, config, topic_prefix)
    worker = _worker(ctx, "dbt", topic or [DBT_TRIGGER_TOPIC], group_id, options, kafka)
    serve(worker, DbtExecutor(python=dbt_python, progress_interval_s=progress_interval))


@app.command("airflow")
def airflow(
    ctx: typer.Context,
    topic: Annotated[
        list[str] | None,
        typer.Option(
            "--topic", help=f"Executor topic (repeatable; default {AIRFLOW_TRIGGER_TOPIC})."
        ),
    ] = None,
    concurrency: ConcurrencyOption = 16,
    group_id: GroupOption = None,
    heartbeat_interval: HeartbeatOption = 10.0,
    shutdown_grace: GraceOption = 30.0,
    topic_prefix: PrefixOption = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:
    """Trigger each trigger's Airflow DAG run (`executor.config.dag_id`) and follow it."""
    options = {"concurrency": concurrency, "heartbeat_interval_s": heartbeat_interval,
               "shutdown_grace_s": shutdown_grace}  # fmt: skip
    kafka = (bootstrap_servers, config, topic_prefix)
    worker = _worker(ctx, "airflow", topic or [AIRFLOW_TRIGGER_TOPIC], group_id, options, kafka)
    serve(worker, AirflowExecutor())


def _streaming_job(engine: Engine, kafka: KafkaSettings, progress_interval: float) -> Handler:
    if engine is Engine.faust:
        # imported here: faust is the optional streaming extra
        from streamcoord.worker.faust_job import FaustJob  # noqa: PLC0415

        return FaustJob(kafka, progress_interval_s=progress_interval)
    return OffsetFollowerJob(kafka, progress_interval_s=progress_interval)
