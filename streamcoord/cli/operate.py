"""Operator commands: ``trigger``, ``cancel``, ``retry``, ``pause`` and ``resume``.

Each puts one command event on the events topic (keyed like every event, so it reaches the
coordinator that owns the run or pipeline), with ``user@host`` as its principal, and prints its
event id. With ``--wait`` it follows
the command to its outcome (see :mod:`streamcoord.cli._outcome`) and exits 0 on success, 1 when
the run ended otherwise, 3 when the coordinator rejected the command, 4 on timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from pydantic import JsonValue

from streamcoord.cli._follow import Follower
from streamcoord.cli._outcome import (
    CancelWatch,
    ControlWatch,
    Outcome,
    RequestWatch,
    RetryWatch,
    Watch,
)
from streamcoord.cli.common import BootstrapOption, ConfigOption, kafka_settings
from streamcoord.cli.inspect import latest_runs
from streamcoord.control import (
    cancel_run,
    default_run_key,
    pause_pipeline,
    request_run,
    resume_pipeline,
    retry_stage,
)
from streamcoord.emit import Delivery, Emitter
from streamcoord.errors import ConfigError
from streamcoord.events.models import CloudEvent, RunRecordData
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime.settings import TopicNames
from streamcoord.runtime.specs import applied_by

__all__ = ["cancel", "parse_params", "pause", "resume", "retry", "trigger"]

#: The CloudEvents source of every command this CLI sends.
SOURCE = "streamcoord/cli"

WaitFlag = Annotated[
    bool, typer.Option("--wait", help="Follow the command to its outcome; the exit code says it.")
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds --wait waits, then exit 4."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON object on stdout, for scripts.")]
PrefixOption = Annotated[str | None, typer.Option(help="Prefix of every topic name.")]
RunArgument = Annotated[
    str, typer.Argument(help="Run id, e.g. daily/2026-11-28 (`streamcoord runs`).")
]


def parse_params(items: list[str]) -> dict[str, JsonValue]:
    """``--param k=v``: the value as JSON when it parses (``3``, ``true``, ``[1]``), else text."""
    params: dict[str, JsonValue] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param {item!r} is not name=value", hint="e.g. --param epochs=3")
        try:
            params[name] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            params[name] = raw
    return params


def trigger(
    pipeline: Annotated[str, typer.Argument(help="Pipeline to run (it needs a manual trigger).")],
    key: Annotated[
        str | None, typer.Option("--key", help="Run key (default: the current UTC time).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="name=value run parameter; repeatable.")
    ] = None,
    wait: WaitFlag = False,
    timeout: TimeoutOption = 600.0,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Request a run of PIPELINE for a run key; prints the request's event id (with --wait, the
    run id and how the run ended)."""
    run_key = key or default_run_key(datetime.now(UTC))
    event = request_run(
        pipeline, run_key, parse_params(param or []), source=SOURCE, principal=applied_by()
    )
    watch = RequestWatch(f"{pipeline}/{run_key}", event.id)
    _send(event, watch, wait, timeout, as_json, bootstrap_servers, config, topic_prefix)


def cancel(
    run_id: RunArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept on the run.")] = "",
    wait: WaitFlag = False,
    timeout: TimeoutOption = 120.0,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Cancel a run and its unfinished stages; --wait succeeds once the run is cancelled."""
    event = cancel_run(run_id, reason, source=SOURCE, principal=applied_by())

    def watch(before: dict[str, RunRecordData]) -> Watch:
        return CancelWatch(run_id, before.get(run_id))

    _send(event, watch, wait, timeout, as_json, bootstrap_servers, config, topic_prefix)


def retry(
    run_id: RunArgument,
    stage: Annotated[str, typer.Argument(help="A failed (or timed out) stage of the run.")],
    wait: WaitFlag = False,
    timeout: TimeoutOption = 600.0,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Retry a failed stage of a run now; --wait follows the run to its end."""
    event = retry_stage(run_id, stage, source=SOURCE, principal=applied_by())

    def watch(before: dict[str, RunRecordData]) -> Watch:
        record = before.get(run_id)
        return RetryWatch(run_id, stage, record.attempts.get(stage, 0) if record else 0)

    _send(event, watch, wait, timeout, as_json, bootstrap_servers, config, topic_prefix)


def pause(
    pipeline: Annotated[str, typer.Argument(help="Pipeline to pause.")],
    wait: WaitFlag = False,
    timeout: TimeoutOption = 60.0,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Start no new runs or stages of PIPELINE (matches are held) until it is resumed."""
    event = pause_pipeline(pipeline, source=SOURCE, principal=applied_by())
    watch = ControlWatch("paused")
    _send(event, watch, wait, timeout, as_json, bootstrap_servers, config, topic_prefix)


def resume(
    pipeline: Annotated[str, typer.Argument(help="Pipeline to resume.")],
    wait: WaitFlag = False,
    timeout: TimeoutOption = 60.0,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Undo a pause: held matches are admitted in arrival order."""
    event = resume_pipeline(pipeline, source=SOURCE, principal=applied_by())
    watch = ControlWatch("resumed")
    _send(event, watch, wait, timeout, as_json, bootstrap_servers, config, topic_prefix)


#: A watch, or a function that makes one from the newest run records from before the send.
WatchFor = Watch | Callable[[dict[str, RunRecordData]], Watch]


def _send(
    event: CloudEvent, watch: WatchFor, wait: bool, timeout: float, as_json: bool,
    bootstrap_servers: str | None, config: Path | None, topic_prefix: str | None,
) -> None:  # fmt: skip
    kafka = kafka_settings(bootstrap_servers, config)
    topics = TopicNames(topic_prefix if topic_prefix is not None else kafka.topic_prefix)
    if not wait:
        delivery = asyncio.run(_deliver(kafka, topics, event))
        _print_sent(delivery, as_json)
        return
    delivery, outcome = asyncio.run(_deliver_and_follow(kafka, topics, event, watch, timeout))
    _print_outcome(delivery, outcome, as_json)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


async def _deliver(kafka: KafkaSettings, topics: TopicNames, event: CloudEvent) -> Delivery:
    async with Emitter(kafka, topic=topics.events) as emitter:
        return await emitter.deliver(event)


async def _deliver_and_follow(
    kafka: KafkaSettings, topics: TopicNames, event: CloudEvent, watch: WatchFor, wait_s: float
) -> tuple[Delivery, Outcome]:
    async with Follower(kafka.client_kwargs(), topics) as follower:
        if not isinstance(watch, Watch):  # needs the run's newest record from before the send
            watch = watch(await _newest_runs(kafka, topics))
        delivery = await _deliver(kafka, topics, event)
        return delivery, await follower.outcome(delivery, watch, wait_s)


async def _newest_runs(kafka: KafkaSettings, topics: TopicNames) -> dict[str, RunRecordData]:
    return {r.data.run_id: r.data for r in await latest_runs(kafka.client_kwargs(), topics.runs)}


def _print_sent(delivery: Delivery, as_json: bool) -> None:
    if as_json:
        line = {"event_id": delivery.event.id, "type": delivery.event.type, "key": delivery.key}
        typer.echo(orjson.dumps(line).decode())
    else:
        typer.echo(delivery.event.id)


def _print_outcome(delivery: Delivery, outcome: Outcome, as_json: bool) -> None:
    if as_json:
        line = {
            "event_id": delivery.event.id, "type": delivery.event.type, "run_id": outcome.run_id,
            "status": outcome.status, "ok": outcome.ok, "reason": outcome.reason,
            "message": outcome.message,
        }  # fmt: skip
        typer.echo(orjson.dumps(line).decode())
        return
    subject = f"run {outcome.run_id}" if outcome.run_id else f"command {delivery.event.id}"
    detail = ": ".join(part for part in (outcome.reason, outcome.message) if part)
    typer.echo(f"{subject} {outcome.status}" + (f" ({detail})" if detail else ""))
