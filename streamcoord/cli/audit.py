"""``streamcoord audit verify`` and ``streamcoord audit RUN_ID``: the audit trail read back."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from streamcoord.audit import run_story, story_json, verify_chains
from streamcoord.cli.common import BootstrapOption, ConfigOption, PrefixOption, kafka_settings
from streamcoord.cli.inspect import latest_runs
from streamcoord.errors import ConfigError, EventError
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import DecisionRecord
from streamcoord.events.partitioning import run_base
from streamcoord.kafka.records import StoredRecord, read_topic
from streamcoord.runtime.settings import TopicNames

__all__ = ["audit"]

VERIFY = "verify"


def audit(
    target: Annotated[
        str,
        typer.Argument(
            metavar="verify | RUN_ID",
            help="`verify`: check every decision chain; a run id (e.g. daily/2026-11-28): "
            "its story.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
    topic_prefix: PrefixOption = None,
) -> None:
    """The audit trail: `verify` re-reads the decisions topic and names the first broken link of
    each partition's hash chain (exit 1 when one breaks); a RUN_ID prints that run's story in
    order: each event with its source and principal, the decision, and the run's outcome."""
    kafka = kafka_settings(bootstrap_servers, config)
    topics = TopicNames(topic_prefix if topic_prefix is not None else kafka.topic_prefix)
    decisions = topics.full(topology.DECISIONS)
    stored = asyncio.run(read_topic(kafka.client_kwargs(), decisions)).records
    if target == VERIFY:
        _verify(stored, decisions, as_json)
        return
    records = []
    for one in stored:
        try:
            event = decode(one.value, one.headers)
        except EventError:
            continue  # `audit verify` names it
        if isinstance(event, DecisionRecord) and run_base(event.data.run_id) == run_base(target):
            records.append(event)
    entries = run_story(target, records)
    outcomes = [
        r
        for r in asyncio.run(latest_runs(kafka.client_kwargs(), topics.runs))
        if r.data.run_id == target
    ]
    if not entries and not outcomes:
        raise ConfigError(
            f"no decisions and no run record for run {target!r}",
            hint="`streamcoord runs` lists the run ids",
        )
    document = story_json(target, entries, outcomes[0] if outcomes else None)
    if as_json:
        typer.echo(orjson.dumps(document).decode())
        return
    _print_story(document)


def _verify(stored: list[StoredRecord], decisions: str, as_json: bool) -> None:
    report = verify_chains(stored)
    if as_json:
        typer.echo(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "unchained": report.unchained,
                    "chains": [
                        {
                            "partition": c.chain,
                            "first_seq": c.first_seq,
                            "last_seq": c.last_seq,
                            "records": c.records,
                            "head": c.head,
                            "broken": None if c.broken is None else c.broken.describe(decisions),
                        }
                        for c in report.chains
                    ],
                    "unreadable": [b.describe(decisions) for b in report.unreadable],
                }
            ).decode()
        )
    else:
        console = Console(highlight=False, soft_wrap=True)
        for chain in report.chains:
            state = "[green]intact[/]" if chain.broken is None else "[red]BROKEN[/]"
            console.print(
                f"chain of partition {chain.chain}: seq {chain.first_seq}.."
                f"{chain.last_seq} ({chain.records} records) {state}"
            )
        for broken in report.breaks:
            console.print(f"[red]first broken link:[/] {escape(broken.describe(decisions))}")
        if report.unchained:
            console.print(f"{report.unchained} decision records predate the chain (not checked)")
        if report.ok:
            console.print(f"[green]{decisions}: every chain verifies[/]")
    if not report.ok:
        raise typer.Exit(1)


def _print_story(document: dict[str, Any]) -> None:
    console = Console(highlight=False, soft_wrap=True)
    outcome = document["outcome"]
    console.print(f"[bold]{escape(document['run_id'])}[/]")
    if outcome is not None:
        console.print(
            f"  outcome: [bold]{outcome['status']}[/], started by "
            f"{escape(outcome['principal'] or 'unauthenticated')}, trace "
            f"{outcome['trace_id'] or '-'}"
        )
        stages = ", ".join(f"{name} {status}" for name, status in outcome["stages"].items())
        console.print(f"  stages: {escape(stages)}")
    for entry in document["decisions"]:
        event = entry["event"]
        who = entry["principal"] or "unauthenticated"
        stage = f" {entry['stage']}" if entry["stage"] else ""
        console.print(
            f"  #{entry['seq']} {entry['time']} {escape(str(event['type']))} from "
            f"{escape(str(event['source']))} ({escape(who)}): [bold]{entry['action']}[/]"
            f"{escape(stage)}: {escape(entry['reason'])}"
        )
