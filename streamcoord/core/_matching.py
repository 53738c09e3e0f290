"""Trigger matching: which pipelines an event starts or feeds, and with which run key."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

from streamcoord.core._admission import admit, match
from streamcoord.core._catalog import CompiledPipeline, CompiledTrigger
from streamcoord.core._context import Context
from streamcoord.core._expressions import ExpressionEvaluationError
from streamcoord.core._retention import expired_reason
from streamcoord.core._state import run_id_of
from streamcoord.spec.models import DataArrivalTrigger, EventTrigger

__all__ = ["ARRIVAL", "dedup_of", "event_view", "on_arrival", "on_external", "run_key_of"]

ARRIVAL = "streamcoord.data.arrival"


def dedup_of(ctx: Context) -> str:
    return f"{ctx.event.source} {ctx.event.id}"


def event_view(ctx: Context) -> dict[str, Any]:
    """The event as CEL and templates see it: its JSON form. Binary data is its text when it is
    UTF-8, else ``data_base64`` as in the CloudEvents JSON format."""
    event = ctx.event
    if not isinstance(event.data, bytes):
        return event.model_dump(mode="json", exclude={"sckey"}, exclude_none=True)
    view = event.model_dump(mode="json", exclude={"sckey", "data"}, exclude_none=True)
    try:
        view["data"] = event.data.decode()
    except UnicodeDecodeError:
        view["data_base64"] = base64.b64encode(event.data).decode()
    return view


def run_key_of(
    ctx: Context, cp: CompiledPipeline, env: dict[str, Any]
) -> str | None:
    try:
        return str(cp.run_key.evaluate(env))
    except ExpressionEvaluationError as exc:
        ctx.reject("run_key_error", f"pipeline {cp.name}: run key could not be computed: {exc}")
        return None


def _prefix_ok(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return True
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def on_external(ctx: Context, triggers: tuple[CompiledTrigger, ...]) -> None:
    """Offer an event to every trigger indexed under its type, in spec order."""
    view = event_view(ctx)
    for ct in triggers:
        cp = ctx.catalog.pipelines[ct.pipeline]
        if isinstance(ct.spec, EventTrigger):
            _event_trigger(ctx, cp, ct, ct.spec, view)
        else:  # only event and data triggers are indexed by type
            assert isinstance(ct.spec, DataArrivalTrigger)
            _arrival_trigger(ctx, cp, ct, ct.spec, view)


def _event_trigger(
    ctx: Context, cp: CompiledPipeline, ct: CompiledTrigger, spec: EventTrigger,
    view: dict[str, Any],
) -> None:
    if not (_prefix_ok(spec.source, ctx.event.source) and _prefix_ok(spec.subject,
                                                                      ctx.event.subject)):
        return
    env = {"event": view}
    if ct.filter is not None:
        try:
            if ct.filter.evaluate(env) is not True:
                return
        except ExpressionEvaluationError:
            return  # a filter that cannot be evaluated on this event does not match it
    run_key = run_key_of(ctx, cp, env)
    if run_key is not None:
        match(ctx, cp, {"pipeline": cp.name, "run_key": run_key, "trigger": view,
                        "caused": [ctx.event.id], "params": {}, "rerun": False,
                        "dedup": dedup_of(ctx)})


def _arrival_trigger(
    ctx: Context, cp: CompiledPipeline, ct: CompiledTrigger, spec: DataArrivalTrigger,
    view: dict[str, Any],
) -> None:
    env = {"event": view}
    assert ct.dataset is not None  # compiled for data triggers
    assert ct.partition is not None
    try:
        dataset = str(ct.dataset.evaluate(env))
        partition = str(ct.partition.evaluate(env))
        when = None if ct.event_time is None else _time(ct.event_time.evaluate(env))
    except (ExpressionEvaluationError, ValueError) as exc:  # ValueError: not a timestamp
        ctx.reject("arrival_error", f"pipeline {cp.name}: arrival not understood: {exc}")
        return
    if dataset not in spec.datasets:
        return
    run_key = run_key_of(ctx, cp, env)
    if run_key is None or _late(ctx, ct, spec, when, f"{cp.name}/{run_key}"):
        return
    data = {"pipeline": cp.name, "trigger": ct.index, "run_key": run_key, "dataset": dataset,
            "partition": partition, "event": view, "dedup": dedup_of(ctx)}
    base = f"{cp.name}/{run_key}"
    if ctx.owns(base):
        on_arrival(ctx, data)
    else:
        ctx.route(base, ARRIVAL, f"arrival|{cp.name}|{ct.index}|{dedup_of(ctx)}", data)


def _time(value: Any) -> datetime:
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"event time {value!r} is not RFC 3339") from exc
    if when.tzinfo is None:  # it could not be compared with the watermark
        raise ValueError(f"event time {value!r} has no UTC offset (RFC 3339 needs one)")
    return when


def _late(
    ctx: Context, ct: CompiledTrigger, spec: DataArrivalTrigger, when: datetime | None,
    run_id: str,
) -> bool:
    """Track the watermark (max event time seen here); True when ``when`` is too late."""
    if when is None:
        return False
    wm = ctx.state.misc_for_update(f"wm/{ct.pipeline}", {"v": 1, "marks": {}, "late": []})
    slot = str(ct.index)
    mark = wm["marks"].get(slot)
    if mark is not None:
        limit = datetime.fromisoformat(mark) - timedelta(seconds=spec.allowed_lateness_seconds)
        if when < limit:
            wm["late"] = [*wm["late"][-99:], ctx.event.id]
            ctx.note(run_id, None, "late", f"arrival at {when.isoformat()} is before"
                     f" watermark {mark} minus lateness", [ctx.event.id])
            return True
    if mark is None or when > datetime.fromisoformat(mark):
        wm["marks"][slot] = when.isoformat()
    return False


def on_arrival(ctx: Context, data: dict[str, Any]) -> None:
    """Count an arrival for its run key; admit the run once every dataset is complete."""
    cp = ctx.catalog.pipelines[data["pipeline"]]
    spec = cp.triggers[data["trigger"]]
    assert isinstance(spec, DataArrivalTrigger)  # arrivals are only made for data triggers
    key = f"arr/{cp.name}/{data['run_key']}"
    base = key[4:]
    gone = ctx.state.expired_gen(base) if ctx.state.misc(key) is None else None
    if gone is not None:  # counting would start over and hold a key nobody clears
        ctx.note(run_id_of(base, gone), None, "ignored", expired_reason(ctx, base, gone),
                 [data["event"]["id"]])
        return
    arr = ctx.state.misc_for_update(key, {"v": 1, "sets": {}, "ids": [], "done": False})
    if arr["done"]:
        return
    parts = arr["sets"].setdefault(data["dataset"], [])
    if data["partition"] not in parts:
        parts.append(data["partition"])
    event_id = data["event"]["id"]
    if event_id not in arr["ids"]:
        arr["ids"].append(event_id)
    if all(len(arr["sets"].get(d, [])) >= spec.partitions_per_run for d in spec.datasets):
        arr["done"] = True
        admit(ctx, cp, {"pipeline": cp.name, "run_key": data["run_key"], "trigger": data["event"],
                        "caused": list(arr["ids"]), "params": {}, "rerun": False,
                        "dedup": data["dedup"]})
