"""The compiled, indexed form of the pipeline specs that :func:`decide` reads.

Built once: CEL is compiled here, stages are put in topological order and triggers are indexed
(by CloudEvents type for the kinds that match external events, by each kind's own key for the
others) so matching an event costs a dict lookup, not a scan of every pipeline. Each trigger's
kind (:mod:`streamcoord.pipelines.triggers`) checks it, names its expressions and its index key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from streamcoord.core._expressions import Compiled, compile_expression, compile_template
from streamcoord.core._policies import CompiledPolicies, compile_policies
from streamcoord.core._versions import spec_version
from streamcoord.errors import SpecError
from streamcoord.events.models import ExecutorBinding
from streamcoord.pipelines.expressions import (
    CONDITION_VARIABLES,
    NEED_VARIABLES,
    RUN_KEY_VARIABLES,
    CompiledTemplate,
)
from streamcoord.pipelines.models import Need, Pipeline, Policy, Pool, RetryPolicy, Stage
from streamcoord.pipelines.problem import format_path
from streamcoord.pipelines.triggers import kind_of
from streamcoord.pipelines.triggers.kind import CompiledTrigger

__all__ = [
    "DEFAULT_RETENTION",
    "Catalog",
    "CompiledNeed",
    "CompiledPipeline",
    "CompiledStage",
    "CompiledTrigger",
]

#: How long a finished run stays in the coordinator's state (its record stays in the runs topic).
DEFAULT_RETENTION = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class CompiledNeed:
    """An upstream stage; ``pipeline`` is None for a stage of the same pipeline."""

    name: str  # as written: 'stage' or 'pipeline.stage'
    pipeline: str | None
    stage: str
    run_key: Compiled | None
    watermark: Compiled | None


@dataclass(frozen=True, slots=True)
class CompiledStage:
    name: str
    index: int
    needs: tuple[CompiledNeed, ...]
    # names of the needs when all are stages of this pipeline without a watermark target
    local_needs: tuple[str, ...] | None
    downstream: tuple[str, ...]
    trigger_rule: str
    condition: Compiled | None
    executor: ExecutorBinding
    params: Mapping[str, Any]  # the params when they hold no ``${ }`` span
    params_template: CompiledTemplate | None
    retries: RetryPolicy
    timeout_seconds: float | None
    heartbeat_timeout_seconds: float | None
    start_timeout_seconds: float | None
    priority: int
    pool: str | None


@dataclass(frozen=True, slots=True)
class CompiledPipeline:
    name: str
    run_key: Compiled
    stages: Mapping[str, CompiledStage]  # in topological order
    max_active_runs: int | None
    over_limit: str
    has_external_needs: bool
    triggers: tuple[CompiledTrigger[Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every pipeline and pool, compiled; build it with :meth:`Catalog.build`.

    ``version`` is :func:`spec_version` of the specs it was built from.

    ``retention`` is how long a finished run stays in the state: part of the catalog, not of
    the runtime, because it decides which runs expire when, so a replay must use the same one.
    """

    pipelines: Mapping[str, CompiledPipeline]
    pools: Mapping[str, Pool]
    # triggers of the kinds that match external events, by CloudEvents type, in spec order
    by_type: Mapping[str, tuple[CompiledTrigger[Any], ...]] = field(default_factory=dict)
    # every trigger by kind, then by the kind's key (see TriggerKind.key), in spec order
    by_kind: Mapping[str, Mapping[str, tuple[CompiledTrigger[Any], ...]]] = field(
        default_factory=dict
    )
    version: str = ""
    retention: timedelta = DEFAULT_RETENTION
    policies: CompiledPolicies = field(default_factory=CompiledPolicies)

    def triggers(self, kind: str, key: str) -> tuple[CompiledTrigger[Any], ...]:
        """The triggers of ``kind`` indexed under ``key``, in spec order."""
        return self.by_kind.get(kind, {}).get(key, ())

    @classmethod
    def build(
        cls,
        pipelines: Sequence[Pipeline],
        pools: Sequence[Pool] = (),
        *,
        default_start_timeout_seconds: float | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        policies: Sequence[Policy] = (),
    ) -> Catalog:
        """Compile and index the specs; raises :class:`SpecError` listing every problem.

        ``default_start_timeout_seconds`` is the start timeout of stages whose spec sets none
        (None: such stages wait for ``started`` without a limit); the coordinator passes its
        setting, and a replay of its log must pass the same value. ``retention`` (positive) is
        how long finished runs stay in the state. ``policies`` are enforced by ``decide``.
        """
        if default_start_timeout_seconds is not None and default_start_timeout_seconds <= 0:
            raise SpecError(
                f"default_start_timeout_seconds must be > 0, not {default_start_timeout_seconds}",
                hint="leave it unset for no default start timeout",
            )
        if retention <= timedelta(0):
            raise SpecError(
                f"retention must be positive, not {retention}",
                hint="give the seconds finished runs stay in the state, e.g. 604800",
            )
        names = [p.name for p in pipelines]
        problems = [
            f"pipeline {dup!r} is defined more than once"
            for dup in sorted({n for n in names if names.count(n) > 1})
        ]
        pool_map = {p.name: p for p in pools}
        compiled: dict[str, CompiledPipeline] = {}
        for pipeline in pipelines:
            try:
                compiled[pipeline.name] = _compile_pipeline(
                    pipeline, pool_map, set(names), default_start_timeout_seconds
                )
            except SpecError as exc:
                problems.append(exc.message)
        if problems:
            raise SpecError(
                "invalid pipeline specs: " + "; ".join(problems),
                hint="fix the specs and load them again",
            )
        catalog = _indexed(compiled, pool_map, spec_version(pipelines, pools, policies), retention)
        if not policies:
            return catalog
        return dataclasses.replace(catalog, policies=compile_policies(policies, pipelines))


def _indexed(
    compiled: dict[str, CompiledPipeline],
    pools: dict[str, Pool],
    version: str,
    retention: timedelta,
) -> Catalog:
    by_type: dict[str, list[CompiledTrigger[Any]]] = {}
    by_kind: dict[str, dict[str, list[CompiledTrigger[Any]]]] = {}
    for pipeline in compiled.values():
        for trigger in pipeline.triggers:
            kind = kind_of(trigger.spec)
            by_kind.setdefault(kind.name, {}).setdefault(trigger.key, []).append(trigger)
            if kind.matches_events:
                by_type.setdefault(trigger.key, []).append(trigger)
    return Catalog(
        pipelines=compiled,
        pools=pools,
        by_type={k: tuple(v) for k, v in by_type.items()},
        by_kind={k: {key: tuple(v) for key, v in keyed.items()} for k, keyed in by_kind.items()},
        version=version,
        retention=retention,
    )


def _triggers(
    pipeline: Pipeline, pipelines: set[str], where: str
) -> tuple[CompiledTrigger[Any], ...]:
    """Each trigger checked and compiled by its kind (the checks ``validate`` runs, unlocated)."""
    problems = [
        f"{where} {format_path(('triggers', index, *finding.path))}: {finding.message}"
        for index, trigger in enumerate(pipeline.triggers)
        for finding in kind_of(trigger).findings(trigger, pipelines)
    ]
    if problems:
        raise SpecError("; ".join(problems))
    compiled = []
    for index, trigger in enumerate(pipeline.triggers):
        kind, here = kind_of(trigger), f"{where} trigger {index}"
        expressions = {
            name: compile_expression(source, here, variables)
            for name, source, variables in kind.expressions(trigger)
        }
        key = kind.key(pipeline.name, trigger)
        compiled.append(CompiledTrigger(pipeline.name, index, trigger, key, expressions))
    return tuple(compiled)


def _need(raw: str | Need, pipeline: Pipeline, where: str) -> CompiledNeed:
    need = raw if isinstance(raw, Need) else Need(stage=raw)
    other, dot, stage = need.stage.rpartition(".")
    upstream = other if dot and other != pipeline.name else None
    return CompiledNeed(
        name=need.stage,
        pipeline=upstream,
        stage=stage,
        run_key=None
        if need.run_key is None
        else compile_expression(
            need.run_key, f"{where} need {need.stage!r} run_key", NEED_VARIABLES
        ),
        watermark=None
        if need.watermark is None
        else compile_expression(
            need.watermark, f"{where} need {need.stage!r} watermark", CONDITION_VARIABLES
        ),
    )


def _compile_pipeline(
    pipeline: Pipeline,
    pools: Mapping[str, Pool],
    pipelines: set[str],
    start_timeout: float | None,
) -> CompiledPipeline:
    where = f"pipeline {pipeline.name!r}"
    stage_names = [s.name for s in pipeline.stages]
    if len(set(stage_names)) != len(stage_names):
        raise SpecError(f"{where}: stage names must be unique")
    needs = {
        s.name: tuple(_need(n, pipeline, f"{where} stage {s.name!r}") for n in s.needs)
        for s in pipeline.stages
    }
    for stage, stage_needs in needs.items():
        for need in stage_needs:
            if need.pipeline is None and need.stage not in needs:
                raise SpecError(f"{where} stage {stage!r}: needs unknown stage {need.stage!r}")
            if need.pipeline is not None and need.pipeline not in pipelines:
                raise SpecError(
                    f"{where} stage {stage!r}: needs unknown pipeline {need.pipeline!r}"
                )
    triggers = _triggers(pipeline, pipelines, where)
    order = _topological(pipeline.stages, needs, where)
    downstream: dict[str, list[str]] = {name: [] for name in order}
    for name in order:
        for need in needs[name]:
            if need.pipeline is None:
                downstream[need.stage].append(name)
    by_name = {s.name: s for s in pipeline.stages}
    stages = {
        name: _compile_stage(
            pipeline,
            by_name[name],
            i,
            needs=needs[name],
            downstream=tuple(downstream[name]),
            pools=pools,
            where=where,
            start_timeout=start_timeout,
        )
        for i, name in enumerate(order)
    }
    return CompiledPipeline(
        name=pipeline.name,
        run_key=compile_expression(pipeline.run_key, f"{where} run_key", RUN_KEY_VARIABLES),
        stages=stages,
        max_active_runs=pipeline.concurrency.max_active_runs,
        over_limit=pipeline.concurrency.over_limit,
        has_external_needs=any(n.pipeline for ns in needs.values() for n in ns),
        triggers=triggers,
    )


def _topological(
    stages: Sequence[Stage], needs: Mapping[str, tuple[CompiledNeed, ...]], where: str
) -> list[str]:
    """Kahn's algorithm, ties broken by declaration order so the order is deterministic."""
    remaining = {s.name: {n.stage for n in needs[s.name] if n.pipeline is None} for s in stages}
    order: list[str] = []
    while remaining:
        free = [name for name, deps in remaining.items() if not deps]
        if not free:
            raise SpecError(f"{where}: stages form a cycle: {', '.join(sorted(remaining))}")
        for name in free:
            order.append(name)
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(free)
    return order


def _compile_stage(
    pipeline: Pipeline,
    stage: Stage,
    index: int,
    *,
    needs: tuple[CompiledNeed, ...],
    downstream: tuple[str, ...],
    pools: Mapping[str, Pool],
    where: str,
    start_timeout: float | None,
) -> CompiledStage:
    where = f"{where} stage {stage.name!r}"
    defaults = pipeline.defaults
    pool = stage.pool if stage.pool is not None else defaults.pool
    if pool is not None and pool not in pools:
        raise SpecError(f"{where}: unknown pool {pool!r}", hint="declare it under `pools:`")
    executor = stage.executor or defaults.executor
    template = compile_template(dict(stage.params), f"{where} params", CONDITION_VARIABLES)
    return CompiledStage(
        name=stage.name,
        index=index,
        needs=needs,
        local_needs=(
            tuple(n.stage for n in needs)
            if all(n.pipeline is None and n.watermark is None for n in needs)
            else None
        ),
        downstream=downstream,
        trigger_rule=stage.trigger_rule,
        condition=None
        if stage.condition is None
        else compile_expression(stage.condition, f"{where} condition", CONDITION_VARIABLES),
        executor=ExecutorBinding(
            topic=executor.topic, kind=executor.kind, config=dict(executor.config)
        ),
        params=_constant(template),
        params_template=template if template.expressions else None,
        retries=stage.retries or defaults.retries,
        timeout_seconds=_first(stage.timeout_seconds, defaults.timeout_seconds),
        heartbeat_timeout_seconds=_first(
            stage.heartbeat_timeout_seconds, defaults.heartbeat_timeout_seconds
        ),
        start_timeout_seconds=_first(
            _first(stage.start_timeout_seconds, defaults.start_timeout_seconds), start_timeout
        ),
        priority=stage.priority if stage.priority is not None else defaults.priority,
        pool=pool,
    )


def _constant(template: CompiledTemplate) -> dict[str, Any]:
    if template.expressions:
        return {}
    rendered = template.render({})  # no spans: only `$${` escapes to undo
    assert isinstance(rendered, dict)  # compiled from the params mapping
    return rendered


def _first(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b
