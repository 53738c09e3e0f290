"""The registry of streamcoord's own event types: which classes and ``type`` names it owns, and
which of them only the coordinator may produce."""

from __future__ import annotations

from streamcoord.events.commands import (
    PipelinePause,
    PipelineResume,
    RunCancel,
    RunRequested,
    SpecsActivate,
    StageRetry,
)
from streamcoord.events.decisions import DecisionRecord
from streamcoord.events.envelope import CloudEvent
from streamcoord.events.outputs import (
    RunFinished,
    RunRecord,
    StageCancel,
    StageOutcome,
    StageRecord,
    StageTrigger,
)
from streamcoord.events.reports import (
    StageFailed,
    StageHeartbeat,
    StageProgress,
    StageStarted,
    StageSucceeded,
)
from streamcoord.events.timing import ScheduleTick, TimerFired

__all__ = ["COORDINATOR_EVENT_TYPES", "OWN_EVENT_CLASSES", "OWN_EVENT_TYPES"]


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
