"""Backfill keys and the plan that keeps at most N runs unfinished."""

from __future__ import annotations

import pytest

from streamcoord.backfill import (
    BackfillPlan,
    backfill_id,
    order_keys,
    partition_keys,
    request_event,
)
from streamcoord.errors import ConfigError


def test_daily_and_hourly_ranges_are_inclusive_and_follow_the_calendar() -> None:
    assert partition_keys("2024-02-27", "2024-03-01") == [
        "2024-02-27",
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
    ]
    assert partition_keys("2026-01-01T22", "2026-01-02T01") == [
        "2026-01-01T22",
        "2026-01-01T23",
        "2026-01-02T00",
        "2026-01-02T01",
    ]
    assert len(partition_keys("2024-01-01", "2026-09-26")) == 1000


def test_a_bad_range_says_how_to_write_it() -> None:
    with pytest.raises(ConfigError, match="before it starts"):
        partition_keys("2026-01-02", "2026-01-01")
    with pytest.raises(ConfigError, match="not a daily key") as error:
        partition_keys("yesterday", "2026-01-01")
    assert error.value.hint == "write it like 2026-01-31"


def test_keys_go_lowest_or_newest_first_without_repeats() -> None:
    assert order_keys(["b", "a", "c", "a"], "lowest") == ["a", "b", "c"]
    assert order_keys(["b", "a", "c"], "newest") == ["c", "b", "a"]


def test_at_most_n_runs_are_unfinished_and_each_key_is_requested_once() -> None:
    plan = BackfillPlan("p", ["1", "2", "3", "4", "5"], max_active=2)
    assert plan.take_next() == ["1", "2"]
    assert plan.take_next() == []
    plan.observe("p/1", "active")
    plan.observe("p/1", "succeeded")
    assert plan.take_next() == ["3"]
    plan.observe("p/2", "failed")
    plan.observe("p/3", "succeeded")
    assert plan.take_next() == ["4", "5"]
    plan.observe("p/4", "succeeded")
    plan.observe("p/5", "succeeded")
    progress = plan.progress()
    assert (progress.done, progress.succeeded, progress.failed, progress.requested) == (
        True,
        4,
        1,
        5,
    )
    assert progress.peak_active == 2


def test_existing_runs_are_waited_for_not_requested_again() -> None:
    plan = BackfillPlan("p", ["1", "2", "3"], max_active=2)
    plan.observe("p/1", "succeeded")  # a previous backfill's
    plan.observe("p/2", "active")
    plan.observe("other/3", "active")  # another pipeline's run: not this backfill's
    plan.observe("p/2#2", "active")  # a later generation is not the backfill's run
    assert plan.take_next() == ["3"]
    assert plan.unfinished() == ["p/2", "p/3"]
    with pytest.raises(ValueError, match="at least 1"):
        BackfillPlan("p", [], max_active=0)


def test_a_request_is_the_same_event_whenever_it_is_sent() -> None:
    plan = BackfillPlan("p", ["2026-01-01"], max_active=1)
    one, two = (request_event(plan, "2026-01-01", {"full": True}) for _ in range(2))
    assert one.id == two.id == "backfill/p/2026-01-01"
    assert one.data == two.data


def test_cancelled_runs_count_apart_and_a_paused_plan_requests_nothing() -> None:
    plan = BackfillPlan("p", ["1", "2", "3", "4"], max_active=2, requesting=False)
    plan.observe("p/1", "active")  # started before the pause
    assert plan.take_next() == []
    assert not plan.settled()  # its started run is still followed
    plan.observe("p/1", "cancelled")
    assert plan.settled()
    progress = plan.progress()
    assert (progress.started, progress.cancelled, progress.failed, progress.active) == (1, 1, 0, 0)
    assert (progress.finished, progress.done) == (1, False)
    plan.requesting = True  # resumed
    assert plan.take_next() == ["2", "3"]
    assert not plan.settled()


def test_the_same_pipeline_and_keys_are_the_same_backfill() -> None:
    one = backfill_id("daily", ["2026-01-02", "2026-01-01"])
    assert one == backfill_id("daily", ["2026-01-01", "2026-01-02", "2026-01-01"])
    assert one.startswith("daily-")
    assert one != backfill_id("daily", ["2026-01-01"])
    assert one != backfill_id("hourly", ["2026-01-01", "2026-01-02"])
