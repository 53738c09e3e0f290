"""The partitions a member owns: a lane each, restored before any of its records is processed.

A partition the group assigns is restored from the changelog (its state, timers and committed
positions), retried while the broker is unreachable, and then gets a
:class:`~streamcoord.runtime.lane.PartitionLane` that the fetched records are dispatched to. A
partition handed to another member is released: its lane finishes the transaction in flight
and its producer is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from streamcoord.kafka.ports import GroupConsumer, Record, TopicPartition, Transport, TransportError
from streamcoord.runtime.batch import BatchOutcome
from streamcoord.runtime.lane import PartitionLane
from streamcoord.runtime.observer import BatchObserver
from streamcoord.runtime.partition import PartitionProcessor
from streamcoord.runtime.settings import CoordinatorSettings
from streamcoord.runtime.specs import SpecSource

__all__ = ["RESTORE_ATTEMPTS", "LaneCallbacks", "OwnedPartitions"]

log = logging.getLogger(__name__)

#: Tries to restore a newly assigned partition before giving up (about five minutes in all).
RESTORE_ATTEMPTS = 64


@dataclass(frozen=True)
class LaneCallbacks:
    """What a lane reports: a committed batch, a batch to retry, a failure that stops."""

    on_outcome: Callable[[BatchOutcome], None]
    on_retry: Callable[[BaseException], None]
    on_fatal: Callable[[BaseException], None]


class OwnedPartitions:
    """The lanes of the partitions this member owns, by partition number."""

    def __init__(
        self,
        specs: SpecSource,
        settings: CoordinatorSettings,
        transport: Transport,
        observer: BatchObserver,
        callbacks: LaneCallbacks,
    ) -> None:
        self._specs = specs
        self._settings = settings
        self._transport = transport
        self._observer = observer
        self._callbacks = callbacks
        self._lanes: dict[int, PartitionLane] = {}
        #: The number of partitions of each input (known once connected).
        self.partitions = 0

    def __contains__(self, partition: int) -> bool:
        return partition in self._lanes

    def numbers(self) -> list[int]:
        """The owned partition numbers, sorted."""
        return sorted(self._lanes)

    def lanes(self) -> list[PartitionLane]:
        """The lanes of the moment (a copy: partitions change hands meanwhile)."""
        return list(self._lanes.values())

    def processors(self) -> list[PartitionProcessor]:
        """The partitions this member owns now, with their state."""
        return [lane.processor for lane in self._lanes.values()]

    def spec_versions(self) -> dict[str, str]:
        """The spec version each owned partition starts new runs with."""
        return {str(lane.partition): lane.spec_version for lane in self.lanes()}

    def active_runs(self) -> int:
        """Active and queued runs over every owned partition."""
        return sum(lane.active_runs() for lane in self.lanes())

    def dispatch(self, batch: Mapping[TopicPartition, Sequence[Record]]) -> None:
        """Hand each partition's records to its lane (none if revoked while fetching: the next
        owner reads them again from the committed offset)."""
        for tp, records in batch.items():
            lane = self._lanes.get(tp.partition)
            if lane is not None and records:
                lane.feed(records)

    async def lag(self, consumer: GroupConsumer) -> dict[int, int]:
        """Records behind the last stable offset, per owned partition, both inputs together
        (known ones only)."""
        lag: dict[int, int] = {}
        for lane in self.lanes():
            for tp in lane.inputs:
                end = consumer.last_stable_offset(tp)
                if end is not None:
                    behind = max(0, end - await consumer.position(tp))
                    lag[lane.partition] = lag.get(lane.partition, 0) + behind
        return lag

    async def restore(self, new: Sequence[TopicPartition]) -> list[PartitionProcessor]:
        """Restore ``new`` partitions (overlapping: each reads its own changelog partition).

        If one fails, the others' producers are closed and the failure raised.
        """
        results = await asyncio.gather(*(self._restore(tp) for tp in new), return_exceptions=True)
        processors = [r for r in results if isinstance(r, PartitionProcessor)]
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            # The restores that did finish hold transactional producers: close them.
            for processor in processors:
                with contextlib.suppress(Exception):
                    await processor.close()
            raise failure
        return processors

    def add(self, processor: PartitionProcessor, consumer: GroupConsumer) -> None:
        """Start the lane of a restored partition, from the changelog's positions (the
        committed ones; the group's may lag)."""
        callbacks = self._callbacks
        self._lanes[processor.tp.partition] = lane = PartitionLane(
            processor, consumer, max_batch=self._settings.max_batch,
            on_outcome=callbacks.on_outcome, on_retry=callbacks.on_retry,
            on_fatal=callbacks.on_fatal,
        )  # fmt: skip
        for tp, offset in lane.committed_offsets().items():
            consumer.seek(tp, offset)
        self._observer.restored(lane.partition, lane.restore_seconds)

    async def release(self, partitions: set[int]) -> list[PartitionLane]:
        """Close the lanes of ``partitions`` (each after its transaction in flight)."""
        closed = []
        for partition in partitions:
            lane = self._lanes.pop(partition, None)
            if lane is not None:
                await lane.release()
                closed.append(lane)
        return closed

    async def release_all(self) -> asyncio.CancelledError | None:
        """Close every lane, even if cancelled half-way (then returns the cancellation): a
        transactional producer left open keeps its connections and tasks."""
        cancelled: asyncio.CancelledError | None = None
        for lane in self.lanes():
            try:
                await lane.release()
            except asyncio.CancelledError as exc:
                cancelled = exc
        return cancelled

    def clear(self) -> None:
        self._lanes.clear()

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
            tp, self.partitions, self._specs, self._settings, self._transport,
            observer=self._observer,
        )  # fmt: skip
