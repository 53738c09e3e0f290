"""``streamcoord specs``: publish spec versions to the specs topic, list them, compare them.

``apply`` validates exactly as ``streamcoord validate`` does, publishes the version (acks=all)
and then activates it on every partition of the events topic, so each partition switches at
one offset of its log: every member of the group, and every replay, switches at the same point.
"""

from __future__ import annotations

import asyncio
import difflib
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from streamcoord.cli.common import BootstrapOption, ConfigOption, kafka_settings
from streamcoord.cli.validate import INVALID_EXIT_CODE, problem_text
from streamcoord.core import Catalog
from streamcoord.errors import ConfigError
from streamcoord.events.specs import SpecsRecord
from streamcoord.pipelines.validation import DEFAULT_TOPICS_FILE, validate_paths, validate_texts
from streamcoord.runtime.settings import TopicNames
from streamcoord.runtime.specs import apply_specs, read_specs, spec_texts

__all__ = ["app", "apply", "diff", "history", "show"]

app = typer.Typer(
    help="Spec versions on the specs topic: what a coordinator group runs.", no_args_is_help=True
)

PrefixOption = Annotated[str | None, typer.Option(help="Prefix of every topic name.")]


def _connection(
    bootstrap_servers: str | None, config: Path | None, topic_prefix: str | None
) -> tuple[dict[str, Any], TopicNames]:
    kafka = kafka_settings(bootstrap_servers, config)
    prefix = topic_prefix if topic_prefix is not None else kafka.topic_prefix
    return kafka.client_kwargs(), TopicNames(prefix)


@app.command()
def apply(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Spec files, or directories of *.yaml files.", exists=True),
    ],
    message: Annotated[
        str | None, typer.Option("--message", "-m", help="Why: shown by `specs history`.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Activate again even if this version is already the newest (after an apply "
            "that failed half-way).",
        ),
    ] = False,
    topics: Annotated[
        Path,
        typer.Option(
            "--topics", help="Topics declaration; the topic check is skipped if it is missing."
        ),
    ] = DEFAULT_TOPICS_FILE,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Validate specs, publish them as a new version and switch every partition to it.

    Prints the version on stdout (everything else goes to stderr).
    """
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    report = validate_paths(paths, topics_file=topics)
    if not report.ok:
        for problem in report.problems:
            err.print(problem_text(problem))
        err.print(f"{len(report.problems)} problems: nothing published", style="bold red")
        raise typer.Exit(INVALID_EXIT_CODE)
    version = Catalog.build(
        report.specs.pipelines, report.specs.pools, policies=report.specs.policies
    ).version
    client_kwargs, names = _connection(bootstrap_servers, config, topic_prefix)
    applied = asyncio.run(
        apply_specs(client_kwargs, names, spec_texts(paths), version, message=message, force=force)
    )
    previous = applied.previous
    if not applied.partitions:
        assert previous is not None
        err.print(
            f"version {version} is already the newest (applied {_when(previous)} by "
            f"{previous.applied_by}): nothing published (--force activates it again)"
        )
    else:
        err.print(
            f"{'published and activated' if applied.published else 'activated again'}: "
            f"version {version} ({len(report.specs.pipelines)} pipelines) on "
            f"{applied.partitions} partitions of {names.events}"
            + (f"; the previous version was {previous.version}" if previous else ""),
            style="bold green",
        )
    typer.echo(version)


@app.command()
def history(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Every published version, oldest first: when, by whom, why, with which pipelines."""
    client_kwargs, names = _connection(bootstrap_servers, config, topic_prefix)
    records = asyncio.run(read_specs(client_kwargs, names))
    if as_json:
        for record in records:
            row = {
                "version": record.version, "applied_at": record.applied_at.isoformat(),
                "applied_by": record.applied_by, "message": record.message,
                "pipelines": _pipelines(record), "files": list(record.files),
            }  # fmt: skip
            typer.echo(orjson.dumps(row).decode())
        return
    console = Console(highlight=False, soft_wrap=True)
    if not records:
        console.print(f"no versions on {names.specs} yet: `streamcoord specs apply PATH...`")
        return
    table = Table("version", "applied_at", "by", "message", "pipelines")
    for record in records:
        table.add_row(
            record.version, _when(record), record.applied_by, record.message or "",
            ", ".join(_pipelines(record)),
        )  # fmt: skip
    console.print(table)


@app.command()
def show(
    version: Annotated[str, typer.Argument(help="A version, or a unique prefix of one.")],
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Print a version's files as they were applied."""
    client_kwargs, names = _connection(bootstrap_servers, config, topic_prefix)
    record = _find(asyncio.run(read_specs(client_kwargs, names)), version)
    typer.echo(f"# version {record.version}, applied {_when(record)} by {record.applied_by}")
    if record.message:
        typer.echo(f"# {record.message}")
    for path, text in record.files.items():
        typer.echo(f"# ---- {path} ----")
        typer.echo(text, nl=not text.endswith("\n"))


@app.command()
def diff(
    old: Annotated[str | None, typer.Argument(help="Older version (default: 2nd newest).")] = None,
    new: Annotated[str | None, typer.Argument(help="Newer version (default: newest).")] = None,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """Unified diff of the spec files of two versions (default: the two newest)."""
    client_kwargs, names = _connection(bootstrap_servers, config, topic_prefix)
    records = asyncio.run(read_specs(client_kwargs, names))
    if old is None or new is None:
        if new is None and old is not None:
            new_record = records[-1] if records else None
            old_record = _find(records, old)
        elif len(records) < 2:
            raise ConfigError(
                f"{names.specs} holds {len(records)} version(s): nothing to compare",
                hint="name two versions, or apply another one",
            )
        else:
            old_record, new_record = records[-2], records[-1]
        assert new_record is not None
    else:
        old_record, new_record = _find(records, old), _find(records, new)
    for line in _unified(old_record, new_record):
        typer.echo(line, nl=False)


def _unified(old: SpecsRecord, new: SpecsRecord) -> list[str]:
    lines: list[str] = []
    paths = list(old.files) + [path for path in new.files if path not in old.files]
    for path in paths:
        lines += difflib.unified_diff(
            _lines(old.files.get(path)), _lines(new.files.get(path)),
            fromfile=f"{old.version}/{path}" if path in old.files else "/dev/null",
            tofile=f"{new.version}/{path}" if path in new.files else "/dev/null",
        )  # fmt: skip
    return lines


def _lines(text: str | None) -> list[str]:
    if text is None:
        return []
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def _find(records: list[SpecsRecord], version: str) -> SpecsRecord:
    matches = [
        record
        for record in records
        if record.version.startswith(version)
        or record.version.partition(":")[2].startswith(version)  # without "sha256:"
    ]
    if len(matches) == 1:
        return matches[0]
    exact = [record for record in matches if record.version == version]
    if exact:
        return exact[0]
    raise ConfigError(
        f"no version {version!r} on the specs topic"
        if not matches
        else f"{version!r} names {len(matches)} versions",
        hint="`streamcoord specs history` lists them",
    )


def _pipelines(record: SpecsRecord) -> list[str]:
    return [pipeline.name for pipeline in validate_texts(record.files).specs.pipelines]


def _when(record: SpecsRecord) -> str:
    return record.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
