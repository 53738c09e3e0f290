"""A pipeline's graph as the API returns it."""

from __future__ import annotations

from streamcoord.api._graph import pipeline_graph
from streamcoord.pipelines.loader import parse_specs

SPEC = """\
pipelines:
  - name: a
    stages:
      - name: one
      - name: two
        needs: [one, c.x]
  - name: b
    stages:
      - name: later
        needs: [a.two]
  - name: c
    stages:
      - name: x
"""


def test_own_stages_in_spec_order_then_neighbours_and_cross_edges() -> None:
    loaded = parse_specs(SPEC, "t.yaml")
    graph = pipeline_graph(loaded.pipelines, "a")
    assert [n.id for n in graph.nodes] == ["a.one", "a.two", "b.later", "c.x"]
    assert [n.own for n in graph.nodes] == [True, True, False, False]
    assert [(e.source, e.target) for e in graph.edges] == [("a.one", "a.two")]
    assert [(e.source, e.target) for e in graph.cross_pipeline_edges] == [
        ("a.two", "b.later"),
        ("c.x", "a.two"),
    ]
