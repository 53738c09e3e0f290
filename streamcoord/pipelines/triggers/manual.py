"""The manual trigger: runs requested through the API or CLI (``streamcoord.run.requested``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from streamcoord.events.models import RunRequested, RunRequestedData
from streamcoord.pipelines._base import SpecModel
from streamcoord.pipelines.triggers.kind import Handler, TriggerContext, TriggerKind, new_match

__all__ = ["KIND", "ManualTrigger"]


class ManualTrigger(SpecModel):
    """Runs requested through the API or CLI (``streamcoord.run.requested``)."""

    kind: Literal["manual"] = "manual"


class _ManualKind(TriggerKind[ManualTrigger]):
    name = "manual"
    model = ManualTrigger

    def handlers(self) -> Mapping[str, Handler]:
        return {RunRequested.TYPE: _on_requested}


def _on_requested(ctx: TriggerContext) -> None:
    data = ctx.data(RunRequestedData)
    if data is None or not ctx.has_pipeline(data.pipeline):
        return
    if not ctx.triggers(KIND.name, data.pipeline):
        ctx.reject(
            "manual_not_allowed",
            f"pipeline {data.pipeline!r} has no manual trigger;"
            " add `- kind: manual` to its triggers to allow requested runs",
        )
        return
    ctx.match(new_match(ctx, data.pipeline, data.run_key, params=data.params, rerun=True))


KIND = _ManualKind()
