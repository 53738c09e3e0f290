"""``decide``: one event in, the new state and the commands out."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar, get_origin

from pydantic import ValidationError

from streamcoord.core import _attempts as ex
from streamcoord.core import _enforcement, _limits, _pools, _respec, _retention, _subscriptions
from streamcoord.core._admission import MATCH, admit, drop_run, pause, resume
from streamcoord.core._catalog import Catalog, CompiledPipeline
from streamcoord.core._context import Context
from streamcoord.core._lifecycle import settle
from streamcoord.core._matching import (
    ARRIVAL,
    dedup_of,
    on_arrival,
    on_external,
    trigger_event_handlers,
)
from streamcoord.core._matching import data_of as _data
from streamcoord.core._state import QUOTA_TIMER, CoordinatorState, RunState, event_digest
from streamcoord.core._step import Step
from streamcoord.core._versions import CatalogSet
from streamcoord.events.internal import (
    DataArrivalData,
    InternalData,
    LimitAcquireData,
    LimitDenyData,
    LimitRef,
    NeedSubscribeData,
    PoolAcquireData,
    PoolSlot,
    RunMatchData,
)
from streamcoord.events.models import (
    CloudEvent,
    PipelinePause,
    PipelineRef,
    PipelineResume,
    RunCancel,
    RunCancelData,
    SpecsActivate,
    SpecsActivateData,
    StageFailed,
    StageFailedData,
    StageHeartbeat,
    StageOutcome,
    StageProgress,
    StageProgressData,
    StageRef,
    StageRetry,
    StageRetryData,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    TimerFired,
    TimerFiredData,
)
from streamcoord.events.partitioning import run_base
from streamcoord.pipelines.triggers.data import KIND as DATA_KIND

__all__ = ["decide"]

_UNFINISHED = frozenset({"active", "queued"})
_DATA = DATA_KIND.name
_RETRYABLE = frozenset({"failed", "timed_out"})
D = TypeVar("D", bound=InternalData)
P = TypeVar("P", bound=PoolSlot)
L = TypeVar("L", bound=LimitRef)


def decide(
    catalog: Catalog | CatalogSet,
    state: CoordinatorState,
    event: CloudEvent,
    now: datetime,
) -> Step:
    """Apply ``event`` (recorded at ``now``) to ``state``; never raises for bad input.

    ``catalog`` is one spec version, or a :class:`CatalogSet` of every version loaded: new runs
    use the partition's active version (``state.spec_version``, else the set's default), a run
    keeps the version it started with while that version is loaded (see the core docstring for
    runs whose version is not).

    ``state`` is changed in place and returned as ``step.state`` (the runtime undoes a batch
    by reloading the committed state).

    The runs whose status or stages the event changed are listed in ``step.changed_runs``; the
    caller builds a ``RunRecord`` of each with :func:`run_record` when its batch ends (one per
    run per batch), or right away with :func:`publish_run_records` (a batch of one event).
    """
    catalogs = catalog if isinstance(catalog, CatalogSet) else _single(catalog)
    ctx = Context(catalogs, state, event, now)
    if _enforcement.allows(ctx):
        _HANDLERS.get(event.type, _on_external)(ctx)
    changed_runs = ctx.changed_runs()
    return Step(
        state,
        tuple(ctx.commands),
        ctx.rejection,
        state.take_touched(),
        tuple(ctx.spans),
        changed_runs,
        tuple(ctx.violations),
    )


# The set of the one catalog decided with last: callers that pass a Catalog pass the same one
# for every event of a batch, and building the set checks it each time.
_LAST_SINGLE: list[CatalogSet] = []


def _single(catalog: Catalog) -> CatalogSet:
    """``CatalogSet.of(catalog)``, built once per catalog in a row."""
    if _LAST_SINGLE and _LAST_SINGLE[0].default is catalog:
        return _LAST_SINGLE[0]
    _LAST_SINGLE[:] = [CatalogSet.of(catalog)]
    return _LAST_SINGLE[0]


def _pipeline(ctx: Context, name: str) -> CompiledPipeline | None:
    cp = ctx.catalog.pipelines.get(name)
    if cp is None:
        ctx.reject("unknown_pipeline", f"no pipeline named {name!r} is loaded")
    return cp


def _run(
    ctx: Context, run_id: str, stage: str | None = None
) -> tuple[CompiledPipeline, RunState] | None:
    """The run ``run_id`` names, ready to update, or None after rejecting or ignoring."""
    run = ctx.state.run(run_base(run_id))
    if run is None or (run.run_id != run_id and run.gen <= _gen(run_id)):
        if not _expired(ctx, run_id, stage):
            ctx.reject("unknown_run", f"no run {run_id!r} on partition {ctx.state.partition}")
        return None
    if run.run_id != run_id:
        ctx.note(run_id, stage, "ignored", f"run was superseded by {run.run_id}", [])
        return None
    cp = ctx.pipeline_of(run)
    if cp is None and run.status not in _UNFINISHED:
        ctx.reject(
            "unknown_pipeline",
            f"run {run_id!r} belongs to {run.pipeline!r}, which spec"
            f" version {ctx.catalog_of(run).version} does not have",
        )
        return None
    if stage is not None and stage not in run.stages and cp is not None:
        ctx.reject("unknown_stage", f"run {run_id!r} has no stage {stage!r}")
        return None
    digest = event_digest(dedup_of(ctx))
    if run.has_seen(digest):
        return None
    run = ctx.state.run_for_update(run.base)
    run.remember(digest)
    return _follow_spec(ctx, cp, run)


def _follow_spec(
    ctx: Context, cp: CompiledPipeline | None, run: RunState
) -> tuple[CompiledPipeline, RunState] | None:
    """Bring an unfinished run in line with the spec it follows before the event applies."""
    if cp is None:  # its spec lost the pipeline: the run ends whatever the event said
        drop_run(ctx, run)
        return None
    if run.status in _UNFINISHED and _respec.adopt(ctx, cp, run) and run.status == "active":
        _restart(ctx, cp, run)
    return cp, run


def _restart(ctx: Context, cp: CompiledPipeline, run: RunState) -> None:
    """After a run took new stages: subscribe to their cross-pipeline needs, run what is ready."""
    _subscriptions.subscribe_needs(ctx, cp, run)
    settle(ctx, cp, run, list(cp.stages))


def _expired(ctx: Context, run_id: str, stage: str | None) -> bool:
    """Whether ``run_id`` expired (noted as ignored: a late event must not resurrect it)."""
    base = run_base(run_id)
    gone = ctx.state.expired_gen(base)  # None while a run of ``base`` is in the state
    if gone is None or _gen(run_id) > gone:
        return False
    ctx.note(run_id, stage, "ignored", _retention.expired_reason(ctx, base, gone), [])
    return True


def _gen(run_id: str) -> int:
    _, _, gen = run_id.partition("#")
    return int(gen) if gen.isdigit() else 1


def _stage_event(model: type[StageRef], apply: Callable[..., None]) -> Callable[[Context], None]:
    def handle(ctx: Context) -> None:
        data = _data(ctx, model)
        if data is None:
            return
        found = _run(ctx, data.run_id, data.stage)
        if found is not None:
            apply(ctx, *found, data)

    return handle


_on_started = _stage_event(
    StageRef, lambda ctx, cp, run, d: ex.on_started(ctx, cp, run, d.stage, d.attempt)
)
_on_heartbeat = _stage_event(
    StageRef, lambda ctx, cp, run, d: ex.on_heartbeat(ctx, cp, run, d.stage, d.attempt)
)
_on_succeeded = _stage_event(
    StageSucceededData,
    lambda ctx, cp, run, d: ex.on_succeeded(
        ctx, cp, run, d.stage, attempt=d.attempt, outputs=d.outputs
    ),
)
_on_failed = _stage_event(
    StageFailedData,
    lambda ctx, cp, run, d: ex.on_failed(
        ctx, cp, run, d.stage, attempt=d.attempt, error=d.error, retryable=d.retryable
    ),
)
_on_progress = _stage_event(
    StageProgressData,
    lambda ctx, cp, run, d: ex.on_progress(
        ctx, cp, run, d.stage, attempt=d.attempt, watermark=d.watermark
    ),
)


def _on_timer(ctx: Context) -> None:
    data = _data(ctx, TimerFiredData)
    if data is None:
        return
    if data.purpose == "expiry":
        _retention.on_sweep(ctx, data)
        return
    if data.purpose == QUOTA_TIMER:
        _limits.on_quota_timer(ctx, data)
        return
    if data.run_id is None:
        ctx.reject("unknown_timer", f"timer {data.timer_id!r} names no run")
        return
    found = _run(ctx, data.run_id)
    if found is not None:
        ex.on_timer(ctx, *found, data)


def _on_cancel(ctx: Context) -> None:
    data = _data(ctx, RunCancelData)
    found = None if data is None else _run(ctx, data.run_id)
    if data is not None and found is not None:
        ex.on_cancel(ctx, *found, data.reason)


def _on_retry(ctx: Context) -> None:
    data = _data(ctx, StageRetryData)
    found = None if data is None else _run(ctx, data.run_id, data.stage)
    if data is None or found is None:
        return
    cp, run = found
    if data.stage not in cp.stages:
        ctx.reject(
            "unknown_stage",
            f"stage {data.stage!r} of run {run.run_id!r} is not in"
            f" spec version {ctx.catalog_of(run).version}; it cannot be retried",
        )
        return
    # a finished run takes the stages of the spec it follows now (an unfinished one already did)
    adopted = run.stages[data.stage].status in _RETRYABLE and _respec.adopt(ctx, cp, run)
    if adopted:
        _respec.reopen(cp, run, data.stage)
    ex.on_retry(ctx, cp, run, data.stage)
    if adopted:
        _restart(ctx, cp, run)


def _pipeline_control(
    apply: Callable[[Context, CompiledPipeline], None],
) -> Callable[[Context], None]:
    def handle(ctx: Context) -> None:
        data = _data(ctx, PipelineRef)
        cp = None if data is None else _pipeline(ctx, data.pipeline)
        if cp is not None:
            apply(ctx, cp)

    return handle


def _internal(ctx: Context, model: type[D]) -> D | None:
    """The data of an internal event as ``model`` (as routed in-process, or validated from its
    JSON: strictly, no bool for an int), else None after rejecting it."""
    data = ctx.event.data
    if type(data) is model:
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        ctx.reject("invalid_data", _invalid(ctx.event.type, model, exc))
        return None


def _invalid(type_: str, model: type[InternalData], exc: ValidationError) -> str:
    """What was wrong with an internal event's data (JSON on a topic like any other, so a
    producer other than streamcoord can get it wrong): an item of a list field, else the
    fields the data needs."""
    loc = exc.errors()[0]["loc"]
    field = model.model_fields.get(str(loc[0])) if len(loc) > 1 else None
    if field is not None and get_origin(field.annotation) is list:
        return f"{type_}: {loc[0]} must list {field.description}"
    wanted = ", ".join(
        f"{name} ({(get_origin(f.annotation) or f.annotation).__name__})"  # type: ignore[union-attr]
        for name, f in model.model_fields.items()
        if f.is_required()
    )
    return f"{type_}: data needs fields {wanted}"


def _on_match(ctx: Context) -> None:
    data = _internal(ctx, RunMatchData)
    cp = None if data is None else _pipeline(ctx, data.pipeline)
    if data is not None and cp is not None:
        admit(ctx, cp, data)


def _on_arrival(ctx: Context) -> None:
    data = _internal(ctx, DataArrivalData)
    cp = None if data is None else _pipeline(ctx, data.pipeline)
    if data is None or cp is None:
        return
    index = data.trigger
    if not (0 <= index < len(cp.triggers) and cp.triggers[index].spec.kind == _DATA):
        # routed from a partition on another spec version
        ctx.reject(
            "unknown_trigger",
            f"pipeline {cp.name!r} has no data trigger {index!r} in"
            f" spec version {ctx.catalog.version}; activate the same version everywhere",
        )
        return
    if type(data.event.get("id")) is not str:
        ctx.reject("invalid_data", f"{ARRIVAL}: the event has no id")
        return
    on_arrival(ctx, cp.triggers[index], data)


def _pool_event(
    model: type[P], apply: Callable[[Context, P, int], None]
) -> Callable[[Context], None]:
    def handle(ctx: Context) -> None:
        data = _internal(ctx, model)
        pool = None if data is None else ctx.catalog.pools.get(data.pool)
        if data is not None and pool is None:
            ctx.reject("unknown_pool", f"no pool named {data.pool!r} is loaded")
        if data is not None and pool is not None:
            apply(ctx, data, pool.slots)

    return handle


def _limit_event(
    model: type[L], apply: Callable[[Context, CompiledPipeline, L], None]
) -> Callable[[Context], None]:
    def handle(ctx: Context) -> None:
        data = _internal(ctx, model)
        if data is None:
            return
        pipeline = data.pipeline
        if ctx.event.type == _limits.RELEASE and pipeline not in ctx.catalog.pipelines:
            # a run of a pipeline the spec removed ended: its slot is freed, nothing admitted
            _limits.forget(ctx, pipeline, data.run_id)
            return
        cp = _pipeline(ctx, pipeline)
        if cp is not None:
            apply(ctx, cp, data)

    return handle


def _on_grant(ctx: Context) -> None:
    data = _internal(ctx, PoolSlot)
    if data is not None and data.pool not in ctx.catalog.pools:
        ctx.reject("unknown_pool", f"no pool named {data.pool!r} is loaded")
        return
    found = None if data is None else _run(ctx, data.run_id, data.stage)
    if data is None or found is None:
        return
    cp, run = found
    if data.stage in cp.stages:
        ex.on_grant(ctx, cp, run, data)
        return
    ctx.note(run.run_id, data.stage, "ignored", "pool slot for a stage the spec removed", [])
    _pools.give_back(ctx, data.pool, run.run_id, data.stage, data.attempt)


def _on_activate(ctx: Context) -> None:
    data = _data(ctx, SpecsActivateData)
    if data is not None:
        _respec.activate(ctx, data.version)


def _on_subscribe(ctx: Context) -> None:
    data = _internal(ctx, NeedSubscribeData)
    if data is not None:
        _subscriptions.handle_subscribe(ctx, data)


def _on_outcome(ctx: Context) -> None:
    extra = ctx.event.model_extra or {}
    target, need = extra.get("sctarget"), extra.get("scneed")
    if not isinstance(target, str) or not isinstance(need, str):
        ctx.reject("invalid_data", "stage outcome without sctarget/scneed extension attributes")
        return
    found = _run(ctx, target)
    if found is not None:
        ex.on_outcome(ctx, *found, need, ctx.event)


def _on_external(ctx: Context) -> None:
    triggers = ctx.catalog.by_type.get(ctx.event.type)
    if triggers:
        on_external(ctx, triggers)


_HANDLERS: dict[str, Callable[[Context], None]] = {
    StageStarted.TYPE: _on_started,
    StageHeartbeat.TYPE: _on_heartbeat,
    StageSucceeded.TYPE: _on_succeeded,
    StageFailed.TYPE: _on_failed,
    StageProgress.TYPE: _on_progress,
    TimerFired.TYPE: _on_timer,
    RunCancel.TYPE: _on_cancel,
    StageRetry.TYPE: _on_retry,
    PipelinePause.TYPE: _pipeline_control(pause),
    PipelineResume.TYPE: _pipeline_control(resume),
    MATCH: _on_match,
    ARRIVAL: _on_arrival,
    _pools.ACQUIRE: _pool_event(PoolAcquireData, _pools.handle_acquire),
    _pools.RELEASE: _pool_event(PoolSlot, _pools.handle_release),
    _pools.GRANT: _on_grant,
    _limits.ACQUIRE: _limit_event(LimitAcquireData, _limits.on_acquire),
    _limits.RELEASE: _limit_event(LimitRef, _limits.on_release),
    _limits.GRANT: _limit_event(LimitRef, _limits.on_grant),
    _limits.DENY: _limit_event(LimitDenyData, _limits.on_deny),
    _subscriptions.SUBSCRIBE: _on_subscribe,
    StageOutcome.TYPE: _on_outcome,
    SpecsActivate.TYPE: _on_activate,
    **trigger_event_handlers(),  # run requests, schedule ticks, finished runs
}
