"""The coordinator service: one consumer group member, many partition processors, durable timers.

The group consumes the events topic and the internal topic, which have as many partitions as each
other and as the changelog. The range assignor gives every member the same partition numbers of
both topics (it assigns each topic's sorted partitions to the sorted members in the same way), so
the member that admits an events partition also decides the internal partition of that number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from streamcoord.core import Catalog, CatalogSet, partition_for, partition_key_for
from streamcoord.errors import ConfigError, StreamcoordError
from streamcoord.events.codec import encode
from streamcoord.events.models import CloudEvent
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import (
    GroupConsumer,
    Producer,
    Record,
    TopicPartition,
    Transport,
    TransportError,
)
from streamcoord.runtime.lane import PartitionLane
from streamcoord.runtime.metering import PartitionGauges, record_batch, record_restore
from streamcoord.runtime.partition import BatchOutcome, PartitionProcessor
from streamcoord.runtime.schedule import Schedule, ScheduleQueue, schedules_of, tick_event
from streamcoord.runtime.settings import CoordinatorSettings
from streamcoord.runtime.specs import SpecSource, StaticSpecs
from streamcoord.telemetry.metrics import GLOBAL_INSTRUMENTS, Instruments

__all__ = ["Coordinator", "CoordinatorStatus"]

log = logging.getLogger(__name__)

#: Tries to restore a newly assigned partition before giving up (about five minutes in all).
RESTORE_ATTEMPTS = 64
#: Tries to reach the cluster at start before giving up (about two minutes in all).
CONNECT_ATTEMPTS = 30


@dataclass
class CoordinatorStatus:
    """What the health check and the progress display report.

    ``not_ready`` says why the member cannot decide yet (None once every partition the group
    assigned it is restored and consumed): what ``/readyz`` answers 503 with.
    """

    consuming: bool = False
    not_ready: str | None = "starting: connecting to Kafka"
    assigned: list[int] = field(default_factory=list)
    batches: int = 0
    consumed: int = 0
    published: int = 0
    triggered: int = 0
    dead_letters: int = 0
    forwarded: int = 0
    timers_fired: int = 0
    last_batch_at: float | None = None
    errors: int = 0

    @property
    def ready(self) -> bool:
        return self.consuming and self.not_ready is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "reason": self.not_ready,
            "consuming": self.consuming,
            "assigned_partitions": self.assigned,
            "batches": self.batches,
            "consumed": self.consumed,
            "published": self.published,
            "triggered": self.triggered,
            "dead_letters": self.dead_letters,
            "forwarded": self.forwarded,
            "timers_fired": self.timers_fired,
            "errors": self.errors,
            "seconds_since_last_batch": (
                None if self.last_batch_at is None else time.monotonic() - self.last_batch_at
            ),
        }


class Coordinator:
    """Consume events, decide with the pure core, commit each batch exactly once.

    ``settings.retention_s`` replaces the catalog's retention: finished runs leave the state
    that long after they finished. ``connection``: aiokafka client keyword arguments
    (:meth:`KafkaSettings.client_kwargs`), or a transport (an in-memory cluster's, from
    :mod:`streamcoord.testing`).
    """

    def __init__(
        self,
        specs: Catalog | CatalogSet | SpecSource,
        settings: CoordinatorSettings,
        connection: Transport | Mapping[str, Any],
        *,
        instruments: Instruments = GLOBAL_INSTRUMENTS,
    ) -> None:
        #: Where the partitions' spec versions come from: local files or the specs topic. A
        #: catalog given as such takes the settings' retention (a source built elsewhere was
        #: given it when its catalogs were built).
        if isinstance(specs, Catalog):
            specs = replace(specs, retention=timedelta(seconds=settings.retention_s))
        self.specs: SpecSource = (
            StaticSpecs(specs) if isinstance(specs, Catalog | CatalogSet) else specs
        )
        self._instruments = instruments
        self._gauges = PartitionGauges(instruments)
        self.settings = settings
        self.status = CoordinatorStatus()
        self.transport = as_transport(connection)
        self._lanes: dict[int, PartitionLane] = {}
        self._stopping = False
        # Held while partitions change hands; each lane finishes its transaction in flight
        # before its producer is closed.
        self._lock = asyncio.Lock()
        self._fatal: BaseException | None = None
        self._failed = asyncio.Event()
        self._consumer: GroupConsumer | None = None
        self._group_offsets: dict[TopicPartition, int] = {}  # last positions shown to the group
        self._timer_producer: Producer | None = None
        self._partitions = 0
        self._schedules = ScheduleQueue()
        self._schedule_catalog: Catalog | None = None  # the version the owned schedules are of
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then leave the group cleanly."""
        self.transport.prepare()
        await self.specs.start()
        self._schedule_catalog = self.catalog
        try:
            await self._run(stop)
        finally:
            await self.specs.stop()

    @property
    def catalog(self) -> Catalog:
        """The default spec version (the newest published one)."""
        return self.specs.current().default

    def health(self) -> dict[str, Any]:
        """The status, with the spec version each owned partition runs (for /healthz)."""
        try:
            default: str | None = self.catalog.version
        except RuntimeError:  # the specs topic is still being read
            default = None
        return {
            **self.status.as_dict(),
            "spec_version_default": default,
            "spec_versions": {
                str(lane.partition): lane.spec_version for lane in list(self._lanes.values())
            },
        }

    async def _connect(self, stop: asyncio.Event) -> GroupConsumer | None:
        """Start the group consumer and the timer producer, waiting (bounded) for a broker that
        is not up yet (a member started during a broker restart); None if stopped meanwhile."""
        delay = 0.5
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            # both inputs of a partition number to one member (see the module docstring)
            consumer = self.transport.group_consumer(
                self.settings.group_id, instance_id=self.settings.instance_id,
                max_records=self.settings.max_batch,
            )  # fmt: skip
            producer = self.transport.producer()
            try:
                await producer.start()
                await consumer.start()
            except (TransportError, OSError) as exc:
                await producer.stop()  # half-started clients still hold connections and tasks
                await consumer.stop()
                refused = await self.transport.refusal()
                if refused is not None:  # wrong credentials or CA: waiting will not help
                    raise refused from None
                if attempt == CONNECT_ATTEMPTS:
                    raise
                log.warning(
                    "cannot reach Kafka yet (%s); retrying in %.1fs",
                    exc,
                    delay,
                    extra={"retrying": True},
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return None
                delay = min(delay * 2, 5.0)
                continue
            self._timer_producer = producer
            return consumer
        raise AssertionError("unreachable")

    async def _run(self, stop: asyncio.Event) -> None:
        topics = self.settings.topics
        consumer = await self._connect(stop)
        if consumer is None:
            return
        self._consumer = consumer
        try:
            self._partitions = await self._partition_count(consumer, topics.events)
            internal = await self._partition_count(consumer, topics.internal)
            if internal != self._partitions:
                raise ConfigError(
                    f"{topics.internal} has {internal} partitions and {topics.events} has "
                    f"{self._partitions}: partition N of both is decided together",
                    hint="give both (and the state topic) the same count: edit topics.yaml and "
                    "run `streamcoord topics apply`",
                )
            consumer.subscribe(
                [topics.events, topics.internal], on_revoked=self.release, on_assigned=self.adopt
            )
            self.status.consuming = True
            self.status.not_ready = "waiting for the group to assign partitions"
            showing = asyncio.create_task(self._show_positions(), name="group offsets")
            try:
                await self._loop(consumer, stop)
            finally:
                showing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await showing
        finally:
            self.status.consuming = False
            if self._fatal is None:  # a failure keeps its own reason
                self.status.not_ready = "stopping"
            await self._shutdown(consumer)

    async def _partition_count(self, consumer: GroupConsumer, topic: str) -> int:
        partitions = await consumer.partition_count(topic)
        if partitions:
            return partitions
        raise ConfigError(
            f"topic {topic} does not exist", hint="create it with `streamcoord topics apply`"
        )

    async def _loop(self, consumer: GroupConsumer, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(self._failed.wait())
        try:
            while not stop.is_set() and self._fatal is None:
                fetch = asyncio.ensure_future(
                    consumer.fetch(
                        timeout_ms=self._poll_timeout_ms(), max_records=self.settings.max_batch
                    )
                )
                done, _ = await asyncio.wait(
                    {fetch, stopping, failing}, return_when=asyncio.FIRST_COMPLETED
                )
                if fetch not in done:
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TransportError):
                        await fetch
                    break
                # The consumer may hand out records of a partition whose assignment callback is
                # still restoring it; the lock makes them wait for its lane.
                async with self._lock:
                    self._dispatch(fetch.result())
                await self._fire_due_timers()
                self._follow_schedules()
                if self._gauges.due():
                    self._gauges.record(self.processors(), await self._lag(consumer))
        finally:
            stopping.cancel()
            failing.cancel()
        if self._fatal is not None:
            raise self._fatal

    async def _show_positions(self) -> None:
        """Every few hundred ms, commit the decided positions to the consumer group as well.

        The changelog holds the authoritative positions (committed with each batch's outputs);
        the group's copy is for lag monitors, ``streamcoord status`` and the benchmark, so it is
        written outside the transactions and may trail them by one interval.
        """
        while True:
            await asyncio.sleep(self.settings.group_offsets_interval_s)  # a period, not a wait
            await self._commit_group_offsets(list(self._lanes.values()))

    async def _commit_group_offsets(self, lanes: list[PartitionLane]) -> None:
        consumer = self._consumer
        offsets = {
            tp: position
            for lane in lanes
            for tp, position in lane.committed_offsets().items()
            if self._group_offsets.get(tp) != position
        }
        if consumer is None or not offsets:
            return
        try:
            await asyncio.wait_for(consumer.commit(offsets), self.settings.transaction_timeout_s)
        except (TransportError, TimeoutError) as exc:  # a rebalance or an outage: next time
            log.debug("committing positions to the group failed: %s", exc)
            return
        self._group_offsets.update(offsets)

    def _poll_timeout_ms(self) -> int:
        timeout = self.settings.poll_timeout_ms
        dues = [d for lane in self._lanes.values() if (d := lane.next_timer()) is not None]
        if (tick := self._schedules.next_due()) is not None:
            dues.append(tick)
        if dues:
            wait_ms = (min(dues) - datetime.now(UTC)).total_seconds() * 1000
            timeout = max(0, min(timeout, int(wait_ms)))
        return timeout

    def processors(self) -> list[PartitionProcessor]:
        """The partitions this member owns now, with their state."""
        return [lane.processor for lane in self._lanes.values()]

    def _dispatch(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Hand each partition's records to its lane (none if revoked while fetching: the next
        owner reads them again from the committed offset)."""
        for tp, records in batch.items():
            lane = self._lanes.get(tp.partition)
            if lane is not None and records:
                lane.feed(records)

    async def _lag(self, consumer: GroupConsumer) -> dict[int, int]:
        """Records behind the last stable offset, per owned partition, both inputs together
        (known ones only)."""
        lag: dict[int, int] = {}
        for partition, lane in list(self._lanes.items()):
            for tp in lane.inputs:
                end = consumer.last_stable_offset(tp)
                if end is not None:
                    behind = max(0, end - await consumer.position(tp))
                    lag[partition] = lag.get(partition, 0) + behind
        return lag

    def _retry(self, _: BaseException) -> None:
        self.status.errors += 1

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is not None:  # already stopping: other partitions fail the same way
            log.debug("also failed: %s", exc)
            return
        if isinstance(exc, StreamcoordError):  # says what happened and what to do
            log.error("%s; %s", exc.message, exc.hint or "stopping")
        else:
            log.error("a partition lane failed; stopping", exc_info=exc)
        self.status.not_ready = f"failed: {exc!r}"
        self._fatal = exc
        self._failed.set()

    def _count(self, outcome: BatchOutcome) -> None:
        status = self.status
        status.batches += 1
        status.consumed += outcome.consumed
        status.published += outcome.published
        status.triggered += len(outcome.trigger_event_times)
        status.dead_letters += outcome.dead_letters
        status.forwarded += outcome.forwarded
        status.last_batch_at = time.monotonic()
        record_batch(self._instruments, outcome)

    async def _fire_due_timers(self) -> None:
        """Produce every due timer's and schedule's event; the core dedups refires."""
        now = datetime.now(UTC)
        for lane in list(self._lanes.values()):
            for event in lane.pop_due_timers(now):
                await self._produce_time_event(event)
        for tick in self._schedules.pop_due(now):
            await self._produce_time_event(tick)

    async def _produce_time_event(self, event: CloudEvent) -> None:
        if self._timer_producer is None:
            return
        value, headers = encode(event)
        await self._timer_producer.send(
            self.settings.topics.internal, partition_key_for(event).encode(), value, headers
        )
        self.status.timers_fired += 1

    def _follow_schedules(self) -> None:
        """Own the schedules of the newest spec version once it is published: changed ones tick
        from now on (no catch-up tick: nothing was missed), removed ones stop."""
        catalog, previous = self.catalog, self._schedule_catalog
        if previous is None or catalog is previous:
            return
        self._schedule_catalog = catalog
        owned = set(self._lanes)
        old = set(self._owned_schedules(owned, previous))
        new = self._owned_schedules(owned, catalog)
        changed = {schedule.pipeline for schedule in old.symmetric_difference(new)}
        self._schedules.remove(changed)
        now = datetime.now(UTC)
        for schedule in new:
            if schedule.pipeline in changed:
                self._schedules.add(schedule, now)

    def _owned_schedules(
        self, partitions: set[int], catalog: Catalog | None = None
    ) -> list[Schedule]:
        """Schedules whose ticks land on one of ``partitions`` (so one member ticks each)."""
        epoch = datetime(2000, 1, 1, tzinfo=UTC)  # any time: only the tick's key matters here
        return [
            schedule
            for schedule in schedules_of(catalog or self._schedule_catalog or self.catalog)
            if partition_for(partition_key_for(tick_event(schedule, epoch)), self._partitions)
            in partitions
        ]

    async def adopt(self, assigned: set[TopicPartition]) -> None:
        """Restore each newly assigned partition before any of its records is processed."""
        async with self._lock:
            if self._stopping:  # an assignment that lands while leaving: nothing to take on
                return
            events = self.settings.topics.events
            new = sorted(
                (tp for tp in assigned if tp.topic == events and tp.partition not in self._lanes),
                key=lambda t: t.partition,
            )
            self._check_copartitioned(assigned)
            if new:
                self.status.not_ready = (
                    f"restoring partitions {[tp.partition for tp in new]} from the changelog"
                )
            # Restores overlap: each reads its own changelog partition.
            results = await asyncio.gather(
                *(self._restore(tp) for tp in new), return_exceptions=True
            )
            processors = [r for r in results if isinstance(r, PartitionProcessor)]
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            if failure is not None:
                # The restores that did finish hold transactional producers: close them.
                for processor in processors:
                    with contextlib.suppress(Exception):
                        await processor.close()
                if not isinstance(failure, Exception):
                    raise failure  # cancelled: the member is stopping
                # Owning partitions that are never processed is worse than stopping: exit and
                # let the supervisor start a fresh member.
                self._fail(failure)
                raise failure
            for processor in processors:
                self._lanes[processor.tp.partition] = self._lane(processor)
                if self._consumer is not None:
                    # The changelog's positions are the committed ones; the group's may lag.
                    for tp, offset in processor.next_offsets().items():
                        self._consumer.seek(tp, offset)
                record_restore(self._instruments, processor)
            self.status.assigned = sorted(self._lanes)
            if self._fatal is None:
                self.status.not_ready = None
        now = datetime.now(UTC)
        for schedule in self._owned_schedules({tp.partition for tp in assigned}):
            # A tick missed while no one owned the schedule fires once now (the latest one).
            await self._produce_time_event(self._schedules.add(schedule, now))
        self.ready.set()

    def _check_copartitioned(self, assigned: set[TopicPartition]) -> None:
        """Say so loudly if the group gave this member one input of a partition without the
        other (a member with another assignor, or topics of different sizes)."""
        by_topic: dict[str, set[int]] = {}
        for tp in assigned:
            by_topic.setdefault(tp.topic, set()).add(tp.partition)
        topics = self.settings.topics
        events, internal = by_topic.get(topics.events, set()), by_topic.get(topics.internal, set())
        if events != internal:
            log.error(
                "the group assigned %s partitions %s but %s partitions %s: both inputs of a "
                "partition must go to one member; is another member running with a different "
                "partition_assignment_strategy (an older streamcoord)?",
                topics.events, sorted(events), topics.internal, sorted(internal),
            )  # fmt: skip

    async def _restore(self, tp: TopicPartition) -> PartitionProcessor:
        """Restore one partition, retrying while the broker is unreachable (a restart): an
        assignment that failed would leave the partition owned but never processed."""
        delay = 0.5
        for _ in range(RESTORE_ATTEMPTS - 1):
            try:
                return await self._restore_once(tp)
            # aiokafka asserts ("Did we not perform bootstrap?") when a coordinator lookup
            # meets empty cluster metadata, which a broker restart leaves for a moment.
            except (TransportError, OSError, TimeoutError, AssertionError) as exc:
                log.warning(
                    "restoring %s failed (%s); retrying in %.1fs", tp, exc, delay,
                    extra={"retrying": True},
                )  # fmt: skip
                await asyncio.sleep(delay)  # backoff while the broker comes back
                delay = min(delay * 2, 5.0)
        return await self._restore_once(tp)

    async def _restore_once(self, tp: TopicPartition) -> PartitionProcessor:
        return await PartitionProcessor.restore(
            tp, self._partitions, self.specs, self.settings, self.transport
        )

    def _lane(self, processor: PartitionProcessor) -> PartitionLane:
        assert self._consumer is not None
        return PartitionLane(
            processor, self._consumer, max_batch=self.settings.max_batch,
            on_outcome=self._count, on_retry=self._retry, on_fatal=self._fail,
        )  # fmt: skip

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Close the producers of partitions handed to another member (after the open batch)."""
        if revoked and self._fatal is None:
            self.status.not_ready = "rebalancing: waiting for the group's new assignment"
        async with self._lock:
            closed = []
            for tp in revoked:
                lane = self._lanes.pop(tp.partition, None)
                if lane is not None:
                    await lane.release()
                    closed.append(lane)
            await self._commit_group_offsets(closed)
            for lane in closed:
                for input_tp in lane.inputs:
                    self._group_offsets.pop(input_tp, None)
            self.status.assigned = sorted(self._lanes)
        gone = self._owned_schedules({tp.partition for tp in revoked})
        self._schedules.remove(schedule.pipeline for schedule in gone)

    async def _shutdown(self, consumer: GroupConsumer) -> None:
        # Lanes first: each finishes its transaction in flight (records still queued were not
        # committed and go to the next owner). Then leave the group.
        # A stop that is cancelled half-way (a supervisor's timeout) still closes every client:
        # a transactional producer left open keeps its connections and tasks.
        cancelled: asyncio.CancelledError | None = None
        async with self._lock:
            # From here on an assignment callback (a rebalance racing the stop) adopts nothing:
            # lanes it made now would outlive the member, producers open.
            self._stopping = True
            for lane in list(self._lanes.values()):
                try:
                    await lane.release()
                except asyncio.CancelledError as exc:
                    cancelled = exc
            if cancelled is None:
                with contextlib.suppress(Exception):
                    await self._commit_group_offsets(list(self._lanes.values()))
            self._lanes.clear()
            self.status.assigned = []
        for client in (consumer, self._timer_producer):
            if client is None:
                continue
            try:
                await client.stop()
            except asyncio.CancelledError as exc:
                cancelled = exc
            except Exception:  # noqa: S110 - leaving anyway; the broker may be gone
                pass
        if cancelled is not None:
            raise cancelled
