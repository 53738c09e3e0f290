"""Everything one batch produces, gathered first and handed to the sink per topic-partition.

A batch of decisions emits several records per event; the sink takes them partition by
partition (the Kafka one as record batches: see :func:`streamcoord.kafka.client.write_batches`).
Keyed records are placed exactly as a Kafka producer's ``send`` would place them: Kafka's
murmur2 partitioner over the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamcoord.core import partition_for
from streamcoord.kafka.ports import BatchWriter, OutRecord

__all__ = ["Outbox"]


Waiting = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
_Record = OutRecord


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

    async def flush(self, sink: BatchWriter) -> None:
        """Hand every record to the sink (its open transaction); returns once the broker has
        them."""
        placed = dict(self._records)
        # A run's trigger, records and decisions share its key: hash each key once.
        homes: dict[tuple[str, int], int] = {}
        for topic, keyed in self._keyed.items():
            partitions = await sink.partition_count(topic)
            for key, one in keyed:
                home = homes.get((key, partitions))
                if home is None:
                    home = homes[key, partitions] = partition_for(key, partitions)
                placed.setdefault((topic, home), []).append(one)
        self._records.clear()
        self._keyed.clear()
        by_partition: dict[tuple[str, int], list[OutRecord]] = {}
        for (topic, partition), records in placed.items():
            by_partition.setdefault((topic, partition or 0), []).extend(records)
        await sink.write(by_partition)
