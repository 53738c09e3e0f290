"""The API's own response and request bodies (run data uses :mod:`streamcoord.readmodel`'s)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from streamcoord.control import CommandState

__all__ = [
    "BackfillBody",
    "BackfillProgress",
    "BackfillView",
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


class BackfillBody(_Body):
    """Which keys: ``from`` and ``to`` (inclusive), or a listed set in ``keys``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_extra={"oneOf": [{"required": ["from", "to"]}, {"required": ["keys"]}]},
    )

    from_key: str | None = Field(
        None, alias="from", min_length=1, max_length=40,
        description="First key: 2026-01-01 (daily) or 2026-01-01T00 (hourly).",
    )  # fmt: skip
    to_key: str | None = Field(None, alias="to", min_length=1, max_length=40)
    keys: list[str] | None = Field(
        None, min_length=1, max_length=10_000,
        description="Listed keys instead of a range (any form: they become run keys).",
    )  # fmt: skip
    grain: Literal["daily", "hourly"] | None = Field(
        None, description="Of the range; default: the keys' own form."
    )
    max_active: int = Field(4, ge=1, le=1000, description="At most this many runs unfinished.")
    order: Literal["lowest", "newest"] = "lowest"
    params: dict[str, JsonValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_way_of_naming_keys(self) -> BackfillBody:
        ranged = self.from_key is not None or self.to_key is not None
        if self.keys is not None and ranged:
            raise ValueError("give from and to, or keys, not both")
        if self.keys is None and (self.from_key is None or self.to_key is None):
            raise ValueError("give from and to (both), or keys")
        if self.keys is not None and any(not k or len(k) > 1000 for k in self.keys):
            raise ValueError("every key has 1 to 1000 characters")
        return self


class BackfillProgress(_Body):
    planned: int = Field(description="Keys of the backfill.")
    started: int = Field(description="Keys whose run was requested or exists.")
    requested: int = Field(
        description="Runs requested since the backfill was last started or resumed (keys whose "
        "run existed are not requested again)."
    )
    active: int = Field(description="Started and not finished.")
    succeeded: int
    failed: int = Field(description="Failed or skipped.")
    cancelled: int
    peak_active: int = Field(
        description="The most unfinished at once since it was last started, resumed, paused or "
        "cancelled, as this server saw it."
    )
    done: bool = Field(description="Every key's run finished.")


class BackfillView(_Body):
    """A backfill this server hosts: one run per key, run id ``<pipeline>/<key>``."""

    id: str = Field(description="The same pipeline and keys always make the same id.")
    pipeline: str
    state: Literal["running", "paused", "cancelled", "succeeded", "failed", "stalled"] = Field(
        description="running requests runs; paused and cancelled request none (started runs "
        "are still followed); stalled: nothing moved for too long or Kafka failed (message)."
    )
    message: str = ""
    max_active: int
    first_key: str | None = Field(description="In the order runs are requested.")
    last_key: str | None
    principal: str | None
    created_at: datetime
    progress: BackfillProgress
    cancelled_runs: list[str] = Field(
        default_factory=list, description="Runs the cancel of the backfill cancelled."
    )
