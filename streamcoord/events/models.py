"""CloudEvents 1.0 envelopes and the data of streamcoord's own event types, in one namespace.

The type names are part of the public contract. Any CloudEvent whose ``type`` is not one of
streamcoord's is an :class:`ExternalEvent` that pipeline triggers may match. The models live
along their seams: the envelope (:mod:`~streamcoord.events.envelope`), executor reports
(:mod:`~streamcoord.events.reports`), commands (:mod:`~streamcoord.events.commands`), time as
events (:mod:`~streamcoord.events.timing`), what the coordinator publishes
(:mod:`~streamcoord.events.outputs`, :mod:`~streamcoord.events.decisions`) and the registry of
own types (:mod:`~streamcoord.events.registry`); this module re-exports them all.
"""

from __future__ import annotations

from streamcoord.events.commands import (
    PipelinePause,
    PipelineRef,
    PipelineResume,
    RunCancel,
    RunCancelData,
    RunRequested,
    RunRequestedData,
    SpecsActivate,
    SpecsActivateData,
    StageRetry,
    StageRetryData,
)
from streamcoord.events.decisions import ChainLink, Decision, DecisionCause, DecisionRecord
from streamcoord.events.envelope import CloudEvent, ExternalEvent, WireData
from streamcoord.events.outputs import (
    ExecutorBinding,
    RunFinished,
    RunFinishedData,
    RunRecord,
    RunRecordData,
    StageCancel,
    StageCancelData,
    StageOutcome,
    StageOutcomeData,
    StageRecord,
    StageRecordData,
    StageTrigger,
    StageTriggerData,
)
from streamcoord.events.registry import COORDINATOR_EVENT_TYPES, OWN_EVENT_CLASSES, OWN_EVENT_TYPES
from streamcoord.events.reports import (
    DatasetRef,
    StageFailed,
    StageFailedData,
    StageHeartbeat,
    StageLineage,
    StageProgress,
    StageProgressData,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
)
from streamcoord.events.timing import ScheduleTick, ScheduleTickData, TimerFired, TimerFiredData

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
