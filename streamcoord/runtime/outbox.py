"""Everything one batch produces, gathered first and handed to the producer as record batches.

``AIOKafkaProducer.send`` costs tens of microseconds per record (a future, metadata checks, an
accumulator lookup); a batch of decisions emits several records per event. Appending to one
``BatchBuilder`` per topic-partition and submitting each builder once costs a fraction of that.
Records are keyed exactly as ``send`` would place them: Kafka's murmur2 partitioner over the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer

from streamcoord.core import partition_for

__all__ = ["Outbox"]


Waiting = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


@dataclass
class _Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int | None = None  # ms; None: the producer's clock


@dataclass
class Outbox:
    """Records waiting to be produced, grouped by topic and partition in arrival order."""

    _records: dict[tuple[str, int | None], list[_Record]] = field(default_factory=dict)
    _keyed: dict[str, list[tuple[str, _Record]]] = field(default_factory=dict)
    count: int = 0

    def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        *,
        partition: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        record = _Record(key, value, list(headers), timestamp)  # the builder takes only lists
        if partition is None and key is not None:
            self._keyed.setdefault(topic, []).append((key.decode(), record))
        else:
            self._records.setdefault((topic, partition), []).append(record)
        self.count += 1

    def by_topic(self) -> dict[str, list[Waiting]]:
        """What is waiting, as (key, value, headers) per topic in arrival order (for checks)."""
        out: dict[str, list[Waiting]] = {}
        for (topic, _), records in self._records.items():
            out.setdefault(topic, []).extend((r.key, r.value, r.headers) for r in records)
        for topic, keyed in self._keyed.items():
            out.setdefault(topic, []).extend((r.key, r.value, r.headers) for _, r in keyed)
        return out

    async def flush(self, producer: AIOKafkaProducer) -> list[Any]:
        """Submit every record; returns the delivery futures (await them before committing)."""
        placed = dict(self._records)
        # A run's trigger, records and decisions share its key: hash each key once.
        homes: dict[tuple[str, int], int] = {}
        for topic, keyed in self._keyed.items():
            partitions = await _partition_count(producer, topic)
            for key, one in keyed:
                home = homes.get((key, partitions))
                if home is None:
                    home = homes[key, partitions] = partition_for(key, partitions)
                placed.setdefault((topic, home), []).append(one)
        futures: list[Any] = []
        for (topic, partition), records in placed.items():
            target = 0 if partition is None else partition
            builder = producer.create_batch()
            for record in records:
                if builder.append(
                    key=record.key, value=record.value, timestamp=record.timestamp,
                    headers=record.headers,
                ) is None:  # full: submit it and start the next one
                    futures.append(await producer.send_batch(builder, topic, partition=target))
                    builder = producer.create_batch()
                    builder.append(
                        key=record.key, value=record.value, timestamp=record.timestamp,
                        headers=record.headers,
                    )
            futures.append(await producer.send_batch(builder, topic, partition=target))
        self._records.clear()
        self._keyed.clear()
        return futures


async def _partition_count(producer: AIOKafkaProducer, topic: str) -> int:
    await producer.client._wait_on_metadata(topic)
    return len(producer.client.cluster.partitions_for_topic(topic))
