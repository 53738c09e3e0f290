"""Loading spec files: models with positions, every problem located, nothing raised."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamcoord.errors import ConfigError
from streamcoord.pipelines import Need, load_specs, parse_specs, read_topic_names

SPEC = """\
pipelines:
  - name: a
    stages:
      - name: x
      - name: y
        needs: [x, {stage: b.z, run_key: "run_key"}]
  - name: b
    stages: [{name: z}]
pools:
  - {name: gpu, slots: 2}
"""


def test_parse_gives_models_and_paths() -> None:
    loaded = parse_specs(SPEC, "s.yaml")
    assert loaded.problems == ()
    assert [p.name for p in loaded.pipelines] == ["a", "b"]
    assert loaded.pipelines[0].stages[1].needs[1] == Need(stage="b.z", run_key="run_key")
    assert [p.slots for p in loaded.pools] == [2]
    document = loaded.documents[0]
    assert document.pipeline_paths == (("pipelines", 0), ("pipelines", 1))
    assert document.source.position(("pipelines", 0, "stages", 1, "needs", 0)) == (6, 17)


def test_one_broken_pipeline_does_not_hide_the_others() -> None:
    text = SPEC.replace("stages: [{name: z}]", "stages: [{name: z, nope: 1}]")
    loaded = parse_specs(text, "s.yaml")
    assert [p.name for p in loaded.pipelines] == ["a"]
    assert loaded.unchecked_pipelines == {"b"}
    assert [str(p) for p in loaded.problems] == [
        "s.yaml:8:24: pipelines[1].stages[0].nope: unknown field 'nope'"
        " (hint: expected one of: name, description, needs, trigger_rule, condition, executor,"
        " params, retries, timeout_seconds, heartbeat_timeout_seconds, start_timeout_seconds,"
        " priority, pool)"
    ]


def test_every_problem_is_reported_not_only_the_first() -> None:
    text = "pipelines:\n  - name: a\n    stages: [{name: x, priorty: 1, pol: gpu}]\n"
    messages = [p.message for p in parse_specs(text, "s.yaml").problems]
    assert messages == ["unknown field 'priorty'", "unknown field 'pol'"]


@pytest.mark.parametrize("text", ["a: [1,", "a:\n  b: 1\n c: 2", "\t- x", "a: 1\na: 2"])
def test_malformed_yaml_is_a_problem(text: str) -> None:
    loaded = parse_specs(text, "bad.yaml")
    assert len(loaded.problems) == 1
    assert loaded.problems[0].message.startswith("malformed YAML")
    assert loaded.problems[0].line >= 1


def test_empty_file_declares_nothing() -> None:
    assert parse_specs("# nothing yet\n", "e.yaml").documents == ()
    assert parse_specs("# nothing yet\n", "e.yaml").problems == ()


def test_directory_loads_yaml_files_sorted(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("pools: [{name: b, slots: 1}]\n")
    (tmp_path / "a.yaml").write_text("pools: [{name: a, slots: 1}]\n")
    (tmp_path / "notes.txt").write_text("not a spec")
    assert [p.name for p in load_specs([tmp_path]).pools] == ["a", "b"]


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_specs([tmp_path / "nope.yaml"])


def test_undecodable_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    problems = load_specs([tmp_path]).problems
    assert len(problems) == 1
    assert "cannot read" in problems[0].message


def test_topic_names(tmp_path: Path) -> None:
    file = tmp_path / "topics.yaml"
    file.write_text("topics:\n  - name: t1\n    partitions: 3\n  - name: t2\n")
    assert read_topic_names(file) == {"t1", "t2"}
    assert read_topic_names(tmp_path / "missing.yaml") is None
