"""Events about stage attempts already triggered: their workers' reports, timers, manual retry
and cancel, pool grants and cross-pipeline outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streamcoord.core import _limits, _pools, _quotas, _subscriptions
from streamcoord.core._admission import cancel_run
from streamcoord.core._backoff import retry_delay
from streamcoord.core._catalog import CompiledPipeline
from streamcoord.core._context import Context
from streamcoord.core._guards import GUARD_TIMER
from streamcoord.core._lifecycle import (
    cancel_attempt,
    complete_stage,
    settle,
    trigger_stage,
    upstream_links,
)
from streamcoord.core._state import TERMINAL, RunState
from streamcoord.events.internal import PoolSlot

__all__ = [
    "on_cancel",
    "on_failed",
    "on_grant",
    "on_heartbeat",
    "on_outcome",
    "on_progress",
    "on_retry",
    "on_started",
    "on_succeeded",
    "on_timer",
]

_LIVE = frozenset({"triggered", "running"})
# timer purpose -> (the stage's reason, the cancel command's cause)
_TIMEOUTS = {
    "start": ("start timeout", "start_timeout"),
    "timeout": ("execution timeout", "execution_timeout"),
    "heartbeat": ("heartbeat timeout", "heartbeat_timeout"),
}
_TIMEOUT_REASONS = frozenset(reason for reason, _ in _TIMEOUTS.values())
# where a stage can be after the coordinator timed its current attempt out
_AFTER_TIMEOUT = frozenset({"timed_out", "retry_wait", "ready"})


def _attempt_ok(ctx: Context, run: RunState, name: str, attempt: int, what: str) -> bool:
    """False (with a note or a rejection) when the event is about another attempt, or about
    one the coordinator ended (timed out or cancelled): its executor was told to stop, and a
    late report of it must not change the run."""
    stage = run.stages[name]
    if attempt < stage.attempt:
        ctx.note(run.run_id, name, "ignored", f"{what} for superseded attempt {attempt}", [])
        return False
    if attempt > stage.attempt:
        ctx.reject(
            "unknown_attempt",
            f"{run.run_id} {name}: attempt {attempt} was never triggered"
            f" (current attempt {stage.attempt})",
        )
        return False
    if stage.status == "cancelled":
        ctx.note(
            run.run_id,
            name,
            "ignored",
            f"attempt_cancelled: {what} after the attempt was cancelled",
            [],
        )
        return False
    if stage.status in _AFTER_TIMEOUT and stage.reason in _TIMEOUT_REASONS:
        ctx.note(
            run.run_id, name, "ignored", f"attempt_timed_out: {what} after the {stage.reason}", []
        )
        return False
    return True


def on_started(ctx: Context, cp: CompiledPipeline, run: RunState, name: str, attempt: int) -> None:
    if not _attempt_ok(ctx, run, name, attempt, "started"):
        return
    stage = run.stages[name]
    if stage.status == "triggered":
        stage.status = "running"
        ctx.cancel_timer(run, name, attempt, "start")
        _arm_heartbeat(ctx, cp, run, name)
    elif stage.status in TERMINAL:
        ctx.note(run.run_id, name, "ignored", f"started after the stage {stage.status}", [])
    elif stage.status != "running":
        ctx.reject("illegal_transition", f"{run.run_id} {name}: started while {stage.status}")


def on_heartbeat(
    ctx: Context, cp: CompiledPipeline, run: RunState, name: str, attempt: int
) -> None:
    if not _attempt_ok(ctx, run, name, attempt, "heartbeat"):
        return
    stage = run.stages[name]
    if stage.status in _LIVE:
        if stage.status == "triggered":  # a heartbeat without started starts the attempt too
            stage.status = "running"
            ctx.cancel_timer(run, name, attempt, "start")
        _arm_heartbeat(ctx, cp, run, name)
    elif stage.status in TERMINAL:
        ctx.note(run.run_id, name, "ignored", f"heartbeat after the stage {stage.status}", [])
    else:
        ctx.reject("illegal_transition", f"{run.run_id} {name}: heartbeat while {stage.status}")


def _arm_heartbeat(ctx: Context, cp: CompiledPipeline, run: RunState, name: str) -> None:
    seconds = cp.stages[name].heartbeat_timeout_seconds
    if seconds is not None:
        ctx.set_timer(run, name, run.stages[name].attempt, "heartbeat", seconds)


def on_progress(
    ctx: Context,
    cp: CompiledPipeline,
    run: RunState,
    name: str,
    *,
    attempt: int,
    watermark: datetime | None,
) -> None:
    on_heartbeat(ctx, cp, run, name, attempt)
    stage = run.stages[name]
    if ctx.rejection is not None or watermark is None or stage.status not in _LIVE:
        return
    mark = watermark.isoformat()
    if stage.watermark is None or mark > stage.watermark:
        stage.watermark = mark
        stage.done_by = ctx.event.id
        _subscriptions.notify(ctx, run, name)
        settle(ctx, cp, run, list(cp.stages[name].downstream))


def on_succeeded(
    ctx: Context,
    cp: CompiledPipeline,
    run: RunState,
    name: str,
    *,
    attempt: int,
    outputs: dict[str, Any],
) -> None:
    if not _attempt_ok(ctx, run, name, attempt, "succeeded"):
        return
    stage = run.stages[name]
    if stage.status not in _LIVE:
        ctx.reject("illegal_transition", f"{run.run_id} {name}: succeeded while {stage.status}")
        return
    stage.status = "succeeded"
    stage.outputs = outputs
    ctx.attempt_span(run, name, "succeeded", upstream_links(run, cp.stages[name]))
    complete_stage(ctx, cp, run, name, ctx.event.id)


def on_failed(
    ctx: Context,
    cp: CompiledPipeline,
    run: RunState,
    name: str,
    *,
    attempt: int,
    error: str,
    retryable: bool,
) -> None:
    if not _attempt_ok(ctx, run, name, attempt, "failed"):
        return
    stage = run.stages[name]
    if stage.status not in _LIVE:
        ctx.reject("illegal_transition", f"{run.run_id} {name}: failed while {stage.status}")
        return
    _fail(ctx, cp, run, name, status="failed", error=error, retryable=retryable)


def _fail(
    ctx: Context,
    cp: CompiledPipeline,
    run: RunState,
    name: str,
    *,
    status: str,
    error: str,
    retryable: bool,
) -> None:
    stage = run.stages[name]
    cs = cp.stages[name]
    stage.reason = error
    ctx.cancel_timers(run, name)
    ctx.attempt_span(run, name, status, upstream_links(run, cs))
    if retryable and stage.attempt < cs.retries.max_attempts:
        stage.status = "retry_wait"
        if cs.pool is not None:
            _pools.release(ctx, run, cs, stage.attempt)
        delay = retry_delay(cs.retries.backoff, run.run_id, name, stage.attempt)
        ctx.set_timer(run, name, stage.attempt, "retry", delay)
        ctx.decision(run, name, "retry_wait", f"{error}; retry in {delay:.3f}s", [ctx.event.id])
        return
    stage.status = status
    why = error if retryable else f"{error} (not retryable)"
    ctx.decision(run, name, status, why, [ctx.event.id])
    complete_stage(ctx, cp, run, name, ctx.event.id)


def on_timer(ctx: Context, cp: CompiledPipeline, run: RunState, data: Any) -> None:
    timer = run.timers.get(data.timer_id)
    if timer is None or timer[0] != data.due.isoformat():
        ctx.note(run.run_id, data.stage, "ignored", f"timer {data.timer_id} is no longer set", [])
        return
    del run.timers[data.timer_id]
    name, purpose = timer[2], timer[1]
    if purpose == "retry":
        _retry_now(ctx, cp, run, name)
        return
    if purpose == GUARD_TIMER:  # a held stage: check its guards again
        settle(ctx, cp, run, [name])
        return
    # timers of an attempt are cancelled when it ends: this attempt is still live
    label, cause = _TIMEOUTS[purpose]
    cancel_attempt(ctx, cp, run, name, cause=cause, reason=label)
    _fail(ctx, cp, run, name, status="timed_out", error=label, retryable=True)


def _retry_now(ctx: Context, cp: CompiledPipeline, run: RunState, name: str) -> None:
    stage = run.stages[name]
    cs = cp.stages[name]
    stage.caused_by = [ctx.event.id]
    stage.status = "ready"
    if cs.pool is None:
        trigger_stage(ctx, cp, run, cs)
    else:
        _pools.request(ctx, run, cs, stage.attempt + 1)


def on_grant(ctx: Context, cp: CompiledPipeline, run: RunState, data: PoolSlot) -> None:
    stage = run.stages[data.stage]
    cs = cp.stages.get(data.stage)
    if (
        cs is not None
        and cs.pool == data.pool
        and stage.status == "ready"
        and stage.attempt + 1 == data.attempt
    ):
        trigger_stage(ctx, cp, run, cs)
        return
    ctx.note(run.run_id, data.stage, "ignored", "pool slot no longer needed", [])
    # the slot goes back to the pool that granted it, whatever the stage's spec says now
    _pools.give_back(ctx, data.pool, run.run_id, data.stage, data.attempt)


def on_retry(ctx: Context, cp: CompiledPipeline, run: RunState, name: str) -> None:
    """Manual retry of a failed stage; its upstream-failed and skipped dependents wait again."""
    stage = run.stages[name]
    if stage.status not in {"failed", "timed_out"}:
        ctx.reject(
            "illegal_transition",
            f"{run.run_id} {name}: retry needs a failed stage, it is {stage.status}",
        )
        return
    _reopen(cp, run, name)
    if run.status != "active":
        run.status = "active"
        ctx.run_record(run)
        if _quotas.limited(ctx, cp):
            # a manual retry re-activates the run even above the limit: someone asked for it
            _limits.acquire(ctx, cp, run.run_id, force=True)
    ctx.decision(run, name, "retry", "manual retry", [ctx.event.id])
    _retry_now(ctx, cp, run, name)


def _reopen(cp: CompiledPipeline, run: RunState, name: str) -> None:
    for down in cp.stages[name].downstream:
        stage = run.stages[down]
        if stage.status in {"upstream_failed", "skipped"}:
            stage.status = "pending"
            stage.reason = ""
            _reopen(cp, run, down)


def on_cancel(ctx: Context, cp: CompiledPipeline, run: RunState, reason: str) -> None:
    if run.status not in {"active", "queued"}:
        ctx.note(run.run_id, None, "ignored", f"cancel of a run already {run.status}", [])
        return
    cancel_run(ctx, cp, run, reason or "cancelled on request")


def on_outcome(ctx: Context, cp: CompiledPipeline, run: RunState, need: str, event: Any) -> None:
    extra = event.model_extra or {}
    data = event.data
    get = data.get if isinstance(data, dict) else lambda k: getattr(data, k)
    run.ext[need] = [get("outcome"), get("outputs") or {}, extra.get("scwatermark"), event.id]
    waiting = [cs.name for cs in cp.stages.values() if any(n.name == need for n in cs.needs)]
    if run.status == "active":
        settle(ctx, cp, run, waiting)
