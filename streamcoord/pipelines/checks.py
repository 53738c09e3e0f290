"""Semantic checks: what the schema alone cannot see.

Duplicate names, needs that point nowhere, dependency cycles (across pipelines too), triggers
(each kind's own findings and expressions, see :mod:`streamcoord.pipelines.triggers`), expressions,
pools, executor topics and secret references. Pure: every check reads :class:`LoadedSpecs` and
returns located :class:`Problem` s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from streamcoord.pipelines.executor_checks import invalid_executor_configs
from streamcoord.pipelines.expressions import (
    CONDITION_VARIABLES,
    NEED_VARIABLES,
    RUN_KEY_VARIABLES,
    ExpressionError,
    compile_expression,
    compile_template,
)
from streamcoord.pipelines.graph import StageRef, dependency_edges, find_cycles, need_target
from streamcoord.pipelines.loader import LoadedSpecs, SpecDocument
from streamcoord.pipelines.models import Need, Pipeline, Stage
from streamcoord.pipelines.policy_checks import policy_problems
from streamcoord.pipelines.problem import FieldPath, Problem, format_path, sorted_problems
from streamcoord.pipelines.secret_checks import invalid_secret_refs
from streamcoord.pipelines.triggers import kind_of
from streamcoord.pipelines.triggers.kind import did_you_mean

__all__ = ["check_specs"]


@dataclass(frozen=True, slots=True)
class _Site:
    """A pipeline with the document and path it came from, for locating problems."""

    pipeline: Pipeline
    document: SpecDocument
    path: FieldPath

    def problem(self, path: FieldPath, message: str, hint: str = "") -> Problem:
        line, col = self.document.source.position(path)
        return Problem(self.document.file, line, col, format_path(path), message, hint)


def check_specs(specs: LoadedSpecs, topics: Collection[str] | None = None) -> tuple[Problem, ...]:
    """Every semantic problem of ``specs``; ``topics`` None skips the executor-topic check."""
    sites = list(_sites(specs))
    known: dict[str, Pipeline] = {}
    for site in sites:
        known.setdefault(site.pipeline.name, site.pipeline)  # the first declaration wins
    checks: list[Callable[[], Iterator[Problem]]] = [
        lambda: _duplicate_names(specs, sites),
        lambda: _unknown_needs(sites, known, specs.unchecked_pipelines),
        lambda: _cycles(sites),
        lambda: _triggers(sites, set(known) | specs.unchecked_pipelines),
        lambda: _expressions(sites),
        lambda: _pools(sites, {pool.name for pool in specs.pools}),
        lambda: invalid_secret_refs(specs),
        lambda: invalid_executor_configs(specs),
        lambda: policy_problems(specs),
    ]
    if topics is not None:
        checks.append(lambda: _topics(sites, frozenset(topics)))
    return sorted_problems(problem for check in checks for problem in check())


def _sites(specs: LoadedSpecs) -> Iterator[_Site]:
    for document in specs.documents:
        for pipeline, path in zip(document.spec.pipelines, document.pipeline_paths, strict=True):
            yield _Site(pipeline, document, path)


def _stage_path(site: _Site, index: int) -> FieldPath:
    return (*site.path, "stages", index)


# ---- names ----------------------------------------------------------------------------------


def _duplicate_names(specs: LoadedSpecs, sites: list[_Site]) -> Iterator[Problem]:
    seen: dict[str, Problem] = {}
    for site in sites:
        here = site.problem((*site.path, "name"), "")
        first = seen.setdefault(site.pipeline.name, here)
        if first is not here:
            yield _duplicate(here, "pipeline", site.pipeline.name, first, "")
        yield from _duplicate_stages(site)
    pools: dict[str, Problem] = {}
    for document in specs.documents:
        for pool, path in zip(document.spec.pools, document.pool_paths, strict=True):
            line, col = document.source.position((*path, "name"))
            here = Problem(document.file, line, col, format_path((*path, "name")), "")
            first = pools.setdefault(pool.name, here)
            if first is not here:
                yield _duplicate(here, "pool", pool.name, first, "")


def _duplicate_stages(site: _Site) -> Iterator[Problem]:
    seen: dict[str, Problem] = {}
    for index, stage in enumerate(site.pipeline.stages):
        here = site.problem((*_stage_path(site, index), "name"), "")
        first = seen.setdefault(stage.name, here)
        if first is not here:
            where = f" in pipeline {site.pipeline.name!r}"
            yield _duplicate(here, "stage", stage.name, first, where)


def _duplicate(here: Problem, what: str, name: str, first: Problem, scope: str) -> Problem:
    where = f"{first.file}:{first.line}:{first.col}"
    return Problem(
        here.file, here.line, here.col, here.path, f"duplicate {what} name {name!r}{scope}",
        f"first declared at {where}; names must be unique",
    )  # fmt: skip


# ---- needs and cycles -----------------------------------------------------------------------


def _need_path(site: _Site, stage_index: int, need_index: int, need: str | Need) -> FieldPath:
    path: FieldPath = (*_stage_path(site, stage_index), "needs", need_index)
    return (*path, "stage") if isinstance(need, Need) else path


def _unknown_needs(
    sites: list[_Site], known: Mapping[str, Pipeline], unchecked: Collection[str]
) -> Iterator[Problem]:
    for site in sites:
        for s_index, stage in enumerate(site.pipeline.stages):
            for n_index, need in enumerate(stage.needs):
                target = need_target(site.pipeline.name, need)
                path = _need_path(site, s_index, n_index, need)
                yield from _unknown_need(site, path, target, known, unchecked)


def _unknown_need(
    site: _Site,
    path: FieldPath,
    target: StageRef,
    known: Mapping[str, Pipeline],
    unchecked: Collection[str],
) -> Iterator[Problem]:
    pipeline, stage = target
    if pipeline in unchecked and pipeline not in known:
        return
    if pipeline not in known:
        hint = did_you_mean(pipeline, known) or "declare it, or load the file that does"
        yield site.problem(path, f"needs {pipeline}.{stage}: unknown pipeline {pipeline!r}", hint)
        return
    stages = [s.name for s in known[pipeline].stages]
    if stage not in stages:
        where = "this pipeline" if pipeline == site.pipeline.name else f"pipeline {pipeline!r}"
        hint = did_you_mean(stage, stages) or f"stages there: {', '.join(stages)}"
        yield site.problem(path, f"needs unknown stage {stage!r} of {where}", hint)


def _cycles(sites: list[_Site]) -> Iterator[Problem]:
    located: dict[tuple[StageRef, StageRef], Problem] = {}
    for site in sites:
        for s_index, stage in enumerate(site.pipeline.stages):
            source = (site.pipeline.name, stage.name)
            for n_index, need in enumerate(stage.needs):
                edge = (source, need_target(site.pipeline.name, need))
                located.setdefault(edge, site.problem(_need_path(site, s_index, n_index, need), ""))
    for cycle in find_cycles(dependency_edges(site.pipeline for site in sites)):
        where = located[(cycle[0], cycle[1])]
        text = " -> ".join(f"{p}.{s}" for p, s in cycle)
        yield Problem(
            where.file, where.line, where.col, where.path, f"dependency cycle: {text}",
            "a stage cannot wait for itself; remove one of these needs",
        )  # fmt: skip


# ---- triggers: each kind checks its own ---------------------------------------------------


def _triggers(sites: list[_Site], pipelines: Collection[str]) -> Iterator[Problem]:
    for site in sites:
        for index, trigger in enumerate(site.pipeline.triggers):
            path = (*site.path, "triggers", index)
            kind = kind_of(trigger)
            for finding in kind.findings(trigger, pipelines):
                yield site.problem((*path, *finding.path), finding.message, finding.hint)
            for field, source, variables in kind.expressions(trigger):
                yield from _expression(site, (*path, field), source, variables)


# ---- expressions ------------------------------------------------------------------------------

_Expr = tuple[FieldPath, str, frozenset[str]]


def _expressions(sites: list[_Site]) -> Iterator[Problem]:
    for site in sites:
        run_key = site.pipeline.run_key
        yield from _expression(site, (*site.path, "run_key"), run_key, RUN_KEY_VARIABLES)
        for index, stage in enumerate(site.pipeline.stages):
            stage_path = _stage_path(site, index)
            for path, source, variables in _stage_expressions(stage_path, stage):
                yield from _expression(site, path, source, variables)
            for key, value in stage.params.items():
                yield from _template(site, (*stage_path, "params", key), value)


def _stage_expressions(path: FieldPath, stage: Stage) -> Iterator[_Expr]:
    if stage.condition is not None:
        yield (*path, "condition"), stage.condition, CONDITION_VARIABLES
    for index, need in enumerate(stage.needs):
        if isinstance(need, Need):
            if need.run_key is not None:
                yield (*path, "needs", index, "run_key"), need.run_key, NEED_VARIABLES
            if need.watermark is not None:
                yield (*path, "needs", index, "watermark"), need.watermark, CONDITION_VARIABLES


def _expression(
    site: _Site, path: FieldPath, source: str, variables: frozenset[str]
) -> Iterator[Problem]:
    try:
        compile_expression(source, variables=variables)
    except ExpressionError as error:
        yield site.problem(path, _expression_message(error), error.hint)


def _template(site: _Site, path: FieldPath, value: JsonValue) -> Iterator[Problem]:
    try:
        compile_template(value, variables=CONDITION_VARIABLES)
    except ExpressionError as error:
        yield site.problem(path, _expression_message(error), error.hint)


def _expression_message(error: ExpressionError) -> str:
    return f"invalid expression at {error.line}:{error.column} of {error.source!r}: {error.reason}"


# ---- references: pools, topics -----------------------------------------------------------


def _pools(sites: list[_Site], pools: Collection[str]) -> Iterator[Problem]:
    for site in sites:
        defaults_pool = site.pipeline.defaults.pool
        if defaults_pool is not None and defaults_pool not in pools:
            yield _unknown_pool(site, (*site.path, "defaults", "pool"), defaults_pool, pools)
        for index, stage in enumerate(site.pipeline.stages):
            if stage.pool is not None and stage.pool not in pools:
                yield _unknown_pool(site, (*_stage_path(site, index), "pool"), stage.pool, pools)


def _unknown_pool(site: _Site, path: FieldPath, pool: str, pools: Collection[str]) -> Problem:
    hint = did_you_mean(pool, pools) or "declare it under 'pools:' (name, slots)"
    return site.problem(path, f"unknown pool {pool!r}", hint)


def _topics(sites: list[_Site], topics: frozenset[str]) -> Iterator[Problem]:
    for site in sites:
        for index, stage in enumerate(site.pipeline.stages):
            executor = stage.executor or site.pipeline.defaults.executor
            if executor.topic in topics:
                continue
            path = _topic_path(site, index, stage)
            hint = did_you_mean(executor.topic, topics) or (
                "declare it in the topics file (streamcoord topics apply -f FILE)"
            )
            yield site.problem(path, f"executor topic {executor.topic!r} is not declared", hint)


def _topic_path(site: _Site, index: int, stage: Stage) -> FieldPath:
    if stage.executor is not None:
        return (*_stage_path(site, index), "executor", "topic")
    # The topic came from the pipeline's defaults (or the built-in default): point there.
    return (*site.path, "defaults", "executor", "topic")
