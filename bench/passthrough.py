"""The baselines: consume -> produce with the coordinator's batching and no coordinator logic.

Plain: one idempotent ``acks=all`` producer, offsets committed by the consumer per batch.
Transactional: one transactional producer per partition, one transaction per batch with
``send_offsets_to_transaction``, exactly as :class:`~streamcoord.runtime.PartitionWorker` does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.measure import Drain


async def passthrough(
    bootstrap: str, source: str, sink: str, group: str, ends: dict[TopicPartition, int],
    *, transactional: bool, max_batch: int = 500, deadline_s: float = 120.0,
    on_progress: Any = None,
) -> Drain:
    total = sum(ends.values())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed",
        max_poll_records=max_batch,
    )  # fmt: skip
    await consumer.start()
    consumer.assign(list(ends))
    producers: dict[int, AIOKafkaProducer] = {}
    for tp in ends if transactional else [TopicPartition(source, -1)]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2,
            transactional_id=f"{group}.{tp.partition}" if transactional else None,
        )  # fmt: skip
        await producer.start()
        producers[tp.partition] = producer
    drain = Drain(total)
    done = 0
    first: float | None = None
    started = time.perf_counter()
    try:
        while done < total and time.perf_counter() - started < deadline_s:
            batch = await consumer.getmany(timeout_ms=200, max_records=max_batch)
            for tp, records in sorted(batch.items(), key=lambda item: item[0].partition):
                if not records:
                    continue
                if first is None:
                    first = time.perf_counter()
                producer = producers[tp.partition if transactional else -1]
                await _forward(consumer, producer, tp, records, sink, group, transactional)
                done += len(records)
                drain.samples.append((time.perf_counter() - first, done))
                if on_progress is not None:
                    on_progress(done)
    finally:
        for producer in producers.values():
            await producer.stop()
        await consumer.stop()
    drain.seconds = drain.samples[-1][0] if drain.samples else 0.0
    return drain


async def _forward(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, tp: TopicPartition,
    records: list[Any], sink: str, group: str, transactional: bool,
) -> None:
    offsets = {tp: records[-1].offset + 1}
    if transactional:
        await producer.begin_transaction()
    sends = [
        await producer.send(sink, key=r.key, value=r.value, headers=list(r.headers or ()))
        for r in records
    ]
    if transactional:
        await producer.send_offsets_to_transaction(offsets, group)
        await asyncio.gather(*sends)
        await producer.commit_transaction()
    else:
        await asyncio.gather(*sends)
        await consumer.commit(offsets)
