"""The data-arrival trigger: a run starts once every expected partition of every dataset landed.

Arrivals are counted per run key on the partition that owns the run: an arrival matched
elsewhere travels there as an internal ``streamcoord.data.arrival`` event. Each trigger keeps a
watermark (the latest event time seen on this partition); arrivals older than it minus the
allowed lateness are noted as late and not counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from streamcoord.events.internal import DataArrival, DataArrivalData, RunMatchData
from streamcoord.pipelines._base import Expression, SpecModel
from streamcoord.pipelines.expressions import EVENT_VARIABLES, ExpressionEvaluationError
from streamcoord.pipelines.triggers.kind import (
    CompiledTrigger,
    TriggerContext,
    TriggerExpression,
    TriggerKind,
)

__all__ = ["ARRIVAL", "KIND", "DataArrivalTrigger", "on_arrival"]

#: The internal event an arrival travels in to the partition that owns its run.
ARRIVAL = DataArrival.TYPE


class DataArrivalTrigger(SpecModel):
    """Start a run when every expected partition of every dataset has landed for its run key."""

    kind: Literal["data"] = "data"
    type: str = Field("dataset.landed", min_length=1, description="CloudEvents type of arrivals.")
    datasets: list[str] = Field(min_length=1)
    dataset: Expression = Field("event.data.dataset", description="CEL: the dataset name.")
    partition: Expression = Field("event.data.partition", description="CEL: the partition id.")
    partitions_per_run: int = Field(
        1, ge=1, description="Distinct partitions of each dataset that make a run key complete."
    )
    event_time: Expression | None = Field(
        None, description="CEL: the arrival's event time (RFC 3339), for the watermark."
    )
    allowed_lateness_seconds: float = Field(
        0.0,
        ge=0,
        description="Arrivals older than the watermark minus this are late and not counted.",
    )


class _DataKind(TriggerKind[DataArrivalTrigger]):
    name = "data"
    model = DataArrivalTrigger
    matches_events = True

    def expressions(self, trigger: DataArrivalTrigger) -> Iterator[TriggerExpression]:
        yield "dataset", trigger.dataset, EVENT_VARIABLES
        yield "partition", trigger.partition, EVENT_VARIABLES
        if trigger.event_time is not None:
            yield "event_time", trigger.event_time, EVENT_VARIABLES

    def key(self, pipeline: str, trigger: DataArrivalTrigger) -> str:
        return trigger.type

    def match(self, ctx: TriggerContext, trigger: CompiledTrigger[DataArrivalTrigger]) -> None:
        spec, compiled, pipeline = trigger.spec, trigger.expressions, trigger.pipeline
        env = {"event": ctx.view}
        when_of = compiled.get("event_time")
        try:
            dataset = str(compiled["dataset"].evaluate(env))
            partition = str(compiled["partition"].evaluate(env))
            when = None if when_of is None else _time(when_of.evaluate(env))
        except (ExpressionEvaluationError, ValueError) as exc:  # ValueError: not a timestamp
            ctx.reject("arrival_error", f"pipeline {pipeline}: arrival not understood: {exc}")
            return
        if dataset not in spec.datasets:
            return
        run_key = ctx.run_key(pipeline, env)
        if run_key is None or _late(ctx, trigger, when, f"{pipeline}/{run_key}"):
            return
        data = DataArrivalData.model_construct(
            pipeline=pipeline,
            trigger=trigger.index,
            run_key=run_key,
            dataset=dataset,
            partition=partition,
            event=ctx.view,
            dedup=ctx.dedup,
        )
        base = f"{pipeline}/{run_key}"
        if ctx.owns(base):
            on_arrival(ctx, spec, data)
        else:
            ctx.route(base, ARRIVAL, f"arrival|{pipeline}|{trigger.index}|{ctx.dedup}", data)


def _time(value: Any) -> datetime:
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"event time {value!r} is not RFC 3339") from exc
    if when.tzinfo is None:  # it could not be compared with the watermark
        raise ValueError(f"event time {value!r} has no UTC offset (RFC 3339 needs one)")
    return when


def _late(
    ctx: TriggerContext,
    trigger: CompiledTrigger[DataArrivalTrigger],
    when: datetime | None,
    run_id: str,
) -> bool:
    """Track the watermark (max event time seen here); True when ``when`` is too late."""
    if when is None:
        return False
    wm = ctx.state.misc_for_update(f"wm/{trigger.pipeline}", {"v": 1, "marks": {}, "late": []})
    slot = str(trigger.index)
    mark = wm["marks"].get(slot)
    if mark is not None:
        lateness = timedelta(seconds=trigger.spec.allowed_lateness_seconds)
        if when < datetime.fromisoformat(mark) - lateness:
            wm["late"] = [*wm["late"][-99:], ctx.event.id]
            ctx.note(
                run_id,
                None,
                "late",
                f"arrival at {when.isoformat()} is before watermark {mark} minus lateness",
                [ctx.event.id],
            )
            return True
    if mark is None or when > datetime.fromisoformat(mark):
        wm["marks"][slot] = when.isoformat()
    return False


def on_arrival(ctx: TriggerContext, spec: DataArrivalTrigger, data: DataArrivalData) -> None:
    """Count an arrival for its run key; admit the run once every dataset is complete."""
    pipeline, run_key = data.pipeline, data.run_key
    key = f"arr/{pipeline}/{run_key}"
    if ctx.state.misc(key) is None and ctx.expired(key[4:], [data.event["id"]]):
        return  # counting would start over and hold a key nobody clears
    arr = ctx.state.misc_for_update(key, {"v": 1, "sets": {}, "ids": [], "done": False})
    if arr["done"]:
        return
    parts = arr["sets"].setdefault(data.dataset, [])
    if data.partition not in parts:
        parts.append(data.partition)
    event_id = data.event["id"]
    if event_id not in arr["ids"]:
        arr["ids"].append(event_id)
    if all(len(arr["sets"].get(d, [])) >= spec.partitions_per_run for d in spec.datasets):
        arr["done"] = True
        ctx.admit(
            RunMatchData.model_construct(
                pipeline=pipeline,
                run_key=run_key,
                trigger=data.event,
                caused=list(arr["ids"]),
                params={},
                rerun=False,
                dedup=data.dedup,
            )
        )


KIND = _DataKind()
