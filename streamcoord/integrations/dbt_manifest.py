"""A pipeline spec from a dbt manifest: one stage per node (model, seed, snapshot) or per group
of nodes (a YAML selector), ``needs`` from the nodes' refs.

Pure: takes the parsed ``manifest.json`` (and, for selectors, which nodes each one selects, as
``dbt ls`` says) and returns a :class:`SpecFile`; :func:`render_spec` writes it as YAML that
``streamcoord validate`` accepts.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import JsonValue
from ruamel.yaml import YAML

from streamcoord.errors import ConfigError
from streamcoord.pipelines.executors import DBT_TRIGGER_TOPIC, DbtCommand
from streamcoord.pipelines.graph import dependency_edges, find_cycles
from streamcoord.pipelines.models import Executor, Pipeline, Pool, SpecFile, Stage, StageDefaults

__all__ = ["ImportOptions", "render_spec", "spec_from_groups", "spec_from_manifest"]

#: The node types that become stages; tests run with the stage of the node they test.
STAGE_RESOURCE_TYPES: Final = ("model", "seed", "snapshot")
_MAX_NAME: Final = 63


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How the generated stages run: where the project is on the dbt worker, and so on."""

    project_dir: str
    pipeline: str | None = None  # default: the dbt project's name
    profiles_dir: str | None = None
    target: str | None = None
    command: DbtCommand = "build"
    topic: str = DBT_TRIGGER_TOPIC
    pool_slots: int | None = None  # a pool of this size around the pipeline's stages
    params: Mapping[str, JsonValue] | None = None  # every stage's params (dbt vars), templates


def spec_from_manifest(manifest: Mapping[str, Any], options: ImportOptions) -> SpecFile:
    """One stage per model, seed and snapshot of the project (not of its packages)."""
    project = _project_name(manifest)
    nodes = {
        uid: node
        for uid, node in _nodes(manifest).items()
        if node.get("resource_type") in STAGE_RESOURCE_TYPES and node.get("package_name") == project
    }
    if not nodes:
        raise ConfigError(
            f"the manifest of dbt project {project!r} has no model, seed or snapshot",
            hint="run `dbt parse` in the project, then import its target/manifest.json",
        )
    names = _stage_names(nodes)
    stages = []
    for uid in sorted(nodes, key=lambda u: names[u]):
        node = nodes[uid]
        parents = _parents(node)
        needs: list[str | Any] = sorted({names[p] for p in parents if p in nodes})
        selection = "fqn:" + ".".join(str(part) for part in node.get("fqn", [node.get("name")]))
        stages.append(
            Stage(
                name=names[uid],
                description=f"dbt {options.command} {uid}",
                needs=needs,
                params=dict(options.params or {}),
                executor=_executor(options, {"select": [selection]}),
            )
        )
    return _spec(project, stages, options)


def spec_from_groups(
    manifest: Mapping[str, Any], groups: Mapping[str, Iterable[str]], options: ImportOptions
) -> SpecFile:
    """One stage per YAML selector; ``groups`` maps each selector to the unique ids it selects.

    A selector needs another when one of its nodes refs one of the other's; a cycle between
    selectors is an error (their nodes would wait on each other).
    """
    project = _project_name(manifest)
    nodes = _nodes(manifest)
    members = {name: set(ids) for name, ids in groups.items()}
    owner: dict[str, set[str]] = {}
    for name, ids in members.items():
        for uid in ids:
            owner.setdefault(uid, set()).add(name)
    names = {name: _name(name) for name in members}
    stages = []
    for name in sorted(members, key=lambda n: names[n]):
        upstream = {
            other
            for uid in members[name]
            for parent in _parents(nodes.get(uid, {}))
            for other in owner.get(parent, set())
            if other != name
        }
        needs: list[str | Any] = sorted(names[other] for other in upstream)
        stages.append(
            Stage(
                name=names[name],
                description=f"dbt {options.command} --selector {name}",
                needs=needs,
                params=dict(options.params or {}),
                executor=_executor(options, {"selector": name}),
            )
        )
    spec = _spec(project, stages, options)
    cycles = find_cycles(dependency_edges(spec.pipelines))
    if cycles:
        shown = " -> ".join(stage for _, stage in cycles[0])
        raise ConfigError(
            f"selectors depend on each other in a cycle: {shown}",
            hint="import one stage per model (--per model) or change the selectors",
        )
    return spec


def render_spec(spec: SpecFile, header: str = "") -> str:
    """``spec`` as YAML (defaults left out), with ``header`` as a leading comment."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    yaml = YAML()  # round-trip: keys stay in the models' order
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + out.getvalue()


def _spec(project: str, stages: Sequence[Stage], options: ImportOptions) -> SpecFile:
    name = options.pipeline or _name(project)
    pool = f"{name}-dbt" if options.pool_slots else None
    pipeline = Pipeline(
        name=name,
        description=f"dbt project {project}, imported from its manifest",
        tags=["dbt"],
        defaults=StageDefaults(pool=pool),
        stages=list(stages),
    )
    pools = [Pool(name=pool, slots=options.pool_slots or 1)] if pool else []
    return SpecFile(pipelines=[pipeline], pools=pools)


def _executor(options: ImportOptions, selection: dict[str, JsonValue]) -> Executor:
    config: dict[str, JsonValue] = {"project_dir": options.project_dir}
    if options.profiles_dir:
        config["profiles_dir"] = options.profiles_dir
    if options.target:
        config["target"] = options.target
    if options.command != "build":
        config["command"] = options.command
    config.update(selection)
    return Executor(topic=options.topic, config=config)


def _project_name(manifest: Mapping[str, Any]) -> str:
    metadata = manifest.get("metadata")
    name = metadata.get("project_name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "this is not a dbt manifest (no metadata.project_name)",
            hint="pass the project's target/manifest.json (`dbt parse` writes it)",
        )
    return name


def _nodes(manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = manifest.get("nodes")
    return (
        {str(k): v for k, v in nodes.items() if isinstance(v, dict)}
        if isinstance(nodes, dict)
        else {}
    )


def _parents(node: Mapping[str, Any]) -> list[str]:
    depends = node.get("depends_on")
    parents = depends.get("nodes", []) if isinstance(depends, dict) else []
    return [str(p) for p in parents]


def _name(text: str) -> str:
    """A valid stage or pipeline name (lower-case letters, digits, '_', '-'; a letter first)."""
    name = re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_-")
    if not name or not name[0].isalpha():
        name = f"n_{name}"
    return name[:_MAX_NAME]


def _stage_names(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """A distinct stage name per node: its dbt name, with the resource type where two clash."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for uid in sorted(nodes):
        node = nodes[uid]
        base = _name(str(node.get("name") or uid))
        name = base
        if name in taken:
            name = _name(f"{base}_{node.get('resource_type', 'node')}")
        counter = 2
        while name in taken:
            name = _name(f"{base}_{counter}")
            counter += 1
        names[uid] = name
        taken.add(name)
    return names
