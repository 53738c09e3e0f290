"""A run's life once admitted: readiness of its stages, triggers, completion and its outcome."""

from __future__ import annotations

import heapq
from datetime import timedelta
from typing import Any

from streamcoord.core import _guards, _limits, _pools, _quotas, _retention, _subscriptions
from streamcoord.core._catalog import CompiledPipeline, CompiledStage
from streamcoord.core._construction import build
from streamcoord.core._context import COORDINATOR_SOURCE, Context
from streamcoord.core._expressions import ExpressionEvaluationError
from streamcoord.core._readiness import OUTCOMES, need_outcome, verdict
from streamcoord.core._state import TERMINAL, RunState, StageState
from streamcoord.core._tracing import (
    LINKS_ATTRIBUTE,
    attempt_span_id,
    format_traceparent,
)
from streamcoord.events.models import (
    RunFinished,
    RunFinishedData,
    StageCancel,
    StageCancelData,
    StageTrigger,
    StageTriggerData,
)

__all__ = [
    "cancel_attempt",
    "complete_stage",
    "finish_run",
    "new_pipe",
    "pipe_key",
    "settle",
    "start_run",
    "trigger_stage",
    "upstream_links",
    "variables",
]

_FAILED = frozenset({"failed", "timed_out", "upstream_failed"})


def pipe_key(pipeline: str) -> str:
    return f"pipe/{pipeline}"


def variables(run: RunState, cp: CompiledPipeline) -> dict[str, Any]:
    """What CEL in conditions, params and need mappings sees."""
    upstream = {n: s.outputs for n, s in run.stages.items() if s.status == "succeeded"}
    for name, ext in run.ext.items():
        upstream[name] = ext[1]
    return {
        "run_key": run.run_key,
        "event": run.trigger,
        "upstream": upstream,
        "params": run.params,
        "pipeline": cp.name,
    }


def start_run(ctx: Context, cp: CompiledPipeline, run: RunState) -> None:
    """Make ``run`` active: subscribe to cross-pipeline needs and trigger what is ready."""
    run.status = "active"
    ctx.run_record(run)
    _subscriptions.subscribe_needs(ctx, cp, run)
    settle(ctx, cp, run, list(cp.stages))


def new_pipe() -> dict[str, Any]:
    return {"v": 1, "paused": False, "held": [], "active": [], "waiting": []}


def settle(ctx: Context, cp: CompiledPipeline, run: RunState, names: list[str]) -> None:
    """Re-evaluate ``names`` (and whatever their outcome unblocks) in topological order."""
    stages, states = cp.stages, run.stages
    heap = [(stages[n].index, n) for n in names if states[n].status == "pending"]
    heapq.heapify(heap)
    done: set[str] = set()
    while heap:
        _, name = heapq.heappop(heap)
        if name in done:
            continue
        done.add(name)
        cs = stages[name]
        if states[name].status == "pending" and _evaluate(ctx, cp, run, cs):
            for down in cs.downstream:
                heapq.heappush(heap, (stages[down].index, down))
    finish_if_done(ctx, cp, run)


def _evaluate(ctx: Context, cp: CompiledPipeline, run: RunState, cs: CompiledStage) -> bool:
    """Move a pending stage on if its rule decides; True when it became terminal."""
    if cs.local_needs is not None:  # the common case, without the general lookup per need
        states = run.stages
        outcomes = [OUTCOMES[states[n].status] for n in cs.local_needs]
    else:
        outcomes = [need_outcome(run, n, _target(run, cp, n)) for n in cs.needs]
    result = verdict(cs, outcomes)
    if result == "wait":
        return False
    caused = _causes(run, cs)
    if result != "ready":
        _end(
            ctx,
            run,
            cs.name,
            status=result,
            reason=f"trigger rule {cs.trigger_rule}: {result}",
            caused=caused,
        )
        return True
    env: dict[str, Any] | None = None  # only a condition or a guard reads it
    if cs.condition is not None:
        env = variables(run, cp)
        try:
            holds = cs.condition.evaluate(env) is True
        except ExpressionEvaluationError as exc:
            _end(
                ctx,
                run,
                cs.name,
                status="failed",
                reason=f"condition could not be evaluated: {exc}",
                caused=caused,
            )
            return True
        if not holds:
            _end(
                ctx,
                run,
                cs.name,
                status="skipped",
                reason=f"condition {cs.condition.source} is false",
                caused=caused,
            )
            return True
    if _guards.held(ctx, cp, run, cs, env=lambda: env or variables(run, cp), caused=caused):
        return False
    stage = run.stages[cs.name]
    stage.status = "ready"
    stage.caused_by = caused
    if cs.pool is not None:
        _pools.request(ctx, run, cs, stage.attempt + 1)
        ctx.decision(run, cs.name, "ready", f"waiting for a slot in pool {cs.pool}", caused)
    else:
        trigger_stage(ctx, cp, run, cs)
    return False


def _target(run: RunState, cp: CompiledPipeline, need: Any) -> str | None:
    if need.watermark is None:
        return None
    try:
        value = need.watermark.evaluate(variables(run, cp))
    except ExpressionEvaluationError:
        return None
    return str(value)


def _causes(run: RunState, cs: CompiledStage) -> list[str]:
    if not cs.needs:
        return list(run.caused_by)
    ids: list[str] = []
    for need in cs.needs:
        done_by = (
            run.stages[need.stage].done_by
            if need.pipeline is None
            else (run.ext.get(need.name) or [None, None, None, None])[3]
        )
        if done_by is not None and done_by not in ids:
            ids.append(done_by)
    return ids


def _end(
    ctx: Context, run: RunState, name: str, *, status: str, reason: str, caused: list[str]
) -> None:
    stage = run.stages[name]
    stage.status = status
    stage.reason = reason
    stage.caused_by = caused
    stage.done_by = caused[0] if caused else None
    ctx.decision(run, name, status, reason, caused)


def trigger_stage(ctx: Context, cp: CompiledPipeline, run: RunState, cs: CompiledStage) -> None:
    """Send the next attempt of a ready stage to its executor (once per attempt)."""
    stage = run.stages[cs.name]
    stage.attempt += 1
    stage.status = "triggered"
    stage.triggered_at = ctx.now_iso()
    links = upstream_links(run, cs)
    try:
        params = _render(cs, run, cp)
    except ExpressionEvaluationError as exc:
        stage.status = "failed"
        stage.reason = f"params could not be rendered: {exc}"
        ctx.decision(run, cs.name, "failed", stage.reason, stage.caused_by)
        ctx.attempt_span(run, cs.name, "failed", links)
        complete_stage(ctx, cp, run, cs.name, None)
        return
    key = f"{run.run_id}/{cs.name}/{stage.attempt}"
    span = attempt_span_id(run.run_id, cs.name, stage.attempt)
    extra = None
    if links:  # the worker links the upstream attempts too (fan-in)
        extra = {LINKS_ATTRIBUTE: ",".join(format_traceparent(run.trace_id, s) for s in links)}
    trigger = build(
        StageTrigger,
        extra,
        id=key,
        source=COORDINATOR_SOURCE,
        time=ctx.now,
        subject=run.run_id,
        traceparent=format_traceparent(run.trace_id, span),
        data=build(
            StageTriggerData,
            None,
            run_id=run.run_id,
            pipeline=run.pipeline,
            run_key=run.run_key,
            stage=cs.name,
            attempt=stage.attempt,
            params=params,
            idempotency_key=key,
            executor=cs.executor,
            caused_by=list(stage.caused_by),
            timeout_seconds=cs.timeout_seconds,
            deadline=None
            if cs.timeout_seconds is None
            else ctx.now + timedelta(seconds=cs.timeout_seconds),
        ),
    )
    ctx.publish(cs.executor.topic, run.base, trigger)
    ctx.decision(run, cs.name, "triggered", f"attempt {stage.attempt}", stage.caused_by)
    if cs.timeout_seconds is not None:
        ctx.set_timer(run, cs.name, stage.attempt, "timeout", cs.timeout_seconds)
    if cs.start_timeout_seconds is not None:
        ctx.set_timer(run, cs.name, stage.attempt, "start", cs.start_timeout_seconds)


def cancel_attempt(
    ctx: Context, cp: CompiledPipeline, run: RunState, name: str, *, cause: str, reason: str
) -> None:
    """Tell the executor of the stage's current (live) attempt to stop it.

    Same topic and key as the attempt's trigger, so a worker reads it after the trigger; and
    published before anything else the step decides for the stage (such as its retry).
    """
    cs = cp.stages[name]
    attempt = run.stages[name].attempt
    key = f"{run.run_id}/{name}/{attempt}"
    cancel = build(
        StageCancel,
        None,
        id=f"{key}|cancel",
        source=COORDINATOR_SOURCE,
        time=ctx.now,
        subject=run.run_id,
        traceparent=format_traceparent(run.trace_id, attempt_span_id(run.run_id, name, attempt)),
        data=build(
            StageCancelData,
            None,
            run_id=run.run_id,
            pipeline=run.pipeline,
            stage=name,
            attempt=attempt,
            idempotency_key=key,
            cause=cause,
            reason=reason,
        ),
    )
    ctx.publish(cs.executor.topic, run.base, cancel)


def upstream_links(run: RunState, cs: CompiledStage) -> tuple[str, ...]:
    """Span ids of the latest attempts of the stage's upstream stages in this run."""
    return tuple(
        attempt_span_id(run.run_id, need.stage, run.stages[need.stage].attempt)
        for need in cs.needs
        if need.pipeline is None and run.stages[need.stage].attempt > 0
    )


def _render(cs: CompiledStage, run: RunState, cp: CompiledPipeline) -> dict[str, Any]:
    if cs.params_template is None:
        return dict(cs.params)
    rendered = cs.params_template.render(variables(run, cp))
    assert isinstance(rendered, dict)  # compiled from the params mapping
    return rendered


def complete_stage(
    ctx: Context, cp: CompiledPipeline, run: RunState, name: str, done_by: str | None
) -> None:
    """Bookkeeping after a stage became terminal: timers, pool slot, subscribers, downstream."""
    stage: StageState = run.stages[name]
    stage.done_by = done_by
    ctx.cancel_timers(run, name)
    cs = cp.stages[name]
    if cs.pool is not None:
        _pools.release(ctx, run, cs, stage.attempt)
    _subscriptions.notify(ctx, run, name)
    settle(ctx, cp, run, list(cs.downstream))


def finish_if_done(ctx: Context, cp: CompiledPipeline, run: RunState) -> None:
    if run.status != "active":
        return
    # from the last stage back: later stages are the ones still open, so this stops early
    for stage in reversed(run.stages.values()):
        if stage.status not in TERMINAL:
            return
    failed = any(s.status in _FAILED for s in run.stages.values())
    finish_run(ctx, cp, run, "failed" if failed else "succeeded")


def finish_run(ctx: Context, cp: CompiledPipeline | None, run: RunState, outcome: str) -> None:
    """Record the outcome, announce it, and give back the run's slot of the pipeline's limit.

    ``cp`` None: the run's spec has no such pipeline any more; its slot keeper is gone too.
    """
    run.status = outcome
    ctx.cancel_timers(run)
    _retention.on_finished(ctx, run)
    ctx.run_record(run)
    ctx.run_span(run)
    finished = build(
        RunFinished,
        {"sckey": f"pipeline/{run.pipeline}"},
        id=f"{run.run_id}|finished",
        source=COORDINATOR_SOURCE,
        time=ctx.now,
        subject=run.run_id,
        data=build(
            RunFinishedData,
            None,
            run_id=run.run_id,
            pipeline=run.pipeline,
            run_key=run.run_key,
            outcome=outcome,
        ),
    )
    ctx.publish(None, f"pipeline/{run.pipeline}", finished)
    if cp is None:
        _limits.forget(ctx, run.pipeline, run.run_id)
    elif _quotas.limited(ctx, cp):
        _limits.release(ctx, cp, run.run_id)  # the run's slot, or its place in the queue


def new_stages(cp: CompiledPipeline) -> dict[str, StageState]:
    return {name: StageState() for name in cp.stages}
