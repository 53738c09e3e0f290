"""Commands anyone authorised may send: request or cancel a run, retry a stage, pause or resume
a pipeline, activate a spec version.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, JsonValue

from streamcoord.events.envelope import ClosedData, CloudEvent

__all__ = [
    "PipelinePause",
    "PipelineRef",
    "PipelineResume",
    "RunCancel",
    "RunCancelData",
    "RunRequested",
    "RunRequestedData",
    "SpecsActivate",
    "SpecsActivateData",
    "StageRetry",
    "StageRetryData",
]


class RunRequestedData(ClosedData):
    pipeline: str = Field(min_length=1)
    run_key: str = Field(min_length=1)
    params: dict[str, JsonValue] = Field(default_factory=dict)


class RunRequested(CloudEvent):
    """Command: start a run of a pipeline for a run key (manual trigger, API, CLI)."""

    TYPE: ClassVar[str] = "streamcoord.run.requested"
    type: Literal["streamcoord.run.requested"] = "streamcoord.run.requested"
    data: RunRequestedData


class RunCancelData(ClosedData):
    run_id: str = Field(min_length=1)
    reason: str = ""


class RunCancel(CloudEvent):
    """Command: cancel a run and every stage still pending or running in it."""

    TYPE: ClassVar[str] = "streamcoord.run.cancel"
    type: Literal["streamcoord.run.cancel"] = "streamcoord.run.cancel"
    data: RunCancelData


class StageRetryData(ClosedData):
    run_id: str = Field(min_length=1)
    stage: str = Field(min_length=1)


class StageRetry(CloudEvent):
    """Command: retry a stage of a run now, whatever its retry policy says."""

    TYPE: ClassVar[str] = "streamcoord.stage.retry"
    type: Literal["streamcoord.stage.retry"] = "streamcoord.stage.retry"
    data: StageRetryData


class PipelineRef(ClosedData):
    pipeline: str = Field(min_length=1)


class PipelinePause(CloudEvent):
    """Command: stop starting new runs and stages of a pipeline."""

    TYPE: ClassVar[str] = "streamcoord.pipeline.pause"
    type: Literal["streamcoord.pipeline.pause"] = "streamcoord.pipeline.pause"
    data: PipelineRef


class PipelineResume(CloudEvent):
    """Command: undo a pause."""

    TYPE: ClassVar[str] = "streamcoord.pipeline.resume"
    type: Literal["streamcoord.pipeline.resume"] = "streamcoord.pipeline.resume"
    data: PipelineRef


class SpecsActivateData(ClosedData):
    version: str = Field(min_length=1, description="A loaded spec version: sha256:<16 hex>.")


class SpecsActivate(CloudEvent):
    """Command: new runs use this spec version; runs already started keep theirs until they end."""

    TYPE: ClassVar[str] = "streamcoord.specs.activate"
    type: Literal["streamcoord.specs.activate"] = "streamcoord.specs.activate"
    data: SpecsActivateData
