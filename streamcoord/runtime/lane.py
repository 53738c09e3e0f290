"""One partition's lane: its records, in order, one transaction at a time, at its own pace.

The consumer fetches for every owned partition; each lane takes what was fetched for its
partition of both inputs (the events topic and the internal topic), in the order it was fetched,
and commits it as soon as its previous transaction is done. A slow commit on one
partition therefore never holds back another, and while a transaction is in flight the next
records queue up and go into the next, larger transaction. A lane that falls too far behind
pauses its partition's fetching until it has caught up.

The lane only takes records at or after the position it expects next of each input: records the
consumer
fetched from the group's offset before the coordinator moved it to the changelog's position (or
before a rewind) were already decided, or will be fetched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime

from streamcoord.events.models import TimerFired
from streamcoord.kafka.ports import GroupConsumer, Record, TopicPartition, TransportError
from streamcoord.runtime.batch import BatchOutcome
from streamcoord.runtime.partition import PartitionProcessor

__all__ = ["PartitionLane"]

log = logging.getLogger(__name__)


class PartitionLane:
    """Feeds one :class:`PartitionProcessor` from the shared consumer."""

    def __init__(
        self,
        processor: PartitionProcessor,
        consumer: GroupConsumer,
        *,
        max_batch: int,
        on_outcome: Callable[[BatchOutcome], None],
        on_retry: Callable[[BaseException], None],
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.processor = processor
        self._consumer = consumer
        self._max_batch = max_batch
        self._high_water = 4 * max_batch
        self._on_outcome = on_outcome
        self._on_retry = on_retry
        self._on_fatal = on_fatal
        self._buffer: deque[Record] = deque()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._paused = False
        # the next offset to take of each input; None: any
        self._expected: dict[str, int | None] = {
            tp.topic: offset for tp, offset in self.positions().items()
        }
        self._task = asyncio.create_task(self._run(), name=f"lane {processor.tp}")

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def partition(self) -> int:
        """The partition number of both inputs."""
        return self.processor.tp.partition

    @property
    def tp(self) -> TopicPartition:
        """The events partition (the internal one has the same number)."""
        return self.processor.tp

    @property
    def spec_version(self) -> str:
        """The spec version new runs of this partition start with."""
        return self.processor.spec_version

    def committed_offsets(self) -> dict[TopicPartition, int]:
        """The committed next offset of each input that has one."""
        return self.processor.next_offsets()

    def next_timer(self) -> datetime | None:
        """When the partition's earliest armed timer is due."""
        return self.processor.next_timer()

    def pop_due_timers(self, now: datetime) -> list[TimerFired]:
        """Disarm and return the timers due at ``now``, earliest first."""
        return self.processor.pop_due_timers(now)

    def active_runs(self) -> int:
        """Runs of the partition that are active or queued."""
        return self.processor.active_runs()

    @property
    def restore_seconds(self) -> float:
        """How long the partition took to restore from the changelog."""
        return self.processor.restore_seconds

    @property
    def inputs(self) -> tuple[TopicPartition, TopicPartition]:
        """The events partition and the internal partition this lane consumes."""
        return self.processor.tp, self.processor.internal_tp

    def positions(self) -> dict[TopicPartition, int | None]:
        """The committed next offset of each input (None: never committed)."""
        committed = self.processor.next_offsets()
        return {tp: committed.get(tp) for tp in self.inputs}

    def feed(self, records: Sequence[Record]) -> None:
        """Queue freshly fetched records of one input; pause fetching while too many wait."""
        topic = records[0].topic
        expected = self._expected.get(topic)
        if expected is not None and records[0].offset < expected:
            records = [record for record in records if record.offset >= expected]
            if not records:
                return
        self._expected[topic] = records[-1].offset + 1
        self._buffer.extend(records)
        self._wakeup.set()
        if len(self._buffer) >= self._high_water and not self._paused:
            self._consumer.pause(*self.inputs)
            self._paused = True

    async def close(self) -> None:
        """Finish the transaction in flight, then stop; queued records stay uncommitted."""
        self._closing = True
        self._wakeup.set()
        await self._task

    async def release(self) -> None:
        """:meth:`close`, then close the processor's producer whatever that did: a lane that failed
        must not leave a transactional producer (and its connections) behind."""
        try:
            await self.close()
        except Exception:
            log.warning("closing the lane of %s failed", self.tp, exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await self.processor.close()

    async def _run(self) -> None:
        while not self._closing:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._buffer and not self._closing:
                await self._process(self._take())

    def _take(self) -> list[Record]:
        count = min(self._max_batch, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(count)]
        if self._paused and len(self._buffer) < self._max_batch:
            self._consumer.resume(*self.inputs)
            self._paused = False
        return batch

    async def _process(self, batch: list[Record]) -> None:
        try:
            outcome = await self.processor.process(batch)
        except (TransportError, TimeoutError) as exc:
            # Decide the same records again from the committed state: drop what was queued
            # behind them and fetch again from the first of them.
            log.warning(
                "batch on %s failed (%s); deciding it again", self.tp, exc,
                extra={"retrying": True},
            )  # fmt: skip
            self._on_retry(exc)
            self._rewind([*batch, *self._buffer])
            self._buffer.clear()
            if self._paused:
                self._consumer.resume(*self.inputs)
                self._paused = False
        except Exception as exc:  # a bug: stop the coordinator rather than spin on it
            self._closing = True
            self._on_fatal(exc)
        else:
            self._on_outcome(outcome)

    def _rewind(self, dropped: Sequence[Record]) -> None:
        """Fetch every dropped record again: from the first dropped one of each input."""
        first: dict[str, int] = {}
        for record in dropped:
            first[record.topic] = min(first.get(record.topic, record.offset), record.offset)
        for tp in self.inputs:
            if tp.topic in first:
                self._consumer.seek(tp, first[tp.topic])
                self._expected[tp.topic] = first[tp.topic]
