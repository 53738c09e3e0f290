"""``streamcoord demo``: the example pipelines end to end, with live progress per run and stage."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from streamcoord.cli._demo_serve import (
    DemoServe,
    start_demo_serve,
    stop_demo_serve,
    wait_ready,
)
from streamcoord.cli.common import BootstrapOption, ConfigOption, kafka_settings, load_catalog
from streamcoord.cli.inspect import STATUS_STYLE
from streamcoord.cli.serve import DEFAULT_PORT
from streamcoord.demo import EXPECTED_RUNS, DemoProgress, run_demo
from streamcoord.events.models import RunRecord

__all__ = ["LiveView", "demo"]

GLYPH = {
    "succeeded": "✔",
    "failed": "✘",
    "running": "▶",
    "triggered": "▷",
    "retry_wait": "↻",
    "ready": "•",
    "pending": "·",
    "skipped": "-",
    "cancelled": "⊘",
    "timed_out": "⌛",
    "upstream_failed": "✘",
}
#: Pipelines whose runs are shown stage by stage; ingest's 48 runs are a progress bar.
DETAILED = ("daily", "ml", "features")


class LiveView:
    """What the demo shows: a bar per pipeline, the stages of the key runs, retries as they
    happen. On a terminal it redraws in place; piped, it prints one line per change."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.runs: dict[str, RunRecord] = {}
        self.phase = "starting"
        self.notes: list[str] = []
        self.bars = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
        )
        self.tasks: dict[str, TaskID] = {
            name: self.bars.add_task(name, total=total, detail="")
            for name, total in EXPECTED_RUNS.items()
        }

    def on_phase(self, phase: str) -> None:
        self.phase = phase
        if not self.console.is_terminal:
            self.console.print(f"demo: {phase}")

    def on_record(self, record: RunRecord) -> None:
        data = record.data
        self.runs[data.run_id] = record
        for stage, status in data.stages.items():
            note = f"{data.run_id} {stage}: failed, retrying after backoff"
            if status == "retry_wait" and note not in self.notes:
                self.notes.append(note)
                if not self.console.is_terminal:
                    self.console.print(note)
        if not self.console.is_terminal and data.pipeline in DETAILED:
            self.console.print(f"{data.run_id}: {data.status} ({_stages(record, plain=True)})")

    def render(self) -> Group:
        for pipeline, task in self.tasks.items():
            counts = Counter(
                r.data.status for r in self.runs.values() if r.data.pipeline == pipeline
            )
            detail = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s != "succeeded")
            self.bars.update(task, completed=counts["succeeded"], detail=detail)
        table = Table("run", "status", "stages", box=None)
        shown = [r for r in self.runs.values() if r.data.pipeline in DETAILED]
        for record in sorted(shown, key=lambda r: DETAILED.index(r.data.pipeline)):
            style = STATUS_STYLE.get(record.data.status, "")
            table.add_row(record.data.run_id, f"[{style}]{record.data.status}[/]", _stages(record))
        notes = [f"[yellow]{note}[/]" for note in self.notes[-4:]]
        return Group(f"[bold]streamcoord demo[/]: {self.phase}", self.bars, table, *notes)


def _stages(record: RunRecord, *, plain: bool = False) -> str:
    if plain:
        return ", ".join(f"{stage}={status}" for stage, status in record.data.stages.items())
    return "  ".join(
        f"[{STATUS_STYLE.get(status, '')}]{GLYPH.get(status, '?')} {stage}[/]"
        for stage, status in record.data.stages.items()
    )


def demo(
    spec: Annotated[
        list[Path] | None, typer.Option(help="Spec files or directories (default examples/).")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds the whole demo may take.")] = 300.0,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve",
                           help="Start `streamcoord serve` alongside (left running after).")
    ] = True,
    serve_port: Annotated[int, typer.Option(help="Port of the demo's API.")] = DEFAULT_PORT,
    stop_serve: Annotated[
        bool, typer.Option("--stop-serve", help="Stop the API a previous demo left, and exit.")
    ] = False,
    bootstrap_servers: BootstrapOption = None,
    config: ConfigOption = None,
) -> None:  # fmt: skip
    """Run the example pipelines end to end on Kafka and show each run's progress live."""
    if stop_serve:
        stopped = stop_demo_serve()
        typer.echo("demo API stopped." if stopped else "no demo API is running.")
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retried produce errors are noise here
    spec_paths = spec or [Path("examples")]
    catalog = load_catalog(spec_paths)
    kafka = kafka_settings(bootstrap_servers, config)
    console = Console()
    view = LiveView(console)
    api = start_demo_serve(kafka, spec_paths, serve_port, config) if serve else None

    async def main() -> DemoProgress:
        task = asyncio.create_task(
            run_demo(
                kafka, catalog, on_record=view.on_record, on_phase=view.on_phase, timeout_s=timeout
            )
        )
        if not console.is_terminal:
            return await task
        with Live(view.render(), console=console, refresh_per_second=8) as live:
            while not task.done():
                await asyncio.wait({task}, timeout=0.125)
                live.update(view.render())
        return task.result()

    progress = asyncio.run(main())
    _next_steps(console, progress, kafka.bootstrap_servers)
    if api is not None:
        _api_steps(console, api, progress)


def _api_steps(console: Console, api: DemoServe, progress: DemoProgress) -> None:
    if not wait_ready(api, 60):
        console.print(f"[yellow]The demo API did not come up; its log: {api.log}[/]")
        return
    day = progress.day.isoformat()
    state = "still running from an earlier demo" if api.reused else "started alongside"
    console.print(f"\nThe HTTP API ({state}; `streamcoord demo --stop-serve` stops it):")
    lines = [
        f"  URL:   {api.url}/docs",
        f"  token: {api.token}  (admin)",
        f"  curl -H 'Authorization: Bearer {api.token}' '{api.url}/api/v1/runs?pipeline=ml'",
        f"  curl -H 'Authorization: Bearer {api.token}' {api.url}/api/v1/runs/ml/{day}",
        f"  web UI: {api.url}/  (sign in with the token above)",
    ]
    for line in lines:  # whole lines: they are copied into a shell
        console.print(line, soft_wrap=True, highlight=False)


def _next_steps(console: Console, progress: DemoProgress, bootstrap: str) -> None:
    day = progress.day.isoformat()
    ml = progress.runs.get(f"ml/{day}")
    console.print(
        f"\n[bold green]Done:[/] {len(progress.runs)} runs for {day}, from the first hourly "
        f"partition to a deployed model."
    )
    console.print("Look next:")
    console.print(f"  streamcoord status -b {bootstrap}")
    console.print(f"  streamcoord runs --pipeline ml -b {bootstrap}")
    console.print(f"  streamcoord explain ml/{day} deploy -b {bootstrap}")
    console.print(f"  streamcoord explain daily/{day} transform -b {bootstrap}")
    if ml is not None and ml.data.trace_id:
        console.print(
            f"  the ML run's trace id: {ml.data.trace_id} (exporting traces to Jaeger:"
            " docs/observability.md)"
        )
