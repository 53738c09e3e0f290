"""From a trigger match to a run: routing to the owning partition, folding into an existing run,
pause holds, generations, and asking for a slot of the pipeline's limit on active runs."""

from __future__ import annotations

from streamcoord.core import _limits, _pools, _quotas, _respec, _retention
from streamcoord.core._audit import principal_extra, principal_of
from streamcoord.core._catalog import CompiledPipeline
from streamcoord.core._construction import build
from streamcoord.core._context import COORDINATOR_SOURCE, Context
from streamcoord.core._lifecycle import (
    cancel_attempt,
    finish_run,
    new_pipe,
    new_stages,
    pipe_key,
    start_run,
    upstream_links,
)
from streamcoord.core._state import TERMINAL, RunState, event_digest, run_id_of
from streamcoord.core._tracing import parse_traceparent, run_trace_id
from streamcoord.events.internal import RunMatch, RunMatchData
from streamcoord.events.models import CloudEvent, PipelineRef
from streamcoord.events.partitioning import anchor_key

__all__ = ["MATCH", "Match", "admit", "cancel_run", "drop_run", "match", "pause", "resume"]

MATCH = RunMatch.TYPE
_POOLED = frozenset({"ready", "triggered", "running"})
_LIVE = frozenset({"triggered", "running"})

Match = RunMatchData


def match(ctx: Context, cp: CompiledPipeline, m: Match) -> None:
    """Admit ``m`` here, or route it to the partition that owns its run."""
    base = f"{cp.name}/{m.run_key}"
    if ctx.owns(base):
        admit(ctx, cp, m)
    else:
        ctx.route(base, MATCH, f"match|{cp.name}|{m.dedup}", m)


def admit(ctx: Context, cp: CompiledPipeline, m: Match) -> None:
    """Create a run for the match, fold it into the active run, or hold it while paused."""
    base = f"{cp.name}/{m.run_key}"
    pipe = ctx.state.misc(pipe_key(cp.name))
    if pipe is not None and pipe["paused"]:
        _hold(ctx, cp, m)
        return
    run = ctx.state.run(base)
    digest = event_digest(m.dedup)
    if run is not None and run.has_seen(digest):
        return
    if run is not None and run.status in {"active", "queued"}:
        run = ctx.state.run_for_update(base)
        run.remember(digest)
        run.caused_by.extend(c for c in m.caused if c not in run.caused_by)
        ctx.decision(run, None, "folded", "matched an active run", m.caused)
        return
    if run is not None and not m.rerun:
        ctx.note(run.run_id, None, "ignored", f"run already {run.status}", m.caused)
        return
    gone = ctx.state.expired_gen(base) if run is None else None
    if gone is not None and not m.rerun:
        ctx.note(
            run_id_of(base, gone),
            None,
            "ignored",
            _retention.expired_reason(ctx, base, gone),
            m.caused,
        )
        return
    _create(ctx, cp, m, run, digest)


def _hold(ctx: Context, cp: CompiledPipeline, m: Match) -> None:
    pipe = ctx.state.misc_for_update(pipe_key(cp.name), new_pipe())
    if all(h["dedup"] != m.dedup for h in pipe["held"]):
        pipe["held"].append(m.model_dump())  # the state is JSON
        ctx.note(f"{cp.name}/{m.run_key}", None, "held", "pipeline is paused", m.caused)


def _create(
    ctx: Context, cp: CompiledPipeline, m: Match, previous: RunState | None, digest: bytes
) -> None:
    if previous is not None:
        gen = previous.gen
    else:  # after expiry the generation goes on from the marker: run ids are never reused
        gen = ctx.state.expired_gen(f"{cp.name}/{m.run_key}") or 0
    run = RunState(cp.name, str(m.run_key), gen + 1)
    if previous is not None:
        run.seen = previous.seen  # a replayed request for an older generation stays a no-op
    run.trigger = m.trigger
    _trace(ctx, run)
    run.caused_by = list(m.caused)
    run.params = dict(m.params)
    run.stages = new_stages(cp)
    run.spec_version = ctx.state.spec_version  # kept until the run ends (None: the default)
    run.principal = principal_of(ctx.event)
    run.remember(digest)
    ctx.state.put_run(run)
    if not _quotas.limited(ctx, cp):
        start_run(ctx, cp, run)
        return
    run.status = "queued"  # until the pipeline's slot keeper answers (at once when it is here)
    _limits.acquire(ctx, cp, run.run_id)
    if run.status == "queued":
        ctx.run_record(run)
        ctx.decision(run, None, "queued", _queued_reason(ctx, cp, run.run_id), run.caused_by)


def _queued_reason(ctx: Context, cp: CompiledPipeline, run_id: str) -> str:
    limit = cp.max_active_runs
    if not _limits.owned(ctx, cp):
        quotas = [q.name for q in _quotas.quotas(ctx, cp)]
        what = [f"max_active_runs {limit}"] if limit is not None else []
        what += [f"quota {', '.join(quotas)}"] if quotas else []
        return f"waiting for a slot of {' and '.join(what)}"
    held = _quotas.held_reason(ctx.state.misc(pipe_key(cp.name)), run_id)
    return held if held is not None else f"max_active_runs {limit} reached"


def _trace(ctx: Context, run: RunState) -> None:
    """The run joins the trace of the event that created it (a new trace when it had none)."""
    traceparent = run.trigger.get("traceparent")
    run.trace_id = run_trace_id(run.run_id, traceparent)
    parsed = parse_traceparent(traceparent)
    run.parent_span = None if parsed is None else parsed[1]
    run.created_at = ctx.now_iso()


def cancel_run(ctx: Context, cp: CompiledPipeline, run: RunState, reason: str) -> None:
    """Cancel every unfinished stage (giving back pool slots) and finish the run as cancelled."""
    _respec.adopt(ctx, cp, run)
    for name, stage in run.stages.items():
        if stage.status in TERMINAL:
            continue
        cs = cp.stages[name]
        if stage.status in _LIVE:
            cancel_attempt(ctx, cp, run, name, cause="run_cancelled", reason=reason)
            ctx.attempt_span(run, name, "cancelled", upstream_links(run, cs))
        if cs.pool is not None and stage.status in _POOLED:
            # a ready stage waits with a request for its next attempt; later ones hold a slot
            attempt = stage.attempt + 1 if stage.status == "ready" else stage.attempt
            _pools.release(ctx, run, cs, attempt)
        stage.status = "cancelled"
        stage.reason = reason
    ctx.decision(run, None, "cancelled", reason, [ctx.event.id])
    finish_run(ctx, cp, run, "cancelled")


def drop_run(ctx: Context, run: RunState) -> None:
    """End an unfinished run whose spec lost its pipeline: ``cancelled``, reason spec_removed."""
    why = f"pipeline {run.pipeline} is not in spec version {ctx.catalog_of(run).version}"
    _respec.remove_stages(ctx, run, why)
    ctx.decision(run, None, "cancelled", f"{_respec.SPEC_REMOVED}: {why}", [ctx.event.id])
    finish_run(ctx, None, run, "cancelled")


def pause(ctx: Context, cp: CompiledPipeline) -> None:
    pipe = ctx.state.misc_for_update(pipe_key(cp.name), new_pipe())
    pipe["paused"] = True
    _broadcast(ctx, cp)


def resume(ctx: Context, cp: CompiledPipeline) -> None:
    """Unpause and admit the held matches in arrival order."""
    pipe = ctx.state.misc(pipe_key(cp.name))
    _broadcast(ctx, cp)
    if pipe is None or not pipe["paused"]:
        return
    pipe = ctx.state.misc_for_update(pipe_key(cp.name), pipe)
    pipe["paused"] = False
    held, pipe["held"] = pipe["held"], []
    for m in held:  # held by this partition: trusted
        admit(ctx, cp, RunMatchData.model_construct(**m))


def _broadcast(ctx: Context, cp: CompiledPipeline) -> None:
    """Pause flags live on every partition: forward the command to all the others once."""
    extra = ctx.event.model_extra or {}
    if ctx.state.partitions == 1 or extra.get("scbroadcast"):
        return
    for p in range(ctx.state.partitions):
        if p == ctx.state.partition:
            continue
        key = anchor_key(f"pipeline/{cp.name}", p, ctx.state.partitions)
        # The command's data model in an envelope of no event class: encoded (attribute order)
        # as forwarded commands always were.
        event = CloudEvent(
            id=f"{ctx.event.id}|p{p}",
            source=COORDINATOR_SOURCE,
            type=ctx.event.type,
            time=ctx.now,
            data=build(PipelineRef, None, pipeline=cp.name),
            sckey=key,
            scbroadcast="1",
            **principal_extra(ctx.event),
        )
        ctx.publish(None, key, event)
