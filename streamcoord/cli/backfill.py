"""``streamcoord backfill PIPELINE --from KEY --to KEY``: one run per partition key, N at once."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import orjson
import typer

from streamcoord.backfill import BackfillPlan, Progress, order_keys, partition_keys
from streamcoord.backfill._runner import backfill_progress, cancel_backfill, run_backfill
from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.cli.operate import parse_params
from streamcoord.errors import ConfigError
from streamcoord.events.principal import local_principal
from streamcoord.runtime.settings import TopicNames

__all__ = ["backfill"]


def backfill(
    pipeline: Annotated[str, typer.Argument(help="The pipeline (it needs a manual trigger).")],
    first: Annotated[
        str | None,
        typer.Option("--from", help="First key: 2026-01-01 (daily) or 2026-01-01T00 (hourly)."),
    ] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last key, inclusive.")] = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="A listed key instead of a range (repeat it).")
    ] = None,
    max_active: Annotated[
        int, typer.Option("--max-active", "-n", min=1, help="At most this many runs unfinished.")
    ] = 4,
    order: Annotated[
        Literal["lowest", "newest"], typer.Option(help="lowest key first, or newest first.")
    ] = "lowest",
    param: Annotated[list[str] | None, typer.Option(help="KEY=VALUE run parameter.")] = None,
    cancel: Annotated[
        bool,
        typer.Option(
            "--cancel", help="Cancel the backfill's unfinished runs (stop its CLI first)."
        ),
    ] = False,
    status: Annotated[
        bool,
        typer.Option(
            "--status", help="Print the backfill's progress from the runs topic and exit."
        ),
    ] = False,
    idle_timeout: Annotated[
        float, typer.Option(help="Give up after this many seconds without progress.")
    ] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Progress as JSON lines.")] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Run PIPELINE once per partition key of a range (or listed keys), at most --max-active at
    once. Run ids are PIPELINE/KEY: keys whose run exists are not requested again, so a
    backfill stopped with Ctrl-C (paused) resumes where it was when started again, and a
    finished one requests nothing. --cancel cancels its unfinished runs as a group; --status
    prints its progress (from any machine: it is read from the runs topic)."""
    if key:
        keys = list(key)
    elif first is not None and last is not None:
        keys = partition_keys(first, last)
    else:
        raise ConfigError("say which keys", hint="give --from and --to, or --key (repeated)")
    plan = BackfillPlan(pipeline, order_keys(keys, order), max_active)
    kafka = kafka_settings(bootstrap_servers, config)
    topics = TopicNames(topic_prefix if topic_prefix is not None else kafka.topic_prefix)
    who = local_principal()
    if status:
        plan.requesting = False
        show(asyncio.run(backfill_progress(kafka, topics.runs, plan)), as_json, pipeline)
        return
    if cancel:
        cancelled = asyncio.run(cancel_backfill(kafka, topics.events, topics.runs, plan, who))
        typer.echo(
            orjson.dumps({"cancelled": cancelled}).decode()
            if as_json
            else f"cancelled {len(cancelled)} run(s)"
        )
        return

    try:
        final = asyncio.run(
            run_backfill(
                kafka,
                topics.events,
                topics.runs,
                plan,
                params=parse_params(param or []),
                principal=who,
                on_progress=lambda progress: show(progress, as_json, pipeline),
                idle_timeout_s=idle_timeout,
            )
        )
    except KeyboardInterrupt:
        typer.echo("paused: the requested runs go on; run the same command to resume", err=True)
        raise typer.Exit(130) from None
    if final.failed or final.cancelled:
        raise typer.Exit(1)


def show(progress: Progress, as_json: bool, pipeline: str) -> None:
    if as_json:
        typer.echo(orjson.dumps({**progress.__dict__, "done": progress.done}).decode())
    else:
        typer.echo(
            f"{pipeline}: {progress.finished}/{progress.total} finished "
            f"({progress.succeeded} succeeded, {progress.failed} failed, "
            f"{progress.cancelled} cancelled), {progress.active} active, "
            f"{progress.started} started, {progress.requested} requested"
        )
