"""The API's own response and request bodies (run data uses :mod:`streamcoord.readmodel`'s)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from streamcoord.control import CommandState

__all__ = [
    "CancelBody",
    "CommandAccepted",
    "CommandView",
    "ExplanationView",
    "GraphEdge",
    "GraphNode",
    "NeedView",
    "PipelineGraph",
    "PipelineSummary",
    "RunRequestBody",
    "StreamEvent",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineSummary(_Body):
    """A pipeline of the newest loaded spec version."""

    name: str
    description: str = ""
    owner: str = ""
    tags: list[str] = Field(default_factory=list)
    stages: list[str] = Field(description="Stage names in spec order.")
    manual: bool = Field(description="Whether runs may be requested (a manual trigger).")
    paused: bool | None = Field(
        description="Whether the coordinator holds its new runs and stages; null until known."
    )
    spec_version: str


class GraphNode(_Body):
    id: str = Field(description="pipeline.stage")
    pipeline: str
    stage: str
    own: bool = Field(description="A stage of this pipeline (else of a neighbour).")


class GraphEdge(_Body):
    """``source`` is needed by ``target`` (edges run from upstream to downstream)."""

    source: str
    target: str


class PipelineGraph(_Body):
    pipeline: str
    nodes: list[GraphNode]
    edges: list[GraphEdge] = Field(description="Between stages of this pipeline.")
    cross_pipeline_edges: list[GraphEdge] = Field(
        description="From or to stages of other pipelines."
    )


class NeedView(_Body):
    need: str
    status: str
    satisfied: bool
    by_event: str | None = None


class ExplanationView(_Body):
    """Why a stage is, or is not yet, ready (as ``streamcoord explain`` says)."""

    run_id: str
    stage: str
    status: str
    attempt: int
    rule: str
    needs: list[NeedView]
    holds: list[str]
    caused_by: list[str]
    reason: str


class RunRequestBody(_Body):
    run_key: str | None = Field(
        None, min_length=1, max_length=1000, description="Default: the current UTC time."
    )
    params: dict[str, JsonValue] = Field(default_factory=dict)


class CancelBody(_Body):
    reason: str = Field("", max_length=2000, description="Why, kept on the run.")


class CommandView(_Body):
    """A command this server sent, and what the coordinator made of it."""

    id: str
    type: str
    principal: str
    subject: str = Field(description="The run or pipeline it is about.")
    state: CommandState = Field(
        description="pending until the coordinator decided it; accepted or rejected (reason)."
    )
    reason: str | None = Field(None, description="Why it was rejected: a stable code.")
    message: str = ""
    partition: int | None = Field(None, description="Where it is on the events topic.")
    offset: int | None = None
    sent_at: datetime | None = None
    decided_at: datetime | None = None
    runs: list[str] = Field(
        default_factory=list, description="Runs it created or changed (from the read model)."
    )


class CommandAccepted(_Body):
    """202: the command is on Kafka; follow ``link`` for the coordinator's answer."""

    id: str
    type: str
    state: CommandState
    link: str


class StreamEvent(_Body):
    """The data of one Server-Sent Event (``event: run`` or ``event: stage``)."""

    kind: Literal["run", "stage"]
    run_id: str
    pipeline: str
    status: str
    stage: str | None = None
    attempt: int | None = None
    at: datetime
