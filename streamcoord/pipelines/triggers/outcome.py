"""The pipeline-outcome trigger: a run starts when another pipeline's run ends a given way."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import Literal

from pydantic import Field

from streamcoord.events.models import RunFinished, RunFinishedData
from streamcoord.pipelines._base import Name, SpecModel
from streamcoord.pipelines.triggers.kind import (
    Finding,
    Handler,
    TriggerContext,
    TriggerKind,
    did_you_mean,
    new_match,
)

__all__ = ["KIND", "PipelineOutcomeTrigger", "RunOutcome"]

RunOutcome = Literal["succeeded", "failed", "cancelled"]


def _default_outcomes() -> list[RunOutcome]:
    # A named function, not a lambda, so the element type is RunOutcome and not str.
    return ["succeeded"]


class PipelineOutcomeTrigger(SpecModel):
    """Start a run when another pipeline's run ends with one of ``outcomes``."""

    kind: Literal["pipeline"] = "pipeline"
    pipeline: Name
    outcomes: list[RunOutcome] = Field(default_factory=_default_outcomes)


class _OutcomeKind(TriggerKind[PipelineOutcomeTrigger]):
    name = "pipeline"
    model = PipelineOutcomeTrigger

    def findings(
        self, trigger: PipelineOutcomeTrigger, pipelines: Collection[str]
    ) -> Iterator[Finding]:
        if trigger.pipeline not in pipelines:
            hint = did_you_mean(trigger.pipeline, pipelines)
            yield Finding(("pipeline",), f"unknown pipeline {trigger.pipeline!r}", hint)

    def key(self, pipeline: str, trigger: PipelineOutcomeTrigger) -> str:
        return trigger.pipeline  # the upstream: its runs' ends are what this trigger follows

    def handlers(self) -> Mapping[str, Handler]:
        return {RunFinished.TYPE: _on_finished}


def _on_finished(ctx: TriggerContext) -> None:
    data = ctx.data(RunFinishedData)
    if data is None:
        return
    for trigger in ctx.triggers(KIND.name, data.pipeline):
        if data.outcome not in trigger.spec.outcomes:
            continue
        run_key = ctx.run_key(trigger.pipeline, {"event": ctx.view})
        if run_key is not None:
            ctx.match(new_match(ctx, trigger.pipeline, run_key))


KIND = _OutcomeKind()
