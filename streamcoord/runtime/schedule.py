"""Cron schedules as the runtime drives them: the schedules this process owns, earliest first.

The schedule trigger kind (:mod:`streamcoord.pipelines.triggers.schedule`) owns the pure half: when
a schedule is due and the tick event that says so, the clock an argument. The coordinator that
owns a pipeline's partition passes the clock and produces the ticks. After downtime only the
latest missed tick fires (no backfill of every occurrence).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from streamcoord.core import Catalog
from streamcoord.events.models import ScheduleTick
from streamcoord.pipelines.triggers.schedule import (
    KIND,
    Schedule,
    ScheduleTrigger,
    latest_due,
    next_due,
    tick_event,
)

__all__ = ["Schedule", "ScheduleQueue", "latest_due", "next_due", "schedules_of", "tick_event"]


def schedules_of(catalog: Catalog) -> list[Schedule]:
    """Every schedule trigger in ``catalog``, in declaration order."""
    schedules: list[Schedule] = []
    for triggers in catalog.by_kind.get(KIND.name, {}).values():
        for trigger in triggers:
            spec: ScheduleTrigger = trigger.spec
            schedules.append(Schedule(trigger.pipeline, spec.cron, spec.timezone))
    return schedules


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
