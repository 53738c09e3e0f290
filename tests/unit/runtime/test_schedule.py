"""The runtime's queue of owned schedules (the cron arithmetic is the schedule kind's: see
tests/unit/core/test_trigger_kinds.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from streamcoord.core import Catalog
from streamcoord.pipelines.models import Pipeline
from streamcoord.runtime.schedule import Schedule, ScheduleQueue, schedules_of

HOURLY = Schedule("ingest", "0 * * * *", "UTC")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_queue_catches_up_once_then_ticks_each_occurrence_in_order() -> None:
    queue = ScheduleQueue()
    catch_up = queue.add(HOURLY, utc(2026, 11, 28, 16, 30))
    assert catch_up.data.scheduled_time == utc(2026, 11, 28, 16)
    assert queue.pop_due(utc(2026, 11, 28, 16, 59)) == []
    ticks = queue.pop_due(utc(2026, 11, 28, 18, 0))
    assert [t.data.scheduled_time for t in ticks] == [utc(2026, 11, 28, 17), utc(2026, 11, 28, 18)]
    assert queue.next_due() == utc(2026, 11, 28, 19)
    queue.remove(["ingest"])
    assert queue.next_due() is None


def test_schedules_of_lists_every_schedule_trigger_in_declaration_order() -> None:
    pipelines = [
        Pipeline.model_validate({"name": name, "stages": [{"name": "a"}], "triggers": triggers})
        for name, triggers in [
            (
                "b",
                [
                    {"kind": "schedule", "cron": "0 * * * *"},
                    {"kind": "manual"},
                    {"kind": "schedule", "cron": "0 2 * * *", "timezone": "Europe/Berlin"},
                ],
            ),
            ("a", [{"kind": "event", "type": "go"}]),
            ("c", [{"kind": "schedule", "cron": "5 * * * *"}]),
        ]
    ]
    assert schedules_of(Catalog.build(pipelines)) == [
        Schedule("b", "0 * * * *", "UTC"),
        Schedule("b", "0 2 * * *", "Europe/Berlin"),
        Schedule("c", "5 * * * *", "UTC"),
    ]
