"""Time as events: the due timers of a member's partitions and the ticks of its schedules.

The core arms timers with ``SetTimer`` commands; each partition keeps them in memory (rebuilt
from its state on restore) and, when one is due, the member produces the ``streamcoord.timer.
fired`` event it carries onto the internal topic, to be decided like any other. A schedule
ticks on the member owning the partition its tick lands on, so one member ticks each. The core
deduplicates refires, so producing a due event twice (a rebalance, a restart) is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Protocol

from streamcoord.core import Catalog, partition_for, partition_key_for
from streamcoord.events.codec import encode
from streamcoord.events.models import CloudEvent, TimerFired
from streamcoord.kafka.ports import Producer
from streamcoord.runtime.schedule import Schedule, ScheduleQueue, schedules_of, tick_event
from streamcoord.runtime.settings import CoordinatorSettings

__all__ = ["TimeEvents", "TimerSource"]


class TimerSource(Protocol):
    """A partition's armed timers, as seen from here (a :class:`PartitionLane`)."""

    def next_timer(self) -> datetime | None: ...

    def pop_due_timers(self, now: datetime) -> list[TimerFired]: ...


class TimeEvents:
    """Produces the due timer and schedule events of the partitions this member owns.

    ``catalog`` gives the default spec version (the newest published one): the schedules owned
    are those of that version; ``on_produced`` is called once per produced event.
    """

    def __init__(
        self,
        settings: CoordinatorSettings,
        catalog: Callable[[], Catalog],
        on_produced: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._on_produced = on_produced
        self._producer: Producer | None = None
        self._schedules = ScheduleQueue()
        self._schedule_catalog: Catalog | None = None  # the version the owned schedules are of
        #: The number of partitions ticks are spread over (known once connected).
        self.partitions = 0

    def start(self) -> None:
        """Take the schedules of the current default version (none owned yet)."""
        self._schedule_catalog = self._catalog()

    def attach(self, producer: Producer) -> None:
        """Produce the time events with ``producer`` (none are produced before)."""
        self._producer = producer

    def poll_timeout_ms(self, lanes: Iterable[TimerSource], timeout_ms: int) -> int:
        """``timeout_ms``, shortened so a fetch returns when the next timer or tick is due."""
        dues = [d for lane in lanes if (d := lane.next_timer()) is not None]
        if (tick := self._schedules.next_due()) is not None:
            dues.append(tick)
        if dues:
            wait_ms = (min(dues) - datetime.now(UTC)).total_seconds() * 1000
            timeout_ms = max(0, min(timeout_ms, int(wait_ms)))
        return timeout_ms

    def due(self, lanes: Iterable[TimerSource], now: datetime) -> list[CloudEvent]:
        """Disarm and return every timer and schedule tick due at ``now``."""
        events: list[CloudEvent] = [e for lane in lanes for e in lane.pop_due_timers(now)]
        events.extend(self._schedules.pop_due(now))
        return events

    async def fire_due(self, lanes: Iterable[TimerSource]) -> None:
        """Produce every due timer's and schedule's event."""
        for event in self.due(list(lanes), datetime.now(UTC)):
            await self.produce(event)

    async def produce(self, event: CloudEvent) -> None:
        """``event`` onto the internal topic, keyed for the partition that decides it."""
        if self._producer is None:
            return
        value, headers = encode(event)
        await self._producer.send(
            self._settings.topics.internal, partition_key_for(event).encode(), value, headers
        )
        self._on_produced()

    def own(self, partitions: set[int], now: datetime) -> list[CloudEvent]:
        """Tick the schedules landing on ``partitions`` from now on; returns the tick each
        missed while no one owned it (the latest one), to fire now."""
        return [self._schedules.add(schedule, now) for schedule in self.landing_on(partitions)]

    def disown(self, partitions: set[int]) -> None:
        """Stop ticking the schedules landing on ``partitions``."""
        gone = self.landing_on(partitions)
        self._schedules.remove(schedule.pipeline for schedule in gone)

    def follow(self, owned: set[int]) -> None:
        """Own the schedules of the newest spec version once it is published: changed ones tick
        from now on (no catch-up tick: nothing was missed), removed ones stop."""
        catalog, previous = self._catalog(), self._schedule_catalog
        if previous is None or catalog is previous:
            return
        self._schedule_catalog = catalog
        old = set(self.landing_on(owned, previous))
        new = self.landing_on(owned, catalog)
        changed = {schedule.pipeline for schedule in old.symmetric_difference(new)}
        self._schedules.remove(changed)
        now = datetime.now(UTC)
        for schedule in new:
            if schedule.pipeline in changed:
                self._schedules.add(schedule, now)

    def landing_on(self, partitions: set[int], catalog: Catalog | None = None) -> list[Schedule]:
        """Schedules whose ticks land on one of ``partitions`` (so one member ticks each)."""
        epoch = datetime(2000, 1, 1, tzinfo=UTC)  # any time: only the tick's key matters here
        return [
            schedule
            for schedule in schedules_of(catalog or self._schedule_catalog or self._catalog())
            if partition_for(partition_key_for(tick_event(schedule, epoch)), self.partitions)
            in partitions
        ]
