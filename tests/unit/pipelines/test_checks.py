"""Semantic checks that the golden corpus does not pin message by message."""

from __future__ import annotations

from streamcoord.pipelines import check_specs, find_cycles, parse_specs
from streamcoord.pipelines.graph import dependency_edges


def test_a_reference_to_a_pipeline_that_failed_validation_is_not_reported_twice() -> None:
    text = """\
pipelines:
  - name: a
    stages: [{name: x, needs: [b.z]}]
  - name: b
    stages: [{name: z, bogus: 1}]
"""
    loaded = parse_specs(text, "s.yaml")
    assert check_specs(loaded) == ()
    assert [p.message for p in loaded.problems] == ["unknown field 'bogus'"]


def test_topics_are_not_checked_without_a_topics_file() -> None:
    loaded = parse_specs("pipelines: [{name: a, stages: [{name: x}]}]\n", "s.yaml")
    assert check_specs(loaded, None) == ()
    assert [p.message for p in check_specs(loaded, set())] == [
        "executor topic 'streamcoord.triggers' is not declared"
    ]


def test_cycles_are_found_whatever_the_declaration_order() -> None:
    text = """\
pipelines:
  - name: p
    stages:
      - {name: c, needs: [b]}
      - {name: a, needs: [c]}
      - {name: b, needs: [a]}
      - {name: d, needs: [a]}
"""
    edges = dependency_edges(parse_specs(text, "s.yaml").pipelines)
    assert find_cycles(edges) == [[("p", "a"), ("p", "c"), ("p", "b"), ("p", "a")]]


def test_a_diamond_is_not_a_cycle() -> None:
    text = """\
pipelines:
  - name: p
    stages:
      - {name: a}
      - {name: b, needs: [a]}
      - {name: c, needs: [a]}
      - {name: d, needs: [b, c]}
"""
    loaded = parse_specs(text, "s.yaml")
    assert find_cycles(dependency_edges(loaded.pipelines)) == []
    assert check_specs(loaded, None) == ()
