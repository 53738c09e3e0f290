"""Cron schedules: when each scheduled pipeline ticks, and the tick events that say so.

The arithmetic is pure (the clock is an argument, as in arq's ``next_cron``); the coordinator
that owns a pipeline's partition produces the ticks. Tick ids are ``schedule/<pipeline>/<time>``,
so a tick produced twice (a restart, a rebalance) is one CloudEvent to the core and folds into
one run. After downtime only the latest missed tick fires (no backfill of every occurrence).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from streamcoord.core import Catalog
from streamcoord.events.models import ScheduleTick, ScheduleTickData
from streamcoord.spec.models import ScheduleTrigger

__all__ = ["Schedule", "ScheduleQueue", "latest_due", "next_due", "schedules_of", "tick_event"]


@dataclass(frozen=True)
class Schedule:
    pipeline: str
    cron: str
    timezone: str


def schedules_of(catalog: Catalog) -> list[Schedule]:
    """Every schedule trigger in ``catalog``, in declaration order."""
    return [
        Schedule(p.name, t.cron, t.timezone)
        for p in catalog.pipelines.values()
        for t in p.triggers
        if isinstance(t, ScheduleTrigger)
    ]


def next_due(schedule: Schedule, after: datetime) -> datetime:
    """The first occurrence strictly after ``after`` (UTC in, UTC out)."""
    local = after.astimezone(ZoneInfo(schedule.timezone))
    return next(iter(CronSim(schedule.cron, local))).astimezone(UTC)


def latest_due(schedule: Schedule, now: datetime) -> datetime:
    """The last occurrence at or before ``now``."""
    # Reverse iteration starts strictly before its argument; cron has minute resolution, so a
    # second later includes ``now`` itself when it is an occurrence.
    local = now.astimezone(ZoneInfo(schedule.timezone)) + timedelta(seconds=1)
    return next(iter(CronSim(schedule.cron, local, reverse=True))).astimezone(UTC)


def tick_event(schedule: Schedule, scheduled_time: datetime) -> ScheduleTick:
    stamp = scheduled_time.astimezone(UTC).isoformat()
    return ScheduleTick(
        id=f"schedule/{schedule.pipeline}/{stamp}",
        source="streamcoord/scheduler",
        time=scheduled_time,
        data=ScheduleTickData(pipeline=schedule.pipeline, scheduled_time=scheduled_time),
    )


@dataclass(order=True)
class _Due:
    due: datetime
    schedule: Schedule = field(compare=False)


class ScheduleQueue:
    """The schedules this process owns, earliest tick first."""

    def __init__(self) -> None:
        self._heap: list[_Due] = []

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, schedule: Schedule, now: datetime) -> ScheduleTick:
        """Own ``schedule`` from ``now``; returns the latest tick already due, to catch up once."""
        heapq.heappush(self._heap, _Due(next_due(schedule, now), schedule))
        return tick_event(schedule, latest_due(schedule, now))

    def remove(self, pipelines: Iterable[str]) -> None:
        gone = set(pipelines)
        self._heap = [d for d in self._heap if d.schedule.pipeline not in gone]
        heapq.heapify(self._heap)

    def next_due(self) -> datetime | None:
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: datetime) -> list[ScheduleTick]:
        ticks: list[ScheduleTick] = []
        while self._heap and self._heap[0].due <= now:
            entry = heapq.heappop(self._heap)
            ticks.append(tick_event(entry.schedule, entry.due))
            heapq.heappush(self._heap, _Due(next_due(entry.schedule, entry.due), entry.schedule))
        return ticks
