"""Specs changed while runs are in flight: activating a version on a partition, and a run
whose spec differs from the stages it holds (see the core docstring for the rules)."""

from __future__ import annotations

from streamcoord.core import _pools, _subscriptions
from streamcoord.core._catalog import CompiledPipeline
from streamcoord.core._context import COORDINATOR_SOURCE, Context
from streamcoord.core._state import TERMINAL, RunState, StageState
from streamcoord.events.models import SpecsActivate
from streamcoord.events.partitioning import anchor_key

__all__ = ["SPEC_REMOVED", "activate", "adopt", "remove_stages", "reopen"]

SPEC_REMOVED = "spec_removed"
_UNFINISHED = frozenset({"active", "queued"})
_POOLED = frozenset({"ready", "triggered", "running"})
_LIVE = frozenset({"triggered", "running"})


def activate(ctx: Context, version: str) -> None:
    """Make ``version`` the one new runs of this partition use, then tell the other partitions.

    Runs that name no version followed the outgoing one; they are pinned to it first, so
    they keep it until they end.
    """
    target = ctx.catalogs.get(version)
    subject = f"partition/{ctx.state.partition}"
    if target is None:
        loaded = ", ".join(sorted(ctx.catalogs.versions))
        ctx.reject(
            "unknown_spec_version",
            f"spec version {version} is not loaded here (loaded:"
            f" {loaded}); load the specs of that version on every coordinator, then"
            " activate it again",
        )
        return
    _broadcast(ctx, version)
    previous = ctx.catalog.version
    if ctx.state.spec_version == version:
        ctx.note(
            subject, None, "ignored", f"spec version {version} is already active", [ctx.event.id]
        )
        return
    for run in ctx.state.runs():
        if run.spec_version is None and run.status in _UNFINISHED:
            ctx.state.run_for_update(run.base).spec_version = previous
    ctx.state.spec_version = version
    ctx.catalog = target
    ctx.note(
        subject,
        None,
        "spec_activated",
        f"spec version {version} is active for new runs"
        f" (was {previous}); runs already started keep theirs",
        [ctx.event.id],
    )


def _broadcast(ctx: Context, version: str) -> None:
    """Every partition keeps its own active version: forward the command to the others once."""
    extra = ctx.event.model_extra or {}
    partitions = ctx.state.partitions
    if partitions == 1 or extra.get("scbroadcast"):
        return
    for p in range(partitions):
        if p != ctx.state.partition:
            key = anchor_key("specs", p, partitions)
            ctx.publish(
                None,
                key,
                SpecsActivate(
                    id=f"{ctx.event.id}|p{p}",
                    source=COORDINATOR_SOURCE,
                    time=ctx.now,
                    data={"version": version},
                    sckey=key,
                    scbroadcast="1",
                ),
            )


def adopt(ctx: Context, cp: CompiledPipeline, run: RunState) -> bool:
    """Give ``run`` exactly the stages of ``cp`` when they differ; True when they did.

    Stages ``cp`` adds start pending; unfinished stages it lacks end ``cancelled`` with reason
    ``spec_removed`` (their pool slot, timers and subscribers settled as for a cancel) and stay
    in the run's record after the current ones. The caller settles the run afterwards.
    """
    if run.stages.keys() == cp.stages.keys():
        return False
    stages = {name: run.stages.get(name) or StageState() for name in cp.stages}
    for name, stage in run.stages.items():
        if name not in stages:
            stages[name] = stage
            if stage.status not in TERMINAL:
                _remove(ctx, run, name, stage, f"stage {name} is not in pipeline {cp.name}")
    run.stages = stages
    return True


def _remove(ctx: Context, run: RunState, name: str, stage: StageState, why: str) -> None:
    if stage.status in _LIVE:
        ctx.attempt_span(run, name, "cancelled", ())
    if stage.pool is not None and stage.status in _POOLED:
        # a ready stage waits with a request for its next attempt; later ones hold a slot
        attempt = stage.attempt + 1 if stage.status == "ready" else stage.attempt
        _pools.give_back(ctx, stage.pool, run.run_id, name, attempt)
    ctx.cancel_timers(run, name)
    stage.status = "cancelled"
    stage.reason = SPEC_REMOVED
    stage.done_by = ctx.event.id
    ctx.decision(
        run,
        name,
        "cancelled",
        f"{SPEC_REMOVED}: {why} of spec version {ctx.catalog_of(run).version}",
        [ctx.event.id],
    )
    _subscriptions.notify(ctx, run, name)


def remove_stages(ctx: Context, run: RunState, why: str) -> None:
    """End every unfinished stage of ``run`` as ``spec_removed`` (its pipeline is gone)."""
    for name, stage in run.stages.items():
        if stage.status not in TERMINAL:
            _remove(ctx, run, name, stage, why)


def reopen(cp: CompiledPipeline, run: RunState, name: str) -> None:
    """Before a manual retry of ``name`` in a run that just took new stages: what its failure
    decided downstream waits again, through stages the new spec added (which are pending)."""
    for down in cp.stages[name].downstream:
        stage = run.stages[down]
        if stage.status in {"upstream_failed", "skipped"}:
            stage.status = "pending"
            stage.reason = ""
        if stage.status == "pending":
            reopen(cp, run, down)
