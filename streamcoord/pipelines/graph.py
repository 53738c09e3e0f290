"""The stage dependency graph across pipelines: edges from ``needs``, and cycles in it.

Pure and deterministic: nodes and edges come out sorted, whatever order specs were loaded in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from streamcoord.pipelines.models import Need, Pipeline

__all__ = ["StageRef", "dependency_edges", "find_cycles", "need_target"]

#: A stage anywhere: (pipeline name, stage name).
StageRef = tuple[str, str]


def need_target(pipeline: str, need: str | Need) -> StageRef:
    """The stage a need of a stage in ``pipeline`` points at (``stage`` or ``other.stage``)."""
    text = need.stage if isinstance(need, Need) else need
    upstream, dot, stage = text.partition(".")
    return (upstream, stage) if dot else (pipeline, text)


def dependency_edges(pipelines: Iterable[Pipeline]) -> dict[StageRef, tuple[StageRef, ...]]:
    """Each stage with the stages it needs (downstream -> upstream), sorted."""
    edges: dict[StageRef, set[StageRef]] = {}
    for pipeline in pipelines:
        for stage in pipeline.stages:
            targets = edges.setdefault((pipeline.name, stage.name), set())
            targets.update(need_target(pipeline.name, need) for need in stage.needs)
    return {node: tuple(sorted(targets)) for node, targets in sorted(edges.items())}


def find_cycles(edges: Mapping[StageRef, tuple[StageRef, ...]]) -> list[list[StageRef]]:
    """One cycle per strongly connected component that has one, as ``[a, b, ..., a]``."""
    cycles = []
    for component in _components(edges):
        members = set(component)
        start = min(component)
        if len(component) > 1 or start in edges.get(start, ()):
            cycles.append(_cycle_through(start, members, edges))
    return sorted(cycles)


def _components(edges: Mapping[StageRef, tuple[StageRef, ...]]) -> list[list[StageRef]]:
    """Tarjan's strongly connected components, iteratively (specs can be deep)."""
    index: dict[StageRef, int] = {}
    low: dict[StageRef, int] = {}
    stack: list[StageRef] = []
    on_stack: set[StageRef] = set()
    components: list[list[StageRef]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            successors = edges.get(node, ())
            if child < len(successors):
                work.append((node, child + 1))
                nxt = successors[child]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_through(
    start: StageRef, members: set[StageRef], edges: Mapping[StageRef, tuple[StageRef, ...]]
) -> list[StageRef]:
    """A shortest path from ``start`` back to itself inside one component (breadth first)."""
    previous: dict[StageRef, StageRef] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in edges.get(node, ()):
                if nxt == start:
                    return _unwind(start, node, previous)
                if nxt in members and nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return [start, start]


def _unwind(
    start: StageRef, last: StageRef, previous: Mapping[StageRef, StageRef]
) -> list[StageRef]:
    path = [last]
    while path[-1] != start:
        path.append(previous[path[-1]])
    return [*reversed(path), start]
