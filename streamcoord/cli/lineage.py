"""``streamcoord lineage``: OpenLineage RunEvents for every run, from the runs topic."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.errors import ConfigError
from streamcoord.pipelines.loader import load_specs
from streamcoord.runtime.settings import TopicNames

__all__ = ["lineage"]


def lineage(
    spec: Annotated[
        list[Path] | None,
        typer.Option(help="Spec files: stage params inputs/outputs become datasets."),
    ] = None,
    namespace: Annotated[
        str, typer.Option(help="OpenLineage namespace of jobs and datasets.")
    ] = "streamcoord",
    until_end: Annotated[
        bool,
        typer.Option(
            "--until-end", help="Stop at the topic's current end instead of following it."
        ),
    ] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Send OpenLineage RunEvents (START, COMPLETE, FAIL, ABORT) for runs and stage attempts,
    with the official client configured its usual way (openlineage.yml, OPENLINEAGE_URL,
    OPENLINEAGE__TRANSPORT__TYPE=console|file|kafka|http, ...)."""
    try:
        from openlineage.client import OpenLineageClient  # noqa: PLC0415  # an optional extra

        from streamcoord.lineage import LineageTracker  # noqa: PLC0415
        from streamcoord.lineage._follow import follow_runs  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "the OpenLineage client is not installed", hint="pip install 'streamcoord[lineage]'"
        ) from None
    pipelines = []
    if spec:
        loaded = load_specs(spec)
        if loaded.problems:
            raise ConfigError(
                f"{len(loaded.problems)} problem(s) in the specs",
                hint="`streamcoord validate` lists them",
            )
        pipelines = list(loaded.pipelines)
    kafka = kafka_settings(bootstrap_servers, config)
    topics = TopicNames(topic_prefix if topic_prefix is not None else kafka.topic_prefix)
    client = OpenLineageClient()
    sent = asyncio.run(
        follow_runs(
            kafka.client_kwargs(),
            topics.runs,
            LineageTracker(namespace, pipelines),
            client.emit,
            until_end=until_end,
            events_topic=topics.events,  # executors' reported datasets
        )
    )
    typer.echo(f"sent {sent} OpenLineage event(s)", err=True)
