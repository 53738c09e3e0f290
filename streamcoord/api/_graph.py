"""A pipeline's stage graph as nodes and edges, with its cross-pipeline neighbours (what
``streamcoord graph`` draws)."""

from __future__ import annotations

from collections.abc import Sequence

from streamcoord.api._schemas import GraphEdge, GraphNode, PipelineGraph
from streamcoord.pipelines.graph import StageRef, need_target
from streamcoord.pipelines.models import Pipeline

__all__ = ["pipeline_graph"]


def pipeline_graph(pipelines: Sequence[Pipeline], name: str) -> PipelineGraph:
    """The graph of ``name``: its stages in spec order, then the neighbours, sorted."""
    edges: set[tuple[StageRef, StageRef]] = set()
    for pipeline in pipelines:
        for stage in pipeline.stages:
            for need in stage.needs:
                upstream = need_target(pipeline.name, need)
                if name in (pipeline.name, upstream[0]):
                    edges.add((upstream, (pipeline.name, stage.name)))
    own = next(p for p in pipelines if p.name == name)
    nodes: list[StageRef] = [(name, s.name) for s in own.stages]
    nodes += sorted({n for e in edges for n in e} - set(nodes))
    ordered = sorted(edges)
    return PipelineGraph(
        pipeline=name,
        nodes=[GraphNode(id=_id(n), pipeline=n[0], stage=n[1], own=n[0] == name) for n in nodes],
        edges=[_edge(e) for e in ordered if e[0][0] == e[1][0] == name],
        cross_pipeline_edges=[_edge(e) for e in ordered if e[0][0] != e[1][0]],
    )


def _id(ref: StageRef) -> str:
    return f"{ref[0]}.{ref[1]}"


def _edge(edge: tuple[StageRef, StageRef]) -> GraphEdge:
    return GraphEdge(source=_id(edge[0]), target=_id(edge[1]))
