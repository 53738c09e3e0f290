"""``streamcoord validate``, ``graph`` and ``replay`` as a user runs them: output and exit codes."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.events.topics import PACKAGED_TOPICS_FILE

ROOT = Path(__file__).parents[3]
runner = CliRunner()


def test_valid_examples_exit_0_with_a_summary() -> None:
    result = runner.invoke(
        app, ["validate", str(ROOT / "examples"), "--topics", str(PACKAGED_TOPICS_FILE)]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "4 pipelines, 2 pools, 0 problems\n"


def test_problems_exit_1_plain_when_piped(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("pipelines:\n  - name: a\n    stages: [{name: x, needs: [y]}]\n")
    result = runner.invoke(app, ["validate", str(spec), "--topics", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1
    assert "\x1b[" not in result.output
    assert result.output.splitlines() == [
        f"{spec}:3:32: pipelines[0].stages[0].needs[0]: needs unknown stage 'y' of this pipeline"
        " (hint: stages there: x)",
        "1 pipeline, 0 pools, 1 problem (topics not checked: no topics file)",
    ]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate"]).exit_code == 2
    assert runner.invoke(app, ["validate", str(tmp_path / "missing.yaml")]).exit_code == 2


def test_graph_prints_mermaid_by_default_and_dot_on_request() -> None:
    examples = str(ROOT / "examples")
    mermaid = runner.invoke(app, ["graph", "ml", "--spec", examples])
    assert mermaid.exit_code == 0, mermaid.output
    assert mermaid.output.startswith("flowchart LR\n")
    dot = runner.invoke(app, ["graph", "ml", "--spec", examples, "--format", "dot"])
    assert dot.output.startswith('digraph "ml" {')


def test_graph_of_unknown_pipeline_fails_with_a_hint() -> None:
    result = runner.invoke(app, ["graph", "dayly", "--spec", str(ROOT / "examples")])
    assert result.exit_code != 0
    assert "did you mean 'daily'?" in str(result.exception)


def test_replay_expires_finished_runs_with_the_retention_given() -> None:
    case = ROOT / "tests/golden/core/basic"
    args = ["replay", str(case / "log.jsonl"), "--spec", str(case / "spec.yaml")]
    default = runner.invoke(app, args)
    short = runner.invoke(app, [*args, "--retention-s", "60"])
    assert default.exit_code == short.exit_code == 0, short.output
    expired = [line for line in short.output.splitlines() if " expired: " in line]
    assert expired[0].startswith("2026-01-01T00:01:23+00:00  ingest/2026-01-01 - expired: ")
    week = [line for line in default.output.splitlines() if " expired: " in line]
    assert week[0].startswith("2026-01-08T00:00:23+00:00  ingest/2026-01-01 - expired: ")
