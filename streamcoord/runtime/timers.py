"""Durable timers: kept in the core's state, armed here, fired as events onto the events topic.

Firing is at-least-once (a crash between producing the event and committing its effect fires it
again after restore); the core makes it exactly-once in effect, because a timer's event id is
its timer id and a fired timer leaves the state.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime

from streamcoord.events.models import TimerFired

__all__ = ["TimerQueue"]


@dataclass(order=True)
class _Entry:
    due: datetime
    timer_id: str
    event: TimerFired = field(compare=False)


class TimerQueue:
    """The armed timers of one partition, earliest first; cancelling is lazy."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._live)

    def arm(self, timer_id: str, due: datetime, event: TimerFired) -> None:
        entry = _Entry(due, timer_id, event)
        self._live[timer_id] = entry
        heapq.heappush(self._heap, entry)

    def cancel(self, timer_id: str) -> None:
        self._live.pop(timer_id, None)

    def next_due(self) -> datetime | None:
        self._drop_cancelled()
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: datetime) -> list[TimerFired]:
        """Remove and return every timer due at ``now``, earliest first."""
        fired: list[TimerFired] = []
        while True:
            self._drop_cancelled()
            if not self._heap or self._heap[0].due > now:
                return fired
            entry = heapq.heappop(self._heap)
            del self._live[entry.timer_id]
            fired.append(entry.event)

    def _drop_cancelled(self) -> None:
        while self._heap and self._live.get(self._heap[0].timer_id) is not self._heap[0]:
            heapq.heappop(self._heap)
