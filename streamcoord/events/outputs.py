"""What the coordinator publishes: triggers and cancels for executors, outcomes and records."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from streamcoord.events.envelope import ClosedData, CloudEvent

__all__ = [
    "ExecutorBinding",
    "RunFinished",
    "RunFinishedData",
    "RunRecord",
    "RunRecordData",
    "StageCancel",
    "StageCancelData",
    "StageOutcome",
    "StageOutcomeData",
    "StageRecord",
    "StageRecordData",
    "StageTrigger",
    "StageTriggerData",
]


class ExecutorBinding(ClosedData):
    topic: str
    kind: Literal["batch", "streaming"] = "batch"
    config: dict[str, JsonValue] = Field(default_factory=dict)


class StageTriggerData(ClosedData):
    run_id: str
    pipeline: str
    run_key: str
    stage: str
    attempt: int = Field(ge=1)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    idempotency_key: str = Field(
        description="Same for every delivery of one (run, stage, attempt)."
    )
    executor: ExecutorBinding
    caused_by: list[str] = Field(default_factory=list, description="Ids of the causing events.")
    timeout_seconds: float | None = Field(
        None, description="The stage's execution timeout; absent when the spec sets none."
    )
    deadline: datetime | None = Field(
        None,
        description=(
            "When the coordinator times the attempt out (trigger time + timeout_seconds)."
            " Executors stop the work by then: a later outcome is ignored."
        ),
    )


class StageTrigger(CloudEvent):
    """The coordinator tells an executor to run one attempt of a stage (exactly once)."""

    TYPE: ClassVar[str] = "streamcoord.stage.trigger"
    type: Literal["streamcoord.stage.trigger"] = "streamcoord.stage.trigger"
    data: StageTriggerData


class StageCancelData(ClosedData):
    run_id: str
    pipeline: str
    stage: str
    attempt: int = Field(ge=1)
    idempotency_key: str = Field(description="The cancelled attempt's trigger idempotency key.")
    cause: Literal["run_cancelled", "start_timeout", "execution_timeout", "heartbeat_timeout"] = (
        Field(description="Why the coordinator ended the attempt.")
    )
    reason: str = ""


class StageCancel(CloudEvent):
    """The coordinator ended an attempt (run cancelled or timed out): its executor stops it.

    Published on the attempt's trigger topic with the trigger's key, so it follows the trigger
    in the same partition. Any report of the attempt after it is ignored by the coordinator.
    """

    TYPE: ClassVar[str] = "streamcoord.stage.cancel"
    type: Literal["streamcoord.stage.cancel"] = "streamcoord.stage.cancel"
    data: StageCancelData


class RunFinishedData(ClosedData):
    """A run's outcome, routed through Kafka to whatever depends on it (other pipelines)."""

    run_id: str
    pipeline: str
    run_key: str
    outcome: Literal["succeeded", "failed", "cancelled"]


class RunFinished(CloudEvent):
    """Lifecycle: a run reached a terminal outcome."""

    TYPE: ClassVar[str] = "streamcoord.run.finished"
    type: Literal["streamcoord.run.finished"] = "streamcoord.run.finished"
    data: RunFinishedData


class StageOutcomeData(ClosedData):
    """One stage's terminal outcome, for cross-pipeline ``needs`` on another partition."""

    run_id: str
    pipeline: str
    run_key: str
    stage: str
    outcome: str
    outputs: dict[str, JsonValue] = Field(default_factory=dict)


class StageOutcome(CloudEvent):
    """Lifecycle: a stage reached a terminal outcome."""

    TYPE: ClassVar[str] = "streamcoord.stage.outcome"
    type: Literal["streamcoord.stage.outcome"] = "streamcoord.stage.outcome"
    data: StageOutcomeData


class RunRecordData(ClosedData):
    run_id: str
    pipeline: str
    run_key: str
    status: str
    stages: dict[str, str] = Field(default_factory=dict, description="Stage name to status.")
    attempts: dict[str, int] = Field(default_factory=dict)
    caused_by: list[str] = Field(default_factory=list)
    trace_id: str | None = None
    spec_version: str | None = Field(
        None, description="The spec version the run follows; absent: the partition's current one."
    )
    principal: str | None = Field(
        None, description="Who caused the run to start (see the scprincipal extension)."
    )


class RunRecord(CloudEvent):
    """Lifecycle: the current record of a run (compacted by run id on ``streamcoord.runs``)."""

    TYPE: ClassVar[str] = "streamcoord.run.record"
    type: Literal["streamcoord.run.record"] = "streamcoord.run.record"
    data: RunRecordData


class StageRecordData(ClosedData):
    """A stage's state after a transition, for dashboards and the CLI."""

    run_id: str
    pipeline: str
    run_key: str
    stage: str
    status: str
    attempt: int = Field(0, ge=0, description="0 until the first attempt starts.")
    error: str | None = None
    caused_by: list[str] = Field(default_factory=list)


class StageRecord(CloudEvent):
    """Lifecycle: a stage of a run changed state (on ``streamcoord.runs``)."""

    TYPE: ClassVar[str] = "streamcoord.stage.record"
    type: Literal["streamcoord.stage.record"] = "streamcoord.stage.record"
    data: StageRecordData
