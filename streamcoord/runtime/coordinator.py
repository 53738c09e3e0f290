"""The coordinator service: one consumer group member, many partition processors, durable timers.

The member is put together from parts with one job each: group membership and the positions it
shows the group (:mod:`~streamcoord.runtime.membership`), the partitions it owns and their lanes
(:mod:`~streamcoord.runtime.ownership`), time as events (:mod:`~streamcoord.runtime.time_events`)
and its status (:mod:`~streamcoord.runtime.status`). This module holds the run loop, which
fetches records and hands them to the lanes, and the assignment callbacks, which move partitions
between members. Telemetry observes the batches through a
:class:`~streamcoord.runtime.observer.BatchObserver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from streamcoord.core import Catalog, CatalogSet
from streamcoord.errors import StreamcoordError
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import (
    GroupConsumer,
    Producer,
    TopicPartition,
    Transport,
    TransportError,
)
from streamcoord.runtime.batch import BatchOutcome
from streamcoord.runtime.membership import (
    GroupOffsets,
    check_copartitioned,
    connect,
    partition_count,
)
from streamcoord.runtime.observer import BatchObserver
from streamcoord.runtime.ownership import LaneCallbacks, OwnedPartitions
from streamcoord.runtime.partition import PartitionProcessor
from streamcoord.runtime.settings import CoordinatorSettings
from streamcoord.runtime.specs import SpecSource, StaticSpecs
from streamcoord.runtime.status import CoordinatorStatus
from streamcoord.runtime.telemetry import CoordinatorTelemetry
from streamcoord.runtime.time_events import TimeEvents
from streamcoord.runtime.tracing import coordinator_tracing
from streamcoord.telemetry.metrics import GLOBAL_INSTRUMENTS, Instruments

__all__ = ["Coordinator", "CoordinatorStatus"]

log = logging.getLogger(__name__)


class Coordinator:
    """Consume events, decide with the pure core, commit each batch exactly once.

    ``settings.retention_s`` replaces the catalog's retention: finished runs leave the state
    that long after they finished. ``connection``: aiokafka client keyword arguments
    (:meth:`KafkaSettings.client_kwargs`), or a transport (an in-memory cluster's, from
    :mod:`streamcoord.testing`). ``observer`` sees the batches (default: OpenTelemetry metrics
    into ``instruments``, and traces when a tracer provider is configured).
    """

    def __init__(
        self,
        specs: Catalog | CatalogSet | SpecSource,
        settings: CoordinatorSettings,
        connection: Transport | Mapping[str, Any],
        *,
        instruments: Instruments = GLOBAL_INSTRUMENTS,
        observer: BatchObserver | None = None,
    ) -> None:
        #: Where the partitions' spec versions come from: local files or the specs topic. A
        #: catalog given as such takes the settings' retention (a source built elsewhere was
        #: given it when its catalogs were built).
        if isinstance(specs, Catalog):
            specs = replace(specs, retention=timedelta(seconds=settings.retention_s))
        self.specs: SpecSource = (
            StaticSpecs(specs) if isinstance(specs, Catalog | CatalogSet) else specs
        )
        self.settings = settings
        self.status = CoordinatorStatus()
        self.transport = as_transport(connection)
        self._observer = observer or CoordinatorTelemetry(
            instruments, coordinator_tracing(settings.group_id)
        )
        callbacks = LaneCallbacks(self._count, self._retry, self._fail)
        self._owned = OwnedPartitions(
            self.specs, settings, self.transport, self._observer, callbacks
        )
        self._time = TimeEvents(settings, lambda: self.catalog, self._time_event_produced)
        self._group = GroupOffsets(settings)
        self._stopping = False
        # Held while partitions change hands; each lane finishes its transaction in flight
        # before its producer is closed.
        self._lock = asyncio.Lock()
        self._fatal: BaseException | None = None
        self._failed = asyncio.Event()
        self._consumer: GroupConsumer | None = None
        self._producer: Producer | None = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then leave the group cleanly."""
        self.transport.prepare()
        await self.specs.start()
        self._time.start()
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
            "spec_versions": self._owned.spec_versions(),
        }

    def processors(self) -> list[PartitionProcessor]:
        """The partitions this member owns now, with their state."""
        return self._owned.processors()

    # --- the run loop ------------------------------------------------------------------------

    async def _run(self, stop: asyncio.Event) -> None:
        clients = await connect(self.transport, self.settings, stop)
        if clients is None:
            return
        consumer, self._producer = clients
        self._consumer = self._group.consumer = consumer
        self._time.attach(self._producer)
        try:
            partitions = await partition_count(consumer, self.settings.topics)
            self._owned.partitions = self._time.partitions = partitions
            topics = self.settings.topics
            consumer.subscribe(
                [topics.events, topics.internal], on_revoked=self.release, on_assigned=self.adopt
            )
            self.status.consuming = True
            self.status.not_ready = "waiting for the group to assign partitions"
            showing = asyncio.create_task(
                self._group.show_every_interval(self._owned.lanes), name="group offsets"
            )
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

    async def _loop(self, consumer: GroupConsumer, stop: asyncio.Event) -> None:
        """Fetch, hand the records to the lanes, fire due time events, follow new spec
        versions' schedules, let telemetry look now and then; until stopped or failed."""
        stopping = asyncio.ensure_future(stop.wait())
        failing = asyncio.ensure_future(self._failed.wait())
        try:
            while not stop.is_set() and self._fatal is None:
                timeout_ms = self._time.poll_timeout_ms(
                    self._owned.lanes(), self.settings.poll_timeout_ms
                )
                fetch = asyncio.ensure_future(
                    consumer.fetch(timeout_ms=timeout_ms, max_records=self.settings.max_batch)
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
                    self._owned.dispatch(fetch.result())
                await self._time.fire_due(self._owned.lanes())
                self._time.follow(set(self._owned.numbers()))
                if self._observer.sampling_due():
                    lag = await self._owned.lag(consumer)
                    self._observer.sample(self._owned.active_runs(), lag)
        finally:
            stopping.cancel()
            failing.cancel()
        if self._fatal is not None:
            raise self._fatal

    # --- what the lanes report ---------------------------------------------------------------

    def _count(self, outcome: BatchOutcome) -> None:
        self.status.count(outcome)

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

    def _time_event_produced(self) -> None:
        self.status.timers_fired += 1

    # --- partitions changing hands -----------------------------------------------------------

    async def adopt(self, assigned: set[TopicPartition]) -> None:
        """Restore each newly assigned partition before any of its records is processed."""
        async with self._lock:
            if self._stopping:  # an assignment that lands while leaving: nothing to take on
                return
            events = self.settings.topics.events
            new = sorted(
                (tp for tp in assigned if tp.topic == events and tp.partition not in self._owned),
                key=lambda t: t.partition,
            )
            check_copartitioned(assigned, self.settings.topics)
            if new:
                self.status.not_ready = (
                    f"restoring partitions {[tp.partition for tp in new]} from the changelog"
                )
            try:
                processors = await self._owned.restore(new)
            except Exception as failure:
                # Owning partitions that are never processed is worse than stopping: exit and
                # let the supervisor start a fresh member.
                self._fail(failure)
                raise
            assert self._consumer is not None
            for processor in processors:
                self._owned.add(processor, self._consumer)
            self.status.assigned = self._owned.numbers()
            if self._fatal is None:
                self.status.not_ready = None
        now = datetime.now(UTC)
        # A tick missed while no one owned the schedule fires once now (the latest one).
        for tick in self._time.own({tp.partition for tp in assigned}, now):
            await self._time.produce(tick)
        self.ready.set()

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Close the producers of partitions handed to another member (after the open batch)."""
        if revoked and self._fatal is None:
            self.status.not_ready = "rebalancing: waiting for the group's new assignment"
        partitions = {tp.partition for tp in revoked}
        async with self._lock:
            closed = await self._owned.release(partitions)
            await self._group.show(closed)
            self._group.forget(closed)
            self.status.assigned = self._owned.numbers()
        self._time.disown(partitions)

    async def _shutdown(self, consumer: GroupConsumer) -> None:
        # Lanes first: each finishes its transaction in flight (records still queued were not
        # committed and go to the next owner). Then leave the group.
        # A stop that is cancelled half-way (a supervisor's timeout) still closes every client:
        # a transactional producer left open keeps its connections and tasks.
        async with self._lock:
            # From here on an assignment callback (a rebalance racing the stop) adopts nothing:
            # lanes it made now would outlive the member, producers open.
            self._stopping = True
            cancelled = await self._owned.release_all()
            if cancelled is None:
                with contextlib.suppress(Exception):
                    await self._group.show(self._owned.lanes())
            self._owned.clear()
            self.status.assigned = []
        for client in (consumer, self._producer):
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
