"""Cross-pipeline needs: a run subscribes to a stage of another pipeline's run, which may live
on another partition; that partition answers with a routed ``StageOutcome`` now or later."""

from __future__ import annotations

from typing import Any

from streamcoord.core._catalog import CompiledPipeline
from streamcoord.core._construction import build
from streamcoord.core._context import COORDINATOR_SOURCE, Context
from streamcoord.core._expressions import ExpressionEvaluationError
from streamcoord.core._state import TERMINAL, RunState, run_id_of
from streamcoord.events.internal import NeedSubscribe, NeedSubscribeData
from streamcoord.events.models import StageOutcome, StageOutcomeData

__all__ = ["SUBSCRIBE", "handle_subscribe", "notify", "subscribe_needs"]

SUBSCRIBE = NeedSubscribe.TYPE


def subscribe_needs(ctx: Context, cp: CompiledPipeline, run: RunState) -> None:
    """Route one subscription per distinct cross-pipeline need of ``run``."""
    if not cp.has_external_needs:
        return
    seen: set[str] = set()
    for cs in cp.stages.values():
        for need in cs.needs:
            if need.pipeline is None or need.name in seen:
                continue
            seen.add(need.name)
            try:
                key = (
                    run.run_key
                    if need.run_key is None
                    else str(
                        need.run_key.evaluate(
                            {"run_key": run.run_key, "event": run.trigger, "params": run.params}
                        )
                    )
                )
            except ExpressionEvaluationError as exc:
                run.ext[need.name] = ["failed", {}, None, None]
                ctx.decision(run, cs.name, "need_failed", f"run key of {need.name}: {exc}", [])
                continue
            data = build(
                NeedSubscribeData,
                None,
                pipeline=need.pipeline,
                run_key=key,
                stage=need.stage,
                subscriber=run.run_id,
                reply=run.base,
                need=need.name,
            )
            ctx.route(
                f"{need.pipeline}/{key}", SUBSCRIBE, f"subscribe|{run.run_id}|{need.name}", data
            )


def handle_subscribe(ctx: Context, data: NeedSubscribeData) -> None:
    """Remember the subscriber; answer at once when the stage already has news."""
    base = f"{data.pipeline}/{data.run_key}"
    gone = ctx.state.expired_gen(base) if ctx.state.run(base) is None else None
    if gone is not None:
        _answer_expired(ctx, data, run_id_of(base, gone))
        return
    subs = ctx.state.misc_for_update(f"subs/{base}", {"v": 1, "subs": []})
    entry = [data.stage, data.subscriber, data.reply, data.need]
    if entry not in subs["subs"]:
        subs["subs"].append(entry)
    run = ctx.state.run(base)
    if run is not None:
        _answer(ctx, run, entry)


def notify(ctx: Context, run: RunState, stage: str) -> None:
    """Tell subscribers of ``stage`` about its outcome or watermark."""
    subs = ctx.state.misc(f"subs/{run.base}")
    for entry in subs["subs"] if subs else []:
        if entry[0] == stage:
            _answer(ctx, run, entry)


def _answer_expired(ctx: Context, data: NeedSubscribeData, run_id: str) -> None:
    """The upstream run left the state (retention): its stage's outcome is no longer known, so
    the answer is ``expired`` (counted as failed), not a subscription that would wait forever."""
    subscriber, stage = data.subscriber, data.stage
    ctx.note(
        subscriber,
        None,
        "need_expired",
        f"need {data.need}: upstream run {run_id} has expired; counted as failed",
        [],
    )
    event = StageOutcome(
        id=f"outcome|{run_id}|{stage}|expired|{subscriber}",
        source=COORDINATOR_SOURCE,
        time=ctx.now,
        subject=run_id,
        data=StageOutcomeData(
            run_id=run_id,
            pipeline=data.pipeline,
            run_key=data.run_key,
            stage=stage,
            outcome="expired",
        ),
        sckey=data.reply,
        sctarget=subscriber,
        scneed=data.need,
        scwatermark=None,
    )
    ctx.publish(None, data.reply, event)


def _answer(ctx: Context, run: RunState, entry: list[Any]) -> None:
    stage_name, subscriber, reply, need = entry
    stage = run.stages.get(stage_name)
    if stage is None or (stage.status not in TERMINAL and stage.watermark is None):
        return
    ident = f"outcome|{run.run_id}|{stage_name}|{stage.status}|{stage.watermark}|{subscriber}"
    event = StageOutcome(
        id=ident,
        source=COORDINATOR_SOURCE,
        time=ctx.now,
        subject=run.run_id,
        data=StageOutcomeData(
            run_id=run.run_id,
            pipeline=run.pipeline,
            run_key=run.run_key,
            stage=stage_name,
            outcome=stage.status,
            outputs=stage.outputs,
        ),
        sckey=reply,
        sctarget=subscriber,
        scneed=need,
        scwatermark=stage.watermark,
    )
    ctx.publish(None, reply, event)
