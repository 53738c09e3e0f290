"""``streamcoord status``, ``runs`` and ``explain``: what the coordinator knows, read from Kafka."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from streamcoord.cli.common import (
    BootstrapOption,
    ConfigOption,
    PrefixOption,
    kafka_settings,
    load_catalog,
)
from streamcoord.control import explain_stage
from streamcoord.core import Explanation
from streamcoord.errors import ConfigError, EventError
from streamcoord.events.codec import decode
from streamcoord.events.models import RunRecord
from streamcoord.kafka.records import read_topic
from streamcoord.runtime.settings import TopicNames

__all__ = ["explain", "latest_runs", "runs", "status"]

STATUS_STYLE = {
    "succeeded": "green", "running": "cyan", "triggered": "cyan", "ready": "blue",
    "pending": "dim", "queued": "dim", "retry_wait": "yellow", "failed": "red",
    "timed_out": "red", "upstream_failed": "red", "cancelled": "magenta", "skipped": "dim",
}  # fmt: skip

JsonFlag = Annotated[bool, typer.Option("--json", help="One JSON object per line, for scripts.")]


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


async def latest_runs(client_kwargs: dict[str, Any], topic: str) -> list[RunRecord]:
    """The newest record of every run (the runs topic is compacted and keyed by run id)."""
    latest: dict[str, RunRecord] = {}
    for stored in (await read_topic(client_kwargs, topic)).records:
        try:
            record = decode(stored.value, stored.headers)
        except EventError:
            continue  # not ours to show; the topic is written only by coordinators
        if isinstance(record, RunRecord):
            latest[record.data.run_id] = record
    return sorted(latest.values(), key=lambda r: (r.data.pipeline, r.data.run_key, r.data.run_id))


def _fetch_runs(
    bootstrap_servers: str | None, config: Path | None, topic_prefix: str | None
) -> list[RunRecord]:
    kafka = kafka_settings(bootstrap_servers, config)
    topics = TopicNames(topic_prefix if topic_prefix is not None else kafka.topic_prefix)
    return asyncio.run(latest_runs(kafka.client_kwargs(), topics.runs))


def _stage_summary(record: RunRecord) -> str:
    counts = Counter(record.data.stages.values())
    done = counts["succeeded"] + counts["skipped"]
    return f"{done}/{len(record.data.stages)}"


def runs(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline's runs.")] = None,
    state: Annotated[str | None, typer.Option("--status", help="Only runs in this status.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many (newest last).")] = 50,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """List runs with their status and stages."""
    records = [
        r
        for r in _fetch_runs(bootstrap_servers, config, topic_prefix)
        if (pipeline is None or r.data.pipeline == pipeline)
        and (state is None or r.data.status == state)
    ][-limit:]
    if as_json:
        for record in records:
            typer.echo(orjson.dumps(record.data.model_dump(mode="json")).decode())
        return
    table = Table(title=f"{len(records)} runs", title_justify="left")
    for column in ("run", "pipeline", "run key", "status", "stages done", "trace"):
        table.add_column(column)
    for record in records:
        data = record.data
        table.add_row(
            data.run_id, data.pipeline, data.run_key, _styled(data.status),
            _stage_summary(record), data.trace_id or "",
        )  # fmt: skip
    Console().print(table)


def status(
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Runs per pipeline and status, and each pipeline's newest run with its trace id."""
    records = _fetch_runs(bootstrap_servers, config, topic_prefix)
    by_pipeline: dict[str, Counter[str]] = {}
    newest: dict[str, RunRecord] = {}
    for record in records:
        by_pipeline.setdefault(record.data.pipeline, Counter())[record.data.status] += 1
        newest[record.data.pipeline] = record
    if as_json:
        for name, counts in sorted(by_pipeline.items()):
            latest = newest[name].data
            line = {
                "pipeline": name,
                "runs": dict(sorted(counts.items())),
                "latest_run": latest.run_id,
                "latest_status": latest.status,
                "trace_id": latest.trace_id,
            }
            typer.echo(orjson.dumps(line).decode())
        return
    table = Table(title="streamcoord status", title_justify="left")
    for column in ("pipeline", "runs by status", "latest run", "status", "trace id"):
        table.add_column(column)
    for name, counts in sorted(by_pipeline.items()):
        latest = newest[name].data
        summary = ", ".join(f"{_styled(s)} {n}" for s, n in sorted(counts.items()))
        table.add_row(name, summary, latest.run_id, _styled(latest.status), latest.trace_id or "")
    console = Console()
    console.print(table if by_pipeline else "no runs yet")


def explain(
    run_id: Annotated[str, typer.Argument(help="Run id, e.g. daily/2026-11-28.")],
    stage: Annotated[str, typer.Argument(help="Stage name.")],
    spec: Annotated[
        list[Path] | None,
        typer.Option(help="Spec files or directories the coordinator runs (default examples/)."),
    ] = None,
    as_json: JsonFlag = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Why a stage is, or is not yet, ready: needs met and by which events, what holds it back."""
    catalog = load_catalog(spec or [Path("examples")])
    kafka = kafka_settings(bootstrap_servers, config)
    topics = TopicNames(topic_prefix if topic_prefix is not None else kafka.topic_prefix)
    explanation = asyncio.run(explain_stage(kafka.client_kwargs(), topics, catalog, run_id, stage))
    if explanation is None:
        raise ConfigError(
            f"no run {run_id!r} with a stage {stage!r} in the coordinator's state",
            hint="`streamcoord runs` lists the run ids; finished runs leave the state"
            " STREAMCOORD_RETENTION_S after they end",
        )
    if as_json:
        typer.echo(orjson.dumps(explanation).decode())  # orjson serializes dataclasses
        return
    _print_explanation(explanation)


def _print_explanation(explanation: Explanation) -> None:
    console = Console()
    console.print(
        f"[bold]{explanation.run_id}[/] stage [bold]{explanation.stage}[/]: "
        f"{_styled(explanation.status)} (attempt {explanation.attempt}, rule {explanation.rule})"
    )
    if explanation.reason:
        console.print(f"  reason: {explanation.reason}")
    table = Table("need", "status", "satisfied", "settled by event", title_justify="left")
    for need in explanation.needs:
        table.add_row(
            need.need, _styled(need.status), "yes" if need.satisfied else "no", need.by_event or ""
        )
    if explanation.needs:
        console.print(table)
    for hold in explanation.holds:
        console.print(f"  [yellow]held back:[/] {hold}")
    if explanation.caused_by:
        console.print(f"  caused by events: {', '.join(explanation.caused_by)}")
