"""``streamcoord graph PIPELINE``: the pipeline's DAG as Mermaid (default) or DOT."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamcoord.cli.validate import problem_text
from streamcoord.errors import SpecError
from streamcoord.pipelines import DiagramFormat, render_diagram, validate_paths

__all__ = ["graph"]


def graph(
    pipeline: Annotated[str, typer.Argument(help="Name of the pipeline to draw.")],
    spec: Annotated[
        list[Path] | None,
        typer.Option("--spec", help="Spec files or directories (default: examples/).", exists=True),
    ] = None,
    fmt: Annotated[
        DiagramFormat, typer.Option("--format", help="Output format: mermaid or dot.")
    ] = "mermaid",
) -> None:
    """Print the stage DAG of PIPELINE, cross-pipeline edges included (dashed)."""
    report = validate_paths(spec or [Path("examples")], topics_file=None)
    if not report.ok:
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        for problem in report.problems:
            console.print(problem_text(problem))
        raise SpecError(
            f"the specs have {len(report.problems)} problem(s)",
            hint="fix them first; `streamcoord validate` lists the same",
        )
    typer.echo(render_diagram(report.specs.pipelines, pipeline, fmt), nl=False)
