"""The example specs validate, their schema header is there, and their graphs are stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamcoord.events.topics import PACKAGED_TOPICS_FILE
from streamcoord.pipelines import (
    SPEC_SCHEMA_FILE,
    load_specs,
    render_diagram,
    render_spec_schema,
    validate_paths,
)

ROOT = Path(__file__).parents[3]
EXAMPLES = ROOT / "examples"
TOPICS = PACKAGED_TOPICS_FILE


def test_examples_validate_with_the_declared_topics() -> None:
    report = validate_paths([EXAMPLES], topics_file=TOPICS)
    assert [str(p) for p in report.problems] == []
    assert report.topics_checked
    names = {p.name for p in report.specs.pipelines}
    assert {"ingest", "daily", "ml", "features"} <= names


def test_examples_cover_what_the_demo_needs() -> None:
    specs = load_specs([EXAMPLES])
    stages = [s for p in specs.pipelines for s in p.stages]
    streaming = [s for s in stages if s.executor and s.executor.kind == "streaming"]
    batch = [s for s in stages if s not in streaming]
    # the shell worker runs `command`; the streaming worker follows `source_topic`
    assert all("command" in (s.executor.config if s.executor else {}) for s in batch)
    assert streaming
    assert all("source_topic" in s.executor.config for s in streaming if s.executor)
    assert any(s.retries and s.retries.max_attempts > 1 for s in stages)
    assert {p.name for p in specs.pools} >= {"gpu"}


@pytest.mark.parametrize("file", sorted(EXAMPLES.glob("*.yaml")), ids=lambda f: f.name)
def test_examples_point_editors_at_the_schema(file: Path) -> None:
    first = file.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# yaml-language-server: $schema=../topics/schemas/{SPEC_SCHEMA_FILE}"


def test_committed_schema_is_not_stale() -> None:
    committed = (ROOT / "topics" / "schemas" / SPEC_SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == render_spec_schema(), "run: python -m streamcoord.pipelines.schema"


def test_schema_requires_trigger_kind() -> None:
    assert '"required": [\n        "kind"' in render_spec_schema()


def test_mermaid_graph_of_daily_shows_the_cross_pipeline_edge() -> None:
    mermaid = render_diagram(load_specs([EXAMPLES]).pipelines, "daily")
    assert mermaid == (
        "flowchart LR\n"
        "  subgraph daily_pipeline [daily]\n"
        '    daily__transform["transform"]\n'
        '    daily__quality_check["quality_check"]\n'
        '    daily__publish["publish"]\n'
        "  end\n"
        "  subgraph ml_pipeline [ml]\n"
        '    ml__train["train"]\n'
        "  end\n"
        "  daily__quality_check --> daily__publish\n"
        "  daily__quality_check -.-> ml__train\n"
        "  daily__transform --> daily__quality_check\n"
    )


def test_dot_graph_of_ml_draws_the_upstream_pipeline_as_a_cluster() -> None:
    dot = render_diagram(load_specs([EXAMPLES]).pipelines, "ml", "dot")
    assert 'subgraph "cluster_daily" {' in dot
    assert '"daily.quality_check" -> "ml.train" [style=dashed];' in dot
    assert '"ml.train" -> "ml.evaluate";' in dot


def test_streaming_stages_have_their_own_shape() -> None:
    pipelines = load_specs([EXAMPLES]).pipelines
    assert 'features__stream_features(["stream_features"])' in render_diagram(pipelines, "features")
    assert "shape=parallelogram" in render_diagram(pipelines, "features", "dot")
