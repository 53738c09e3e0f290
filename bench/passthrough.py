"""The baselines: consume -> produce with the coordinator's batching and no coordinator logic.

All run through the coordinator's own :class:`~streamcoord.runtime.lane.PartitionLane` (a lane
per partition, batches of up to 500 records). Plain: one idempotent ``acks=all`` producer, the
batch's offset committed to the group after its records are acknowledged (at-least-once).
Transactional: one transactional producer per partition, one transaction per batch holding the
records and the position record, exactly as :class:`~streamcoord.runtime.PartitionProcessor`
commits. Records are handed to the producer either one ``send()`` each (the usual aiokafka loop)
or as record batches through :class:`~streamcoord.runtime.outbox.Outbox`, the coordinator's own
path; the second leaves decoding, deciding and encoding as the only difference to a coordinator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.measure import Drain
from streamcoord.kafka.client import write_batches
from streamcoord.kafka.ports import OutRecord
from streamcoord.kafka.transactions import cap_concurrent_transactions_backoff
from streamcoord.runtime.changelog import POSITION_KEY, position_value
from streamcoord.runtime.lane import PartitionLane
from streamcoord.runtime.outbox import Outbox
from streamcoord.runtime.settings import TRANSACTION_RETRY_BACKOFF_MS


class _Forwarder:
    """Stands in for a PartitionProcessor: forwards each batch as it is."""

    def __init__(
        self, tp: TopicPartition, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer,
        sink: str, *, transactional: bool, batches: bool,
    ) -> None:  # fmt: skip
        self.tp = tp
        self.position: int | None = None
        self._producer = producer
        self._consumer = consumer
        self._sink = sink
        self._transactional = transactional
        self._batches = batches

    @property
    def internal_tp(self) -> TopicPartition:
        return self.tp  # one input: the lane's second input is the same partition

    def next_offsets(self) -> dict[TopicPartition, int]:
        return {} if self.position is None else {self.tp: self.position}

    async def process(self, records: list[Any]) -> int:
        next_offset = records[-1].offset + 1
        if self._transactional:
            await self._producer.begin_transaction()
        await asyncio.gather(*await self._send(records, next_offset))
        if self._transactional:
            await self._producer.commit_transaction()
        else:
            await self._consumer.commit({self.tp: next_offset})
        self.position = next_offset
        return len(records)

    async def _send(self, records: list[Any], next_offset: int) -> list[Any]:
        position = (POSITION_KEY.encode(), position_value(next_offset))
        if not self._batches:
            sends = [
                await self._producer.send(self._sink, key=r.key, value=r.value,
                                          headers=list(r.headers or ()))
                for r in records
            ]  # fmt: skip
            if self._transactional:
                sends.append(await self._producer.send(
                    self._sink, key=position[0], value=position[1], partition=self.tp.partition
                ))  # fmt: skip
            return sends
        outbox = Outbox()
        for record in records:
            outbox.add(self._sink, record.key, record.value, record.headers or ())
        if self._transactional:
            outbox.add(self._sink, *position, partition=self.tp.partition)
        batches = _Batches(self._producer)
        await outbox.flush(batches)
        return batches.futures


class _Batches:
    """The outbox's writer over a plain producer: record batches, their delivery futures kept."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self.futures: list[Any] = []

    async def partition_count(self, topic: str) -> int:
        return len(await self._producer.partitions_for(topic))

    async def write(self, records: Mapping[tuple[str, int], Sequence[OutRecord]]) -> None:
        self.futures.extend(await write_batches(self._producer, records))


async def _producers(
    bootstrap: str,
    source: str,
    group: str,
    ends: dict[TopicPartition, int],
    *,
    transactional: bool,
) -> dict[int, AIOKafkaProducer]:
    """One transactional producer per partition (as the coordinator has), else one for all
    (under key -1)."""
    producers: dict[int, AIOKafkaProducer] = {}
    for tp in ends if transactional else [TopicPartition(source, -1)]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=0,
            transactional_id=f"{group}.{tp.partition}" if transactional else None,
            retry_backoff_ms=TRANSACTION_RETRY_BACKOFF_MS if transactional else 100,
        )  # fmt: skip
        await producer.start()
        producers[tp.partition] = producer
    return producers


async def _pump(
    consumer: AIOKafkaConsumer,
    lanes: dict[TopicPartition, PartitionLane],
    finished: asyncio.Event,
    deadline_s: float,
    max_batch: int,
) -> None:
    """Feed each lane its records until ``finished`` or the deadline."""
    started = time.perf_counter()
    while not finished.is_set() and time.perf_counter() - started < deadline_s:
        batch = await consumer.getmany(timeout_ms=100, max_records=max_batch)
        for tp, records in batch.items():
            if records:
                lanes[tp].feed(records)


async def passthrough(
    bootstrap: str,
    source: str,
    sink: str,
    group: str,
    ends: dict[TopicPartition, int],
    *,
    transactional: bool,
    batches: bool,
    max_batch: int = 500,
    deadline_s: float = 120.0,
    on_progress: Any = None,
) -> Drain:
    total = sum(ends.values())
    if transactional:  # as the coordinator does
        cap_concurrent_transactions_backoff(TRANSACTION_RETRY_BACKOFF_MS / 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
        max_poll_records=max_batch,
    )  # fmt: skip
    await consumer.start()
    consumer.assign(list(ends))
    producers = await _producers(bootstrap, source, group, ends, transactional=transactional)
    drain = Drain(total)
    finished = asyncio.Event()
    failures: list[BaseException] = []
    done = 0
    first: float | None = None

    def counted(forwarded: int) -> None:
        nonlocal done, first
        now = time.perf_counter()
        if first is None:
            first = now
        done += forwarded
        drain.samples.append((now - first, done))
        if on_progress is not None:
            on_progress(done)
        if done >= total:
            finished.set()

    def failed(exc: BaseException) -> None:
        failures.append(exc)
        finished.set()

    lanes = {
        tp: PartitionLane(
            # duck-typed: a lane only calls the worker's batch method, and hands what it
            # returns (here a count of forwarded records) to on_outcome
            cast(
                Any,
                _Forwarder(
                    tp,
                    producers[tp.partition if transactional else -1],
                    consumer,
                    sink,
                    transactional=transactional,
                    batches=batches,
                ),
            ),
            consumer,
            max_batch=max_batch,
            on_outcome=cast(Any, counted),
            on_retry=lambda _: None,
            on_fatal=failed,
        )
        for tp in ends
    }
    try:
        await _pump(consumer, lanes, finished, deadline_s, max_batch)
        if failures:
            raise failures[0]
    finally:
        for lane in lanes.values():
            await lane.close()
        for producer in producers.values():
            await producer.stop()
        await consumer.stop()
    drain.seconds = drain.samples[-1][0] if drain.samples else 0.0
    return drain
