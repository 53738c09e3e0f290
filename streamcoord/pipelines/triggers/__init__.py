"""Trigger kinds as plug-ins: one module per kind, and this registry of them.

Each kind module (:mod:`.event`, :mod:`.data`, :mod:`.schedule`, :mod:`.outcome`,
:mod:`.manual`) owns its spec model, its checks, its compiled form and its matching; the schedule
kind also owns the pure half of its source of ticks. :data:`KINDS` is the one list the spec
models, validation, the catalog and the core's decisions read; :data:`Trigger` is the union of
the kinds' models that a pipeline's ``triggers:`` holds. Adding a kind: see
``docs/contributing.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from streamcoord.pipelines.triggers import data, event, manual, outcome, schedule
from streamcoord.pipelines.triggers.data import DataArrivalTrigger
from streamcoord.pipelines.triggers.event import EventTrigger
from streamcoord.pipelines.triggers.kind import Handler, TriggerKind
from streamcoord.pipelines.triggers.manual import ManualTrigger
from streamcoord.pipelines.triggers.outcome import PipelineOutcomeTrigger
from streamcoord.pipelines.triggers.schedule import ScheduleTrigger

__all__ = [
    "KINDS",
    "DataArrivalTrigger",
    "EventTrigger",
    "ManualTrigger",
    "PipelineOutcomeTrigger",
    "ScheduleTrigger",
    "Trigger",
    "kind_of",
    "trigger_handlers",
]

#: Every trigger kind, by the value of ``kind:`` in a spec.
KINDS: Mapping[str, TriggerKind[Any]] = {
    kind.name: kind for kind in (event.KIND, data.KIND, schedule.KIND, outcome.KIND, manual.KIND)
}

Trigger = Annotated[
    EventTrigger | DataArrivalTrigger | ScheduleTrigger | PipelineOutcomeTrigger | ManualTrigger,
    Field(discriminator="kind"),
]


def kind_of(trigger: Trigger) -> TriggerKind[Any]:
    """The kind that owns ``trigger``."""
    return KINDS[trigger.kind]


def trigger_handlers() -> dict[str, Handler]:
    """The event types the kinds decide themselves (streamcoord's own events), and how."""
    return {type_: handler for kind in KINDS.values() for type_, handler in kind.handlers().items()}
