"""``streamcoord topics``: make the cluster's topics match the packaged ``topics.yaml``."""

from __future__ import annotations

import asyncio
import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamcoord.cli.common import BootstrapOption, ConfigOption
from streamcoord.deploy.strimzi import render_kafka_topics
from streamcoord.errors import ConfigError
from streamcoord.events.schemas import render_schemas
from streamcoord.events.topics import TopicSpec
from streamcoord.kafka.admin import (
    DEFAULT_TOPICS_FILE,
    TopicPlan,
    apply_topics,
    describe_topics,
    load_topics,
    plan_topics,
)
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["app", "apply", "diff", "render", "schemas"]

app = typer.Typer(help="Declared Kafka topics and event schemas.", no_args_is_help=True)

DEFAULT_SCHEMA_DIR = Path("topics/schemas")

FileOption = Annotated[Path, typer.Option("--file", "-f", help="Topics file.", dir_okay=False)]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        help="Prefix for every topic name on a shared cluster (default: settings' topic_prefix).",
    ),
]
ReplicationOption = Annotated[
    int | None,
    typer.Option(
        "--replication-factor",
        min=1,
        help="Replication factor for every topic (the file declares 1 for a one-node dev broker; "
        "use 3 in production).",
    ),
]


@app.command()
def apply(
    file: FileOption = DEFAULT_TOPICS_FILE,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    prefix: PrefixOption = None,
    replication_factor: ReplicationOption = None,
) -> None:
    """Create missing topics and raise partition counts (never lowers, deletes or reconfigures)."""
    settings, declared = _inputs(file, bootstrap_servers, config, prefix, replication_factor)
    plan = asyncio.run(apply_topics(settings, declared))
    console = Console(highlight=False)
    if plan.has_changes:
        _print_plan(console, plan, declared)
        console.print(
            f"applied: {len(plan.create)} created, {len(plan.raise_partitions)} repartitioned"
        )
    else:
        _print_plan(console, plan, declared)


@app.command()
def diff(
    file: FileOption = DEFAULT_TOPICS_FILE,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    prefix: PrefixOption = None,
    replication_factor: ReplicationOption = None,
) -> None:
    """Show what `topics apply` would change, and drift it leaves alone."""
    settings, declared = _inputs(file, bootstrap_servers, config, prefix, replication_factor)
    existing = asyncio.run(describe_topics(settings, declared))
    _print_plan(Console(highlight=False), plan_topics(declared, existing), declared)


class RenderFormat(enum.StrEnum):
    """``topics render --format`` choices."""

    strimzi = "strimzi"


@app.command()
def render(
    cluster: Annotated[
        str,
        typer.Option(
            "--cluster", help="Name of the Strimzi Kafka cluster (the strimzi.io/cluster label)."
        ),
    ],
    output_format: Annotated[
        RenderFormat, typer.Option("--format", help="Kind of resources to write.")
    ] = RenderFormat.strimzi,
    file: FileOption = DEFAULT_TOPICS_FILE,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="metadata.namespace of every resource.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this file (default: standard output).", dir_okay=False
        ),
    ] = None,
    config: ConfigOption = None,
    prefix: PrefixOption = None,
    replication_factor: ReplicationOption = None,
) -> None:
    """Write the declared topics as Strimzi KafkaTopic resources (apply them with kubectl or a
    GitOps tool; the Topic Operator creates and configures the topics)."""
    _, declared = _inputs(file, None, config, prefix, replication_factor)
    text = render_kafka_topics(declared, cluster=cluster, namespace=namespace)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@app.command()
def schemas(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the schema files live.", file_okay=False)
    ] = DEFAULT_SCHEMA_DIR,
    check: Annotated[
        bool,
        typer.Option("--check", help="Fail if the committed schemas are stale; write nothing."),
    ] = False,
) -> None:
    """Write the JSON Schemas of every event type and of topics.yaml, generated from the models."""
    rendered = render_schemas()
    stale = sorted(name for name, text in rendered.items() if _read(directory / name) != text)
    if check:
        if stale:
            raise ConfigError(
                f"stale schemas in {directory}: {', '.join(stale)}",
                hint="run `streamcoord topics schemas` and commit the result",
            )
        typer.echo(f"{len(rendered)} schemas up to date in {directory}")
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (directory / name).write_text(rendered[name], encoding="utf-8")
    typer.echo(f"wrote {len(stale)} of {len(rendered)} schemas to {directory}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def _inputs(
    file: Path,
    bootstrap_servers: str | None,
    config: Path | None,
    prefix: str | None,
    replication_factor: int | None,
) -> tuple[KafkaSettings, list[TopicSpec]]:
    settings = KafkaSettings.load(config, bootstrap_servers=bootstrap_servers)
    declared = load_topics(file).with_prefix(settings.topic_prefix if prefix is None else prefix)
    if replication_factor is not None:
        declared = [
            t.model_copy(update={"replication_factor": replication_factor}) for t in declared
        ]
    return settings, declared


def _rows(plan: TopicPlan, declared: list[TopicSpec]) -> list[tuple[str, str, str]]:
    rows = [
        (
            "create",
            t.name,
            f"{t.partitions} partitions, replication {t.replication_factor}"
            + "".join(f", {k}={v}" for k, v in sorted(t.configs.items())),
        )
        for t in plan.create
    ]
    rows += [
        ("raise", c.topic, f"partitions {c.current} -> {c.declared}") for c in plan.raise_partitions
    ]
    rows += [
        ("keep", c.topic, f"has {c.current} partitions, declared {c.declared}: never lowered")
        for c in plan.partitions_above_declared
    ]
    rows += [
        ("drift", d.topic, f"{d.key}: declared {d.declared}, cluster has {d.actual}")
        for d in plan.config_drift
    ]
    return rows


def _print_plan(console: Console, plan: TopicPlan, declared: list[TopicSpec]) -> None:
    rows = _rows(plan, declared)
    if not rows:
        console.print(f"{len(declared)} topics in sync")
        return
    if not console.is_terminal:
        for row in rows:
            typer.echo("\t".join(row))
        return
    table = Table("action", "topic", "detail")
    for row in rows:
        table.add_row(*row)
    console.print(table)
