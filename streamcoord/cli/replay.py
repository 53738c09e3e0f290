"""``streamcoord replay LOG.jsonl --spec PATH``: print the decisions a recorded log produces."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from streamcoord.core import Catalog, Publish
from streamcoord.core.replay import Record, parse_log, replay, step_json
from streamcoord.errors import ConfigError, SpecError
from streamcoord.events.models import Decision
from streamcoord.pipelines.loader import load_specs

__all__ = ["replay_command"]


def replay_command(
    log: Annotated[Path, typer.Argument(help="JSONL event log: {timestamp, event} per line.")],
    spec: Annotated[list[Path], typer.Option("--spec", "-s", help="Spec files or folders.")],
    partitions: Annotated[int, typer.Option(help="Partitions to simulate.", min=1)] = 1,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per decided event.")
    ] = False,
    default_start_timeout: Annotated[
        float | None,
        typer.Option(
            help="The coordinator's default_start_timeout_seconds (600 unless configured);"
            " give it to replay a coordinator's log exactly. Default: no start timeout.",
            min=0.001,
        ),
    ] = None,
    retention_s: Annotated[
        float,
        typer.Option(help="The coordinator's retention_s: when finished runs expire.", min=0.001),
    ] = 604_800.0,
) -> None:
    """Replay a recorded event log through the core and print its decisions (deterministic)."""
    catalog = _catalog(spec, default_start_timeout, timedelta(seconds=retention_s))
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {log}: {exc}", hint="check the path") from exc
    result = replay(catalog, parse_log(lines), partitions=partitions)
    for record in result.records:
        if as_json:
            typer.echo(step_json(record).decode())
        else:
            for line in _text_lines(record):
                typer.echo(line)


def _text_lines(record: Record) -> list[str]:
    at = record.timestamp.isoformat()
    step = record.step
    lines = []
    if step.rejection is not None:
        lines.append(
            f"{at}  REJECTED {record.event.type} {record.event.id}:"
            f" {step.rejection.code}: {step.rejection.reason}"
        )
    for command in step.commands:
        if isinstance(command, Publish) and isinstance(command.event.data, Decision):
            d = command.event.data
            caused = ",".join(d.caused_by)
            lines.append(f"{at}  {d.run_id} {d.stage or '-'} {d.action}: {d.reason} [{caused}]")
    return lines


def _catalog(
    paths: list[Path], default_start_timeout: float | None, retention: timedelta
) -> Catalog:
    loaded = load_specs(paths)
    if loaded.problems:
        listing = "\n".join(str(problem) for problem in loaded.problems)
        raise SpecError(f"the specs do not validate:\n{listing}", hint="fix them and replay again")
    return Catalog.build(
        loaded.pipelines,
        loaded.pools,
        policies=loaded.policies,
        default_start_timeout_seconds=default_start_timeout,
        retention=retention,
    )
