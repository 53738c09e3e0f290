"""The baseline of each Kafka client: consume -> produce exactly once through the runtime's ports.

The same path as the coordinator's, with its clients (``Transport``: aiokafka or confluent-kafka)
and without its decisions: one group consumer, a task per partition taking batches of up to 500
queued records, one transactional sink per partition and one transaction per batch holding the
records (placed by key through the coordinator's :class:`~streamcoord.runtime.outbox.Outbox`) and
the position record. What a coordinator costs more per event than this is decoding, deciding and
encoding; what this costs more than the raw aiokafka baseline (``bench/passthrough.py``) is the
ports' adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from bench.measure import Drain
from streamcoord.kafka.ports import Record, TopicPartition, TransactionalSink, Transport
from streamcoord.runtime.changelog import POSITION_KEY, position_value
from streamcoord.runtime.outbox import Outbox

__all__ = ["ports_passthrough"]


class _Partition:
    """Forwards one partition's queued records, a transaction per batch."""

    def __init__(
        self, sink: TransactionalSink, topic: str, partition: int, *, max_batch: int,
        counted: Callable[[int], None], failed: Callable[[BaseException], None],
    ) -> None:  # fmt: skip
        self._sink = sink
        self._topic = topic
        self._partition = partition
        self._max_batch = max_batch
        self._counted = counted
        self._failed = failed
        self.queue: deque[Record] = deque()
        self.wakeup = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while self.queue:
                    count = min(self._max_batch, len(self.queue))
                    await self._forward([self.queue.popleft() for _ in range(count)])
                    self._counted(count)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._failed(exc)

    async def _forward(self, records: list[Record]) -> None:
        outbox = Outbox()
        for record in records:
            outbox.add(self._topic, record.key, record.value, record.headers)
        outbox.add(
            self._topic, POSITION_KEY.encode(), position_value(records[-1].offset + 1),
            partition=self._partition,
        )  # fmt: skip
        await self._sink.begin()
        await outbox.flush(self._sink)
        await self._sink.commit()


async def ports_passthrough(
    transport: Transport,
    source: str,
    sink: str,
    group: str,
    ends: Mapping[tuple[str, int], int],
    *,
    max_batch: int = 500,
    deadline_s: float = 120.0,
    on_progress: Callable[[int], None] | None = None,
) -> Drain:
    """Forward every record of ``source`` up to ``ends`` into ``sink``, timed from the first
    forwarded batch."""
    progress = _Progress(sum(ends.values()), on_progress)
    transport.prepare()
    sinks = {p: transport.transactional_sink(f"{group}.{p}", timeout_s=10) for _, p in sorted(ends)}
    for started_sink in sinks.values():
        await started_sink.start()
    partitions = {
        p: _Partition(one, sink, p, max_batch=max_batch, counted=progress.counted,
                      failed=progress.failed)
        for p, one in sinks.items()
    }  # fmt: skip
    consumer = transport.group_consumer(group, instance_id=None, max_records=max_batch)

    async def nothing(_: set[TopicPartition]) -> None:
        pass

    consumer.subscribe([source], on_revoked=nothing, on_assigned=nothing)
    await consumer.start()
    started = time.perf_counter()
    try:
        while not progress.finished.is_set() and time.perf_counter() - started < deadline_s:
            batch = await consumer.fetch(timeout_ms=100, max_records=max_batch)
            for tp, records in batch.items():
                if records:
                    _feed(partitions[tp.partition], records)
        if progress.failures:
            raise progress.failures[0]
    finally:
        for forwarder in partitions.values():
            forwarder.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder.task
        await consumer.stop()
        for stopped_sink in sinks.values():
            await stopped_sink.stop()
    drain = progress.drain
    drain.seconds = drain.samples[-1][0] if drain.samples else 0.0
    return drain


class _Progress:
    """Forwarded records counted over time; finished when all are, or one partition failed."""

    def __init__(self, total: int, on_progress: Callable[[int], None] | None) -> None:
        self.drain = Drain(total)
        self.finished = asyncio.Event()
        self.failures: list[BaseException] = []
        self._on_progress = on_progress
        self._done = 0
        self._first: float | None = None

    def counted(self, forwarded: int) -> None:
        now = time.perf_counter()
        if self._first is None:
            self._first = now
        self._done += forwarded
        self.drain.samples.append((now - self._first, self._done))
        if self._on_progress is not None:
            self._on_progress(self._done)
        if self._done >= self.drain.total:
            self.finished.set()

    def failed(self, exc: BaseException) -> None:
        self.failures.append(exc)
        self.finished.set()


def _feed(partition: _Partition, records: Sequence[Record]) -> None:
    partition.queue.extend(records)
    partition.wakeup.set()
