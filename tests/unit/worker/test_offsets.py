"""The committable offset never passes a record whose outcome is not durable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamcoord.worker._offsets import OffsetTracker


def test_nothing_to_commit_before_the_first_record() -> None:
    assert OffsetTracker().committable() is None


def test_commit_stops_at_the_oldest_running_record() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.begin(offset)
    tracker.finish(6)
    tracker.finish(7)
    assert tracker.committable() == 5
    tracker.finish(5)
    assert tracker.committable() == 8


@given(st.permutations(list(range(20))), st.integers(0, 20))
def test_committable_is_the_first_unfinished_offset(order: list[int], finished: int) -> None:
    tracker = OffsetTracker()
    for offset in range(20):
        tracker.begin(offset)
    done = set(order[:finished])
    for offset in done:
        tracker.finish(offset)
    first_unfinished = next((o for o in range(20) if o not in done), 20)
    assert tracker.committable() == first_unfinished
    assert tracker.in_flight == 20 - finished
