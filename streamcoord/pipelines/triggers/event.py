"""The event trigger: start or feed a run when a CloudEvent of a given type matches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from pydantic import Field

from streamcoord.pipelines._base import Expression, SpecModel
from streamcoord.pipelines.expressions import EVENT_VARIABLES, ExpressionEvaluationError
from streamcoord.pipelines.triggers.kind import (
    CompiledTrigger,
    TriggerContext,
    TriggerExpression,
    TriggerKind,
    new_match,
)

__all__ = ["KIND", "EventTrigger"]


class EventTrigger(SpecModel):
    """Start or feed a run when a CloudEvent matches."""

    kind: Literal["event"] = "event"
    type: str = Field(min_length=1, description="CloudEvents `type` to match exactly.")
    source: str | None = Field(None, description="Exact `source`, or a prefix ending in '*'.")
    subject: str | None = Field(None, description="Exact `subject`, or a prefix ending in '*'.")
    filter: Expression | None = Field(None, description="CEL over `event`; must be true.")


def prefix_ok(pattern: str | None, value: str | None) -> bool:
    """``value`` is ``pattern``, or starts with it when it ends in '*' (None matches anything)."""
    if pattern is None:
        return True
    if value is None:
        return False
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


class _EventKind(TriggerKind[EventTrigger]):
    name = "event"
    model = EventTrigger
    matches_events = True

    def expressions(self, trigger: EventTrigger) -> Iterator[TriggerExpression]:
        if trigger.filter is not None:
            yield "filter", trigger.filter, EVENT_VARIABLES

    def key(self, pipeline: str, trigger: EventTrigger) -> str:
        return trigger.type

    def match(self, ctx: TriggerContext, trigger: CompiledTrigger[EventTrigger]) -> None:
        spec, event = trigger.spec, ctx.event
        if not (prefix_ok(spec.source, event.source) and prefix_ok(spec.subject, event.subject)):
            return
        env = {"event": ctx.view}
        condition = trigger.expressions.get("filter")
        if condition is not None:
            try:
                if condition.evaluate(env) is not True:
                    return
            except ExpressionEvaluationError:
                return  # a filter that cannot be evaluated on this event does not match it
        run_key = ctx.run_key(trigger.pipeline, env)
        if run_key is not None:
            ctx.match(new_match(ctx, trigger.pipeline, run_key))


KIND = _EventKind()
