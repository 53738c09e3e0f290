"""Cron arithmetic takes the clock as an argument: a table of times says what ticks when."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streamcoord.runtime.schedule import (
    Schedule,
    ScheduleQueue,
    latest_due,
    next_due,
    tick_event,
)

HOURLY = Schedule("ingest", "0 * * * *", "UTC")
BERLIN_2AM = Schedule("daily", "0 2 * * *", "Europe/Berlin")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "now", "expected_next", "expected_latest"),
    [
        (HOURLY, utc(2026, 11, 28, 16, 30), utc(2026, 11, 28, 17), utc(2026, 11, 28, 16)),
        (HOURLY, utc(2026, 11, 28, 16), utc(2026, 11, 28, 17), utc(2026, 11, 28, 16)),
        # 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer
        (BERLIN_2AM, utc(2026, 11, 28, 16), utc(2026, 11, 29, 1), utc(2026, 11, 28, 1)),
        (BERLIN_2AM, utc(2026, 7, 1, 12), utc(2026, 7, 2, 0), utc(2026, 7, 1, 0)),
    ],
)
def test_next_and_latest_occurrence(
    schedule: Schedule, now: datetime, expected_next: datetime, expected_latest: datetime
) -> None:
    assert next_due(schedule, now) == expected_next
    assert latest_due(schedule, now) == expected_latest


def test_tick_ids_are_deterministic_so_a_refired_tick_is_one_event() -> None:
    first = tick_event(HOURLY, utc(2026, 11, 28, 16))
    again = tick_event(HOURLY, utc(2026, 11, 28, 16))
    assert first.id == again.id == "schedule/ingest/2026-11-28T16:00:00+00:00"
    assert first.data.pipeline == "ingest"


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
