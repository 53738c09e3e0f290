"""Armed timers fire earliest first, once; cancelled or replaced timers do not fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streamcoord.events import topology
from streamcoord.events.models import TimerFired, TimerFiredData
from streamcoord.runtime.deadletter import DeadLetter, dead_letter_headers
from streamcoord.runtime.timers import TimerQueue

T0 = datetime(2026, 11, 28, 12, tzinfo=UTC)


def fired(timer_id: str, due: datetime) -> TimerFired:
    return TimerFired(
        id=timer_id,
        source="streamcoord/timer",
        data=TimerFiredData(timer_id=timer_id, purpose="retry", due=due),
    )


def test_due_timers_fire_in_order_and_only_once() -> None:
    queue = TimerQueue()
    queue.arm("b", T0 + timedelta(seconds=2), fired("b", T0))
    queue.arm("a", T0 + timedelta(seconds=1), fired("a", T0))
    queue.arm("c", T0 + timedelta(seconds=9), fired("c", T0))
    assert [e.id for e in queue.pop_due(T0 + timedelta(seconds=5))] == ["a", "b"]
    assert queue.pop_due(T0 + timedelta(seconds=5)) == []
    assert queue.next_due() == T0 + timedelta(seconds=9)


def test_cancelled_and_replaced_timers() -> None:
    queue = TimerQueue()
    queue.arm("a", T0, fired("a", T0))
    queue.cancel("a")
    queue.arm("b", T0, fired("b", T0))
    queue.arm("b", T0 + timedelta(seconds=30), fired("b", T0 + timedelta(seconds=30)))
    assert queue.pop_due(T0 + timedelta(seconds=1)) == []
    assert len(queue) == 1
    assert [e.id for e in queue.pop_due(T0 + timedelta(seconds=30))] == ["b"]


def test_dead_letter_headers_keep_the_original_and_name_the_reason() -> None:
    letter = DeadLetter("not_json", "the value is not JSON", topology.EVENTS, 3, 42)
    headers = dict(dead_letter_headers(letter, [("traceparent", b"00-abc")]))
    assert headers["traceparent"] == b"00-abc"
    assert headers["streamcoord.dlq.reason"] == b"not_json"
    assert headers["streamcoord.dlq.partition"] == b"3"
    assert headers["streamcoord.dlq.offset"] == b"42"
