"""Reading a topic from its beginning to its last stable offset (run records, dead letters)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streamcoord.errors import ConfigError
from streamcoord.kafka.refusal import refusal

__all__ = ["StoredRecord", "TopicContents", "read_topic", "topic_partitions"]


@dataclass(frozen=True)
class StoredRecord:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic``; a fresh client knows no topics until it asks the broker."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ConfigError(
            f"topic {topic} does not exist", hint="create it with `streamcoord topics apply`"
        )
    return [TopicPartition(topic, p) for p in sorted(partitions)]


@dataclass(frozen=True)
class TopicContents:
    partitions: int
    records: list[StoredRecord]


async def read_topic(
    client_kwargs: Mapping[str, Any], topic: str, *, deadline_s: float = 60.0
) -> TopicContents:
    """Every committed record of ``topic``, partition by partition in offset order."""
    started = time.monotonic()
    consumer = AIOKafkaConsumer(
        **client_kwargs,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
    except KafkaError:
        await consumer.stop()
        refused = await refusal(client_kwargs)
        if refused is not None:
            raise refused from None
        raise
    records: list[StoredRecord] = []
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
        while pending:
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"reading {topic} took over {deadline_s:.0f}s")
            batch = await consumer.getmany(*pending, timeout_ms=500)
            for tp, messages in batch.items():
                records.extend(
                    StoredRecord(
                        tp.partition, m.offset, m.timestamp, m.key, m.value, list(m.headers or ())
                    )
                    for m in messages
                )
            pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
    finally:
        await consumer.stop()
    records.sort(key=lambda r: (r.partition, r.offset))
    return TopicContents(len(partitions), records)
