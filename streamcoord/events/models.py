"""CloudEvents 1.0 envelopes and the data of streamcoord's own event types.

The type names are part of the public contract. Any CloudEvent whose ``type`` is not one of
streamcoord's is an :class:`ExternalEvent` that pipeline triggers may match.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "COORDINATOR_EVENT_TYPES",
    "OWN_EVENT_CLASSES",
    "OWN_EVENT_TYPES",
    "ChainLink",
    "CloudEvent",
    "DatasetRef",
    "Decision",
    "DecisionCause",
    "DecisionRecord",
    "ExecutorBinding",
    "ExternalEvent",
    "PipelinePause",
    "PipelineRef",
    "PipelineResume",
    "RunCancel",
    "RunCancelData",
    "RunFinished",
    "RunFinishedData",
    "RunRecord",
    "RunRecordData",
    "RunRequested",
    "RunRequestedData",
    "ScheduleTick",
    "ScheduleTickData",
    "SpecsActivate",
    "SpecsActivateData",
    "StageCancel",
    "StageCancelData",
    "StageFailed",
    "StageFailedData",
    "StageHeartbeat",
    "StageLineage",
    "StageOutcome",
    "StageOutcomeData",
    "StageProgress",
    "StageProgressData",
    "StageRecord",
    "StageRecordData",
    "StageRef",
    "StageRetry",
    "StageRetryData",
    "StageStarted",
    "StageSucceeded",
    "StageSucceededData",
    "StageTrigger",
    "StageTriggerData",
    "TimerFired",
    "TimerFiredData",
    "WireData",
]


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 context attributes; extension attributes are kept as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    TYPE: ClassVar[str] = ""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime | None = None
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    # Distributed-tracing extension: W3C trace context of the producer.
    traceparent: str | None = None
    tracestate: str | None = None
    data: Any = None

    @property
    def dedup_key(self) -> tuple[str, str]:
        """CloudEvents identity: producers guarantee (source, id) is unique per distinct event."""
        return (self.source, self.id)


class WireData(BaseModel):
    """An event's data, also readable as the JSON object it is on the wire (``data["run_id"]``,
    ``data.get("reason", "")``): code that read routed dicts reads the models unchanged."""

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict):  # equal to the JSON object it is on the wire
            return self.model_dump() == other
        return super().__eq__(other)

    __hash__ = BaseModel.__hash__


class _Data(WireData):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExternalEvent(CloudEvent):
    """Any CloudEvent from another system (data landed, a check passed, ...)."""


# --- from executors -------------------------------------------------------------------------


class StageRef(_Data):
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


class DatasetRef(_Data):
    """A dataset an attempt read or wrote, as OpenLineage names one."""

    namespace: str | None = Field(
        None, min_length=1, description="Its OpenLineage namespace; absent: the lineage's own."
    )
    name: str = Field(min_length=1)


class StageLineage(_Data):
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


# --- commands ---------------------------------------------------------------------------------


class RunRequestedData(_Data):
    pipeline: str = Field(min_length=1)
    run_key: str = Field(min_length=1)
    params: dict[str, JsonValue] = Field(default_factory=dict)


class RunRequested(CloudEvent):
    """Command: start a run of a pipeline for a run key (manual trigger, API, CLI)."""

    TYPE: ClassVar[str] = "streamcoord.run.requested"
    type: Literal["streamcoord.run.requested"] = "streamcoord.run.requested"
    data: RunRequestedData


class RunCancelData(_Data):
    run_id: str = Field(min_length=1)
    reason: str = ""


class RunCancel(CloudEvent):
    """Command: cancel a run and every stage still pending or running in it."""

    TYPE: ClassVar[str] = "streamcoord.run.cancel"
    type: Literal["streamcoord.run.cancel"] = "streamcoord.run.cancel"
    data: RunCancelData


class StageRetryData(_Data):
    run_id: str = Field(min_length=1)
    stage: str = Field(min_length=1)


class StageRetry(CloudEvent):
    """Command: retry a stage of a run now, whatever its retry policy says."""

    TYPE: ClassVar[str] = "streamcoord.stage.retry"
    type: Literal["streamcoord.stage.retry"] = "streamcoord.stage.retry"
    data: StageRetryData


class PipelineRef(_Data):
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


class SpecsActivateData(_Data):
    version: str = Field(min_length=1, description="A loaded spec version: sha256:<16 hex>.")


class SpecsActivate(CloudEvent):
    """Command: new runs use this spec version; runs already started keep theirs until they end."""

    TYPE: ClassVar[str] = "streamcoord.specs.activate"
    type: Literal["streamcoord.specs.activate"] = "streamcoord.specs.activate"
    data: SpecsActivateData


# --- produced by the runtime for the core (time arrives as events) ----------------------------


class TimerFiredData(_Data):
    timer_id: str = Field(min_length=1)
    purpose: Literal[
        "retry", "timeout", "heartbeat", "start", "lateness", "wakeup", "expiry", "quota"
    ]
    run_id: str | None = None
    stage: str | None = None
    attempt: int | None = None
    due: datetime


class TimerFired(CloudEvent):
    """Time as an event: the runtime reports that a timer the core asked for is due."""

    TYPE: ClassVar[str] = "streamcoord.timer.fired"
    type: Literal["streamcoord.timer.fired"] = "streamcoord.timer.fired"
    data: TimerFiredData


class ScheduleTickData(_Data):
    pipeline: str = Field(min_length=1)
    scheduled_time: datetime


class ScheduleTick(CloudEvent):
    """Time as an event: a cron schedule of a pipeline fired."""

    TYPE: ClassVar[str] = "streamcoord.schedule.tick"
    type: Literal["streamcoord.schedule.tick"] = "streamcoord.schedule.tick"
    data: ScheduleTickData


# --- produced by the coordinator ---------------------------------------------------------------


class ExecutorBinding(_Data):
    topic: str
    kind: Literal["batch", "streaming"] = "batch"
    config: dict[str, JsonValue] = Field(default_factory=dict)


class StageTriggerData(_Data):
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


class StageCancelData(_Data):
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


class RunFinishedData(_Data):
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


class StageOutcomeData(_Data):
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


class RunRecordData(_Data):
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


class DecisionCause(_Data):
    """The event a decision was made on."""

    type: str
    source: str
    id: str


class ChainLink(_Data):
    """A decision record's place in its coordinator partition's hash chain (tamper evidence)."""

    partition: int = Field(ge=0, description="The coordinator partition whose chain this is.")
    seq: int = Field(ge=1, description="1 for the partition's first decision, then +1 each.")
    prev: str = Field(description="The previous record's hash on this chain; empty for seq 1.")
    hash: str = Field(
        "", description="sha256 (hex) of this record's canonical JSON without this field."
    )


class Decision(_Data):
    """Why a stage changed state: the rule that held and the events that satisfied it."""

    run_id: str
    stage: str | None = None
    action: str
    reason: str
    caused_by: list[str] = Field(default_factory=list)
    principal: str | None = Field(
        None, description="Who sent the event decided (None: nobody vouched for it)."
    )
    event: DecisionCause | None = None
    chain: ChainLink | None = None


class DecisionRecord(CloudEvent):
    """Why the coordinator did what it did (on ``streamcoord.decisions``)."""

    TYPE: ClassVar[str] = "streamcoord.decision"
    type: Literal["streamcoord.decision"] = "streamcoord.decision"
    data: Decision


class StageRecordData(_Data):
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


#: Every streamcoord event class, in a fixed order; the decoder's union is built from it.
OWN_EVENT_CLASSES: tuple[type[CloudEvent], ...] = (
    StageStarted,
    StageHeartbeat,
    StageSucceeded,
    StageFailed,
    StageProgress,
    RunRequested,
    RunCancel,
    StageRetry,
    PipelinePause,
    PipelineResume,
    TimerFired,
    ScheduleTick,
    StageTrigger,
    StageCancel,
    RunFinished,
    StageOutcome,
    RunRecord,
    StageRecord,
    DecisionRecord,
    SpecsActivate,
)

#: The CloudEvents ``type`` names streamcoord owns; any other type is an :class:`ExternalEvent`.
OWN_EVENT_TYPES: frozenset[str] = frozenset(cls.TYPE for cls in OWN_EVENT_CLASSES)

#: Types only the coordinator produces: what it routes between its own partitions (matches,
#: arrivals, pool, limit and need traffic; their models are in :mod:`streamcoord.events.internal`,
#: which imports this module, so their names are spelled here and a test keeps them equal),
#: fires (timers, schedule ticks), publishes to executors and records. Accepted from anyone else
#: they would forge decisions, so HTTP ingest rejects them (``reserved_type``).
COORDINATOR_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "streamcoord.run.match",
        "streamcoord.data.arrival",
        "streamcoord.pool.acquire",
        "streamcoord.pool.grant",
        "streamcoord.pool.release",
        "streamcoord.limit.acquire",
        "streamcoord.limit.grant",
        "streamcoord.limit.deny",
        "streamcoord.limit.release",
        "streamcoord.need.subscribe",
        TimerFired.TYPE,
        ScheduleTick.TYPE,
        StageTrigger.TYPE,
        StageCancel.TYPE,
        StageOutcome.TYPE,
        RunFinished.TYPE,
        RunRecord.TYPE,
        StageRecord.TYPE,
        DecisionRecord.TYPE,
    }
)
