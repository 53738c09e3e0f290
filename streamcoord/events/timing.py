"""Time as events: what the runtime produces for the core when a timer or a schedule is due."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from streamcoord.events.envelope import ClosedData, CloudEvent

__all__ = [
    "ScheduleTick",
    "ScheduleTickData",
    "TimerFired",
    "TimerFiredData",
]


class TimerFiredData(ClosedData):
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


class ScheduleTickData(ClosedData):
    pipeline: str = Field(min_length=1)
    scheduled_time: datetime


class ScheduleTick(CloudEvent):
    """Time as an event: a cron schedule of a pipeline fired."""

    TYPE: ClassVar[str] = "streamcoord.schedule.tick"
    type: Literal["streamcoord.schedule.tick"] = "streamcoord.schedule.tick"
    data: ScheduleTickData
