"""A pipeline's ``max_active_runs`` over all partitions, kept by the owner of ``active/<name>``.

A new run of a limited pipeline starts ``queued`` and asks the owner for a slot (``acquire``).
The owner grants slots in request order (``grant``); over the limit it queues the request, or
answers ``deny`` (``skip``), or for ``cancel_oldest`` cancels its oldest holder and hands that
slot on once the holder gave it back, so the limit holds at every moment. A run gives its slot
back (``release``) when it finishes, whether it ran or was still queued; a grant that reaches a
run no longer queued is given back at once.

When the owner is the partition at hand, requests and answers are applied in the same step
instead of being routed: with one partition a run starts, queues or is skipped by the event
that created it, as before limits crossed partitions.

The owner keeps its books in ``pipe/<pipeline>``: ``active`` (holders, in grant order),
``waiting`` (queued requests, in request order), ``revoked`` (holders asked to make room) and
``seen`` (digests of the last routed requests, so a redelivered one is a no-op). A pipeline with
a quota policy goes through the same owner, which also keeps the quota's books (see
:mod:`._quotas`).
"""

from __future__ import annotations

from typing import Any

from streamcoord.core import _admission, _lifecycle, _quotas, _respec, _retention
from streamcoord.core._catalog import CompiledPipeline
from streamcoord.core._construction import build
from streamcoord.core._context import Context
from streamcoord.core._state import event_digest
from streamcoord.core._step import Violation
from streamcoord.events.internal import (
    LimitAcquire,
    LimitAcquireData,
    LimitDeny,
    LimitDenyData,
    LimitGrant,
    LimitRef,
    LimitRelease,
)
from streamcoord.events.models import RunCancel, RunCancelData, TimerFiredData
from streamcoord.events.partitioning import run_base

__all__ = [
    "ACQUIRE",
    "DENY",
    "GRANT",
    "RELEASE",
    "acquire",
    "forget",
    "handle_acquire",
    "handle_release",
    "on_acquire",
    "on_deny",
    "on_grant",
    "on_quota_timer",
    "on_release",
    "owned",
    "release",
]

ACQUIRE = LimitAcquire.TYPE
GRANT = LimitGrant.TYPE
DENY = LimitDeny.TYPE
RELEASE = LimitRelease.TYPE
_SEEN = 64


def _key(pipeline: str) -> str:
    return f"active/{pipeline}"


def _cause(ctx: Context) -> str:
    return f"{ctx.event.source} {ctx.event.id}"


# --- the run's side ------------------------------------------------------------------------------


def acquire(ctx: Context, cp: CompiledPipeline, run_id: str, *, force: bool = False) -> None:
    """Ask for a slot for ``run_id``; ``force`` takes one even above the limit."""
    data = build(LimitAcquireData, None, pipeline=cp.name, run_id=run_id, force=force)
    if ctx.owns(_key(cp.name)):
        handle_acquire(ctx, cp, data)
    else:
        ctx.route(_key(cp.name), ACQUIRE, f"acquire|{run_id}|{_cause(ctx)}", data)


def release(ctx: Context, cp: CompiledPipeline, run_id: str) -> None:
    """Give back the slot of ``run_id``, or withdraw its request."""
    data = build(LimitRef, None, pipeline=cp.name, run_id=run_id)
    if ctx.owns(_key(cp.name)):
        handle_release(ctx, cp, data)
        return
    ctx.route(_key(cp.name), RELEASE, f"release|{run_id}|{_cause(ctx)}", data)
    _hand_over(ctx, cp, run_id)


def _hand_over(ctx: Context, cp: CompiledPipeline, ended: str) -> None:
    """Runs this partition counted itself (before limits crossed partitions) go to the owner.

    Such a partition queued runs only while it had ``max_active_runs`` active ones, so one of
    those ending here is when its queue is handed over; its active runs are counted from then on.
    """
    pipe = ctx.state.misc(_lifecycle.pipe_key(cp.name))
    if pipe is None or not (pipe["active"] or pipe["waiting"]):
        return
    pipe = ctx.state.misc_for_update(_lifecycle.pipe_key(cp.name), pipe)
    active, waiting = pipe["active"], pipe["waiting"]
    pipe["active"], pipe["waiting"] = [], []
    for run_id in active:
        if run_id != ended:
            acquire(ctx, cp, run_id, force=True)
    for run_id in waiting:
        acquire(ctx, cp, run_id)


def on_grant(ctx: Context, cp: CompiledPipeline, data: LimitRef) -> None:
    run = ctx.state.run(run_base(data.run_id))
    if run is not None and run.run_id == data.run_id and run.status == "queued":
        # a queued run starts on its own spec version (the current one's when it lacks the
        # pipeline), aligned with it first
        run = ctx.state.run_for_update(run.base)
        own = ctx.pipeline_of(run) or cp
        _respec.adopt(ctx, own, run)
        _lifecycle.start_run(ctx, own, run)
    elif run is None or run.run_id != data.run_id or run.status != "active":
        # cancelled while the grant was on its way, or a grant repeated after a release
        ctx.note(data.run_id, None, "ignored", "max_active_runs slot no longer needed", [])
        release(ctx, cp, data.run_id)


def on_deny(ctx: Context, cp: CompiledPipeline, data: LimitRef) -> None:
    run = ctx.state.run(run_base(data.run_id))
    if run is None or run.run_id != data.run_id or run.status != "queued":
        ctx.note(data.run_id, None, "ignored", "skip for a run no longer queued", [])
        return
    run = ctx.state.run_for_update(run.base)
    run.status = "skipped"
    _retention.on_finished(ctx, run)
    ctx.run_record(run)
    policy = getattr(data, "policy", None)  # a max_active_runs deny has none on the wire
    quota = next((q for q in _quotas.quotas(ctx, cp) if q.name == policy), None)
    if quota is None:
        why = f"max_active_runs {cp.max_active_runs} reached"
        ctx.decision(run, None, "skipped", why, run.caused_by)
        return
    why = _quotas.reason(cp, quota)
    rejected = f"policy {quota.name}: {_quotas.REJECTED_CODE}: {why}"
    ctx.decision(run, None, "rejected", rejected, run.caused_by)
    ctx.decision(run, None, "skipped", why, run.caused_by)
    ctx.reject(_quotas.REJECTED_CODE, f"policy {quota.name}: {why}", policy=quota.name)


def forget(ctx: Context, pipeline: str, run_id: str) -> None:
    """Give back the slot of ``run_id`` of a pipeline its spec no longer has: nothing is admitted
    (no run of it can start); the books only stop counting it."""
    if not ctx.owns(_key(pipeline)):
        data = build(LimitRef, None, pipeline=pipeline, run_id=run_id)
        ctx.route(_key(pipeline), RELEASE, f"release|{run_id}|{_cause(ctx)}", data)
        return
    pipe = ctx.state.misc(_lifecycle.pipe_key(pipeline))
    if pipe is None:
        return
    pipe = ctx.state.misc_for_update(_lifecycle.pipe_key(pipeline), pipe)
    for name in ("active", "waiting", "revoked"):
        if run_id in pipe.get(name, ()):
            pipe[name].remove(run_id)


def owned(ctx: Context, cp: CompiledPipeline) -> bool:
    """Whether this partition keeps the pipeline's slots (and so knows why a run waits)."""
    return ctx.owns(_key(cp.name))


# --- the owner's side ----------------------------------------------------------------------------


def _books(ctx: Context, cp: CompiledPipeline) -> dict[str, Any]:
    pipe = ctx.state.misc_for_update(_lifecycle.pipe_key(cp.name), _lifecycle.new_pipe())
    pipe.setdefault("revoked", [])  # both added after version 1 of the record
    pipe.setdefault("seen", [])
    return pipe


def _first_time(ctx: Context, cp: CompiledPipeline) -> bool:
    """Whether the routed request at hand is new (and remember it): redelivery changes nothing."""
    pipe = _books(ctx, cp)
    digest = event_digest(_cause(ctx)).hex()
    if digest in pipe["seen"]:
        return False
    pipe["seen"] = [*pipe["seen"][-(_SEEN - 1) :], digest]
    return True


def on_acquire(ctx: Context, cp: CompiledPipeline, data: LimitAcquireData) -> None:
    """A routed ``acquire``."""
    if _first_time(ctx, cp):
        handle_acquire(ctx, cp, data)


def on_release(ctx: Context, cp: CompiledPipeline, data: LimitRef) -> None:
    """A routed ``release``."""
    if _first_time(ctx, cp):
        handle_release(ctx, cp, data)


def handle_acquire(ctx: Context, cp: CompiledPipeline, data: LimitAcquireData) -> None:
    pipe = _books(ctx, cp)
    run_id = data.run_id
    if run_id in pipe["active"] or run_id in pipe["waiting"]:
        return
    limit = cp.max_active_runs
    if pipe.get("quota_held") and not data.force:  # its window may have freed before the timer
        _admit_waiting(ctx, cp, pipe)
    full = [] if data.force else _quotas.full(ctx, cp, pipe)
    rejecting = [q for q in full if q.over_quota == "reject"]
    if rejecting:
        ctx.violations.append(
            Violation(
                rejecting[0].name,
                _quotas.REJECTED_CODE,
                _quotas.reason(cp, rejecting[0]),
                True,
            )
        )
        _answer(ctx, cp, DENY, run_id, policy=rejecting[0].name)
    elif full:  # behind the runs the quota holds already (they were admitted above if it freed)
        _quotas.queue(ctx, cp, pipe, run_id, full[0])
    elif data.force or limit is None or len(pipe["active"]) < limit:
        pipe["active"].append(run_id)
        if not data.force:
            _quotas.count(ctx, cp, pipe, run_id)
        _answer(ctx, cp, GRANT, run_id)
    elif cp.over_limit == "queue":
        pipe["waiting"].append(run_id)
    elif cp.over_limit == "skip":
        _answer(ctx, cp, DENY, run_id)
    else:
        _make_room(ctx, cp, pipe, run_id)


def _make_room(ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any], run_id: str) -> None:
    """cancel_oldest: the request waits for the slot of the oldest holder, which is cancelled."""
    pipe["waiting"].append(run_id)
    if len(pipe["revoked"]) >= len(pipe["waiting"]):
        return  # a holder asked to go earlier (that then ended by itself) will make room
    candidates = [r for r in pipe["active"] if r not in pipe["revoked"]]
    if candidates:
        pipe["revoked"].append(candidates[0])
        _revoke(ctx, cp, candidates[0], run_id)
    else:  # every holder is on its way out: the oldest waiting run gives way instead
        _revoke(ctx, cp, pipe["waiting"].pop(0), run_id)


def handle_release(ctx: Context, cp: CompiledPipeline, data: LimitRef) -> None:
    pipe = _books(ctx, cp)
    run_id = data.run_id
    for books in (pipe["active"], pipe["waiting"], pipe["revoked"]):
        if run_id in books:
            books.remove(run_id)
    _admit_waiting(ctx, cp, pipe)


def _admit_waiting(ctx: Context, cp: CompiledPipeline, pipe: dict[str, Any]) -> None:
    """Grant queued requests in order while the limit and the quotas have room."""
    limit = cp.max_active_runs
    while (
        pipe["waiting"]
        and (limit is None or len(pipe["active"]) < limit)
        and _quotas.room(ctx, cp, pipe)
    ):
        granted = pipe["waiting"].pop(0)
        pipe["active"].append(granted)
        _quotas.count(ctx, cp, pipe, granted)
        _answer(ctx, cp, GRANT, granted)
    if _quotas.quotas(ctx, cp) or pipe.get("quota_due"):  # has (or had) a quota
        _quotas.rearm(ctx, cp, pipe)


def on_quota_timer(ctx: Context, data: TimerFiredData) -> None:
    """A quota window freed: admit the runs waiting for it, in order."""
    pipeline = _quotas.timer_pipeline(data.timer_id)
    cp = ctx.catalog.pipelines.get(pipeline)
    pipe = ctx.state.misc(_lifecycle.pipe_key(pipeline))
    if cp is None or pipe is None or pipe.get("quota_due") != _quotas.iso(data.due):
        return  # moved or cleared since it was set
    pipe = _books(ctx, cp)
    pipe["quota_due"] = None  # fired: nothing to cancel
    _admit_waiting(ctx, cp, pipe)


def _answer(
    ctx: Context, cp: CompiledPipeline, type_: str, run_id: str, *, policy: str | None = None
) -> None:
    # a deny names the quota that refused the run; one of max_active_runs names none, and its
    # data stays what it always was on the wire
    quota = {} if policy is None else {"policy": policy}
    model = LimitDenyData if type_ == DENY else LimitRef
    data = build(model, None, pipeline=cp.name, run_id=run_id, **quota)
    if not ctx.owns(run_base(run_id)):
        name = type_.rsplit(".", 1)[1]
        ctx.route(run_base(run_id), type_, f"{name}|{run_id}|{_cause(ctx)}", data)
    elif type_ == GRANT:
        on_grant(ctx, cp, data)
    else:
        on_deny(ctx, cp, data)


def _revoke(ctx: Context, cp: CompiledPipeline, run_id: str, newer: str) -> None:
    reason = f"cancelled for {newer} (cancel_oldest)"
    if not ctx.owns(run_base(run_id)):
        ctx.route(
            run_base(run_id),
            RunCancel.TYPE,
            f"revoke|{run_id}|{_cause(ctx)}",
            build(RunCancelData, None, run_id=run_id, reason=reason),
        )
        return
    run = ctx.state.run(run_base(run_id))
    if run is not None and run.run_id == run_id and run.status in {"active", "queued"}:
        _admission.cancel_run(ctx, cp, ctx.state.run_for_update(run.base), reason)
    else:  # the books name a run that already ended here: its slot is free
        handle_release(ctx, cp, build(LimitRef, None, pipeline=cp.name, run_id=run_id))
