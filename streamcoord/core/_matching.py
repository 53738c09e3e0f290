"""Trigger matching: the core's side of the trigger kinds (:mod:`streamcoord.pipelines.triggers`).

The kinds decide which pipelines an event starts or feeds; :class:`TriggerScope` is the
:class:`~streamcoord.pipelines.triggers.kind.TriggerContext` they do it through, one per decision.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from streamcoord.core._admission import admit, match
from streamcoord.core._catalog import CompiledPipeline, CompiledTrigger
from streamcoord.core._context import Context
from streamcoord.core._expressions import ExpressionEvaluationError
from streamcoord.core._retention import expired_reason
from streamcoord.core._state import CoordinatorState, run_id_of
from streamcoord.events.internal import DataArrivalData, InternalData
from streamcoord.events.models import CloudEvent
from streamcoord.pipelines.triggers import kind_of, trigger_handlers
from streamcoord.pipelines.triggers.data import ARRIVAL
from streamcoord.pipelines.triggers.data import on_arrival as _count_arrival
from streamcoord.pipelines.triggers.kind import Handler, Match

__all__ = [
    "ARRIVAL",
    "TriggerScope",
    "data_of",
    "dedup_of",
    "event_view",
    "on_arrival",
    "on_external",
    "run_key_of",
    "trigger_event_handlers",
]

D = TypeVar("D", bound=BaseModel)


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


def run_key_of(ctx: Context, cp: CompiledPipeline, env: dict[str, Any]) -> str | None:
    try:
        return str(cp.run_key.evaluate(env))
    except ExpressionEvaluationError as exc:
        ctx.reject("run_key_error", f"pipeline {cp.name}: run key could not be computed: {exc}")
        return None


def data_of(ctx: Context, model: type[D]) -> D | None:
    """The event's data as ``model`` whether the codec typed it or left it a dict."""
    data = ctx.event.data
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        ctx.reject(
            "invalid_data",
            f"{ctx.event.type}: data does not validate: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}",
        )
        return None


class TriggerScope:
    """One decision as the trigger kinds see it (a ``TriggerContext``)."""

    __slots__ = ("_ctx", "_view")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._view: dict[str, Any] | None = None

    @property
    def event(self) -> CloudEvent:
        return self._ctx.event

    @property
    def view(self) -> dict[str, Any]:
        if self._view is None:
            self._view = event_view(self._ctx)
        return self._view

    @property
    def dedup(self) -> str:
        return dedup_of(self._ctx)

    @property
    def state(self) -> CoordinatorState:
        return self._ctx.state

    def data(self, model: type[D]) -> D | None:
        return data_of(self._ctx, model)

    def has_pipeline(self, name: str) -> bool:
        if name in self._ctx.catalog.pipelines:
            return True
        self._ctx.reject("unknown_pipeline", f"no pipeline named {name!r} is loaded")
        return False

    def triggers(self, kind: str, key: str) -> tuple[CompiledTrigger[Any], ...]:
        return self._ctx.catalog.triggers(kind, key)

    def run_key(self, pipeline: str, env: dict[str, Any]) -> str | None:
        return run_key_of(self._ctx, self._ctx.catalog.pipelines[pipeline], env)

    def match(self, m: Match) -> None:
        match(self._ctx, self._ctx.catalog.pipelines[m.pipeline], m)

    def admit(self, m: Match) -> None:
        admit(self._ctx, self._ctx.catalog.pipelines[m.pipeline], m)

    def owns(self, key: str) -> bool:
        return self._ctx.owns(key)

    def route(self, key: str, type_: str, ident: str, data: InternalData) -> None:
        self._ctx.route(key, type_, ident, data)

    def reject(self, code: str, reason: str) -> None:
        self._ctx.reject(code, reason)

    def note(
        self, run_id: str, stage: str | None, kind: str, reason: str, caused: list[str]
    ) -> None:
        self._ctx.note(run_id, stage, kind, reason, caused)

    def expired(self, base: str, caused: list[str]) -> bool:
        gone = self._ctx.state.expired_gen(base)
        if gone is None:
            return False
        self.note(
            run_id_of(base, gone), None, "ignored", expired_reason(self._ctx, base, gone), caused
        )
        return True


def on_external(ctx: Context, triggers: tuple[CompiledTrigger[Any], ...]) -> None:
    """Offer an event to every trigger indexed under its type, in spec order."""
    scope = TriggerScope(ctx)
    for trigger in triggers:
        kind_of(trigger.spec).match(scope, trigger)


def on_arrival(ctx: Context, trigger: CompiledTrigger[Any], data: DataArrivalData) -> None:
    """Count an arrival routed here for ``trigger`` (a data trigger)."""
    _count_arrival(TriggerScope(ctx), trigger.spec, data)


def _decided_by(handler: Handler) -> Callable[[Context], None]:
    return lambda ctx: handler(TriggerScope(ctx))


def trigger_event_handlers() -> dict[str, Callable[[Context], None]]:
    """The handlers of the events trigger kinds decide themselves, taking a :class:`Context`."""
    return {type_: _decided_by(handler) for type_, handler in trigger_handlers().items()}
