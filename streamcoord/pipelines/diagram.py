"""A pipeline's DAG as Mermaid or Graphviz DOT text, with its cross-pipeline neighbours.

The pipeline's own stages are drawn with the stages of other pipelines that they need
(upstream) or that need them (downstream), each other pipeline in its own subgraph; edges run
from upstream to downstream, dashed when they cross pipelines. Streaming stages have their own
shape. Output is deterministic: pipelines sorted, stages in spec order.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from streamcoord.errors import ConfigError
from streamcoord.pipelines.graph import StageRef, need_target
from streamcoord.pipelines.models import Pipeline, Stage

__all__ = ["DiagramFormat", "render_diagram"]

DiagramFormat = Literal["mermaid", "dot"]


@dataclass(frozen=True, slots=True)
class _Diagram:
    pipeline: str
    clusters: dict[str, list[tuple[StageRef, bool]]]  # pipeline -> [(stage, streaming)]
    edges: list[tuple[StageRef, StageRef]]  # upstream -> downstream


def render_diagram(pipelines: Sequence[Pipeline], name: str, fmt: DiagramFormat = "mermaid") -> str:
    """The DAG of pipeline ``name`` among ``pipelines``; ConfigError if it is not there."""
    diagram = _build(pipelines, name)
    return _mermaid(diagram) if fmt == "mermaid" else _dot(diagram)


def _build(pipelines: Sequence[Pipeline], name: str) -> _Diagram:
    by_name = {p.name: p for p in reversed(pipelines)}  # the first declaration wins
    if name not in by_name:
        close = difflib.get_close_matches(name, sorted(by_name), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(by_name))}"
        raise ConfigError(f"no pipeline named {name!r} in the specs", hint=hint)
    edges = sorted(set(_edges(by_name.values(), name)))
    nodes = {(name, s.name) for s in by_name[name].stages} | {n for e in edges for n in e}
    clusters = {
        pipeline: _cluster(by_name.get(pipeline), pipeline, nodes)
        for pipeline in [name, *sorted({p for p, _ in nodes} - {name})]
    }
    return _Diagram(name, clusters, edges)


def _cluster(
    pipeline: Pipeline | None, name: str, nodes: set[StageRef]
) -> list[tuple[StageRef, bool]]:
    """The drawn stages of one pipeline: declared ones in spec order, then unknown ones."""
    declared = [s for s in pipeline.stages if (name, s.name) in nodes] if pipeline else []
    members = [((name, s.name), _streaming(pipeline, s)) for s in declared]
    names = {s.name for s in declared}
    return members + [(n, False) for n in sorted(nodes) if n[0] == name and n[1] not in names]


def _edges(pipelines: Iterable[Pipeline], name: str) -> Iterable[tuple[StageRef, StageRef]]:
    for pipeline in pipelines:
        for stage in pipeline.stages:
            for need in stage.needs:
                upstream = need_target(pipeline.name, need)
                if name in (pipeline.name, upstream[0]):
                    yield upstream, (pipeline.name, stage.name)


def _streaming(pipeline: Pipeline | None, stage: Stage) -> bool:
    if pipeline is None:
        return False
    return (stage.executor or pipeline.defaults.executor).kind == "streaming"


def _node_id(ref: StageRef) -> str:
    return f"{ref[0]}__{ref[1]}".replace("-", "_")


def _mermaid(diagram: _Diagram) -> str:
    lines = ["flowchart LR"]
    for pipeline, members in diagram.clusters.items():
        lines.append(f"  subgraph {pipeline.replace('-', '_')}_pipeline [{pipeline}]")
        for ref, streaming in members:
            shape = '(["{}"])' if streaming else '["{}"]'
            lines.append(f"    {_node_id(ref)}{shape.format(ref[1])}")
        lines.append("  end")
    for upstream, downstream in diagram.edges:
        arrow = "-->" if upstream[0] == downstream[0] else "-.->"
        lines.append(f"  {_node_id(upstream)} {arrow} {_node_id(downstream)}")
    return "\n".join(lines) + "\n"


def _dot(diagram: _Diagram) -> str:
    lines = [f'digraph "{diagram.pipeline}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for pipeline, members in diagram.clusters.items():
        lines.append(f'  subgraph "cluster_{pipeline}" {{')
        lines.append(f'    label="{pipeline}";')
        for ref, streaming in members:
            shape = ", shape=parallelogram" if streaming else ""
            lines.append(f'    "{ref[0]}.{ref[1]}" [label="{ref[1]}"{shape}];')
        lines.append("  }")
    for upstream, downstream in diagram.edges:
        style = "" if upstream[0] == downstream[0] else " [style=dashed]"
        lines.append(
            f'  "{upstream[0]}.{upstream[1]}" -> "{downstream[0]}.{downstream[1]}"{style};'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
