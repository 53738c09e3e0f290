"""Events executors send about the attempts they run: started, heartbeat, succeeded, failed,
progress.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from streamcoord.events.envelope import ClosedData, CloudEvent

__all__ = [
    "DatasetRef",
    "StageFailed",
    "StageFailedData",
    "StageHeartbeat",
    "StageLineage",
    "StageProgress",
    "StageProgressData",
    "StageRef",
    "StageStarted",
    "StageSucceeded",
    "StageSucceededData",
]


class StageRef(ClosedData):
    """Which attempt of which stage of which run an executor event is about."""

    run_id: str = Field(min_length=1)
    stage: str = Field(min_length=1)
    attempt: int = Field(1, ge=1)


class StageStarted(CloudEvent):
    """An executor began an attempt of a stage."""

    TYPE: ClassVar[str] = "streamcoord.stage.started"
    type: Literal["streamcoord.stage.started"] = "streamcoord.stage.started"
    data: StageRef


class StageHeartbeat(CloudEvent):
    """An executor is still working on an attempt (resets the heartbeat timeout)."""

    TYPE: ClassVar[str] = "streamcoord.stage.heartbeat"
    type: Literal["streamcoord.stage.heartbeat"] = "streamcoord.stage.heartbeat"
    data: StageRef


class DatasetRef(ClosedData):
    """A dataset an attempt read or wrote, as OpenLineage names one."""

    namespace: str | None = Field(
        None, min_length=1, description="Its OpenLineage namespace; absent: the lineage's own."
    )
    name: str = Field(min_length=1)


class StageLineage(ClosedData):
    """The datasets an attempt reports it read and wrote (beside those its spec declares)."""

    inputs: list[DatasetRef] = Field(default_factory=list)
    outputs: list[DatasetRef] = Field(default_factory=list)


class StageSucceededData(StageRef):
    outputs: dict[str, JsonValue] = Field(default_factory=dict)
    # left out of the wire when None: a coordinator older than the field still reads the event
    lineage: StageLineage | None = Field(
        None,
        description="Datasets the attempt read and wrote, for OpenLineage.",
        exclude_if=lambda value: value is None,
    )


class StageSucceeded(CloudEvent):
    """An attempt finished successfully; ``data.outputs`` feed downstream params."""

    TYPE: ClassVar[str] = "streamcoord.stage.succeeded"
    type: Literal["streamcoord.stage.succeeded"] = "streamcoord.stage.succeeded"
    data: StageSucceededData


class StageFailedData(StageRef):
    error: str = ""
    retryable: bool = True


class StageFailed(CloudEvent):
    """An attempt failed; ``data.retryable`` says whether the retry policy may apply."""

    TYPE: ClassVar[str] = "streamcoord.stage.failed"
    type: Literal["streamcoord.stage.failed"] = "streamcoord.stage.failed"
    data: StageFailedData


class StageProgressData(StageRef):
    watermark: datetime | None = None
    offsets: dict[str, int] = Field(default_factory=dict)


class StageProgress(CloudEvent):
    """A streaming stage reports how far it got (a watermark or per-partition offsets)."""

    TYPE: ClassVar[str] = "streamcoord.stage.progress"
    type: Literal["streamcoord.stage.progress"] = "streamcoord.stage.progress"
    data: StageProgressData
