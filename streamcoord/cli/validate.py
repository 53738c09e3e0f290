"""``streamcoord validate PATH...``: every problem of the specs, located; exit 0, 1 or 2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from streamcoord.pipelines import DEFAULT_TOPICS_FILE, Problem, ValidationReport, validate_paths

__all__ = ["problem_text", "validate"]

#: Exit code when a spec has problems (usage errors exit 2, through Click).
INVALID_EXIT_CODE = 1


def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Spec files, or directories of *.yaml files.", exists=True),
    ],
    topics: Annotated[
        Path,
        typer.Option(
            "--topics", help="Topics declaration; the topic check is skipped if it is missing."
        ),
    ] = DEFAULT_TOPICS_FILE,
) -> None:
    """Check pipeline specs and print every problem as file:line:col: path: message.

    Warnings (values that look like literal secrets) are printed too; alone they exit 0.
    """
    report = validate_paths(paths, topics_file=topics)
    console = Console(highlight=False, soft_wrap=True)
    for problem in sorted((*report.problems, *report.warnings)):
        console.print(problem_text(problem))
    style = "bold red" if not report.ok else "bold yellow" if report.warnings else "bold green"
    console.print(_summary(report), style=style)
    if not report.ok:
        raise typer.Exit(INVALID_EXIT_CODE)


def problem_text(problem: Problem) -> Text:
    """One problem, styled: where in bold, the field path in cyan, the hint dimmed."""
    text = Text(f"{problem.file}:{problem.line}:{problem.col}:", style="bold")
    if problem.severity == "warning":
        text.append(" warning:", style="bold yellow")
    if problem.path:
        text.append(f" {problem.path}:", style="cyan")
    text.append(f" {problem.message}")
    if problem.hint:
        text.append(f" (hint: {problem.hint})", style="dim")
    return text


def _summary(report: ValidationReport) -> str:
    counts = [
        _count(len(report.specs.pipelines), "pipeline"),
        _count(len(report.specs.pools), "pool"),
        *(
            [_count(len(report.specs.policies), "policy", "policies")]
            if report.specs.policies
            else []
        ),
        _count(len(report.problems), "problem"),
    ]
    if report.warnings:
        counts.append(_count(len(report.warnings), "warning"))
    skipped = "" if report.topics_checked else " (topics not checked: no topics file)"
    return ", ".join(counts) + skipped


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
