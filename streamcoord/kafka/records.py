"""Reading a topic from its beginning to its last stable offset (run records, dead letters)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamcoord.errors import ConfigError
from streamcoord.kafka.client import as_transport, topic_partitions
from streamcoord.kafka.ports import Transport, TransportError

__all__ = ["StoredRecord", "TopicContents", "read_topic", "topic_partitions"]


@dataclass(frozen=True)
class StoredRecord:
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class TopicContents:
    partitions: int
    records: list[StoredRecord]


async def read_topic(
    connection: Transport | Mapping[str, Any], topic: str, *, deadline_s: float = 60.0
) -> TopicContents:
    """Every committed record of ``topic``, partition by partition in offset order.

    ``connection``: a transport (:mod:`streamcoord.kafka.ports`) or aiokafka client keyword
    arguments (:meth:`KafkaSettings.client_kwargs`)."""
    started = time.monotonic()
    transport = as_transport(connection)
    reader = transport.partition_reader()
    try:
        await reader.start()
    except TransportError:
        refused = await transport.refusal()
        if refused is not None:
            raise refused from None
        raise
    records: list[StoredRecord] = []
    try:
        try:
            tps = await reader.partitions(topic)
        except ConfigError:  # no such topic: nothing in it
            tps = []
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        pending = [tp for tp in tps if await reader.position(tp) < ends[tp]]
        while pending:
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"reading {topic} took over {deadline_s:.0f}s")
            batch = await reader.fetch(*pending, timeout_ms=500)
            for tp, messages in batch.items():
                records.extend(
                    StoredRecord(
                        tp.partition, m.offset, m.timestamp, m.key, m.value, list(m.headers or ())
                    )
                    for m in messages
                )
            pending = [tp for tp in pending if await reader.position(tp) < ends[tp]]
    finally:
        await reader.stop()
    records.sort(key=lambda r: (r.partition, r.offset))
    return TopicContents(len(tps), records)
