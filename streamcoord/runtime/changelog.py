"""Restoring one partition's state, and its consumed position, from the compacted changelog topic.

Besides the core's state, each changelog partition holds one runtime record under
:data:`POSITION_KEY`: the next offsets to consume of the partition's two inputs, the public events
topic and the internal topic. It is written in the same transaction as the state and the outputs
of a batch, so they always agree, and a transaction needs no ``AddOffsetsToTxn``/
``TxnOffsetCommit`` round trips to the group coordinator. A position written before the internal
topic existed (state format 5 and older) names only the events offset.

Under ``read_committed`` ``end_offsets()`` is the last stable offset, and transaction markers
occupy offsets of their own, so the restore ends when the consumer's *position* reaches the end,
not when a record with offset ``end - 1`` arrives (that record may be a marker).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = [
    "POSITION_KEY",
    "Positions",
    "RestoredChangelog",
    "events_end",
    "position_value",
    "read_changelog",
    "state_items",
]

#: Changelog key of the partition's consumed position (``~`` sorts after and never clashes with
#: the core's ``run/``, ``pool/`` ... keys).
POSITION_KEY = "~position"


@dataclass(frozen=True)
class Positions:
    """The next offset to consume of each input of one partition (None: never committed).

    ``legacy_until``: events offsets below it were written while coordinators of a release
    without the internal topic ran, which sent their own messages on the events topic; they
    are admitted as such (see docs/deploy.md, upgrading). ``older_release``: read from a
    position record such a release wrote.
    """

    events: int | None = None
    internal: int | None = None
    legacy_until: int | None = None
    older_release: bool = False

    def value(self) -> bytes:
        """The changelog value: every record before these offsets is taken care of."""
        body: dict[str, int | None] = {"next_offset": self.events, "internal_next": self.internal}
        if self.legacy_until is not None:
            body["legacy_until"] = self.legacy_until
        return orjson.dumps(body)

    def after(self, events: int | None, internal: int | None) -> Positions:
        """These positions moved on to ``events`` and ``internal``; the legacy range is
        forgotten once passed."""
        legacy = self.legacy_until
        if legacy is not None and events is not None and events >= legacy:
            legacy = None
        return Positions(events, internal, legacy)

    @classmethod
    def parse(cls, raw: bytes) -> Positions:
        body = orjson.loads(raw)
        events, internal = body.get("next_offset"), body.get("internal_next")
        legacy = body.get("legacy_until")
        return cls(
            None if events is None else int(events),
            None if internal is None else int(internal),
            None if legacy is None else int(legacy),
            older_release="internal_next" not in body,
        )


def position_value(next_offset: int, internal_next: int | None = None) -> bytes:
    """The changelog value recording what is consumed: events before ``next_offset``, internal
    records before ``internal_next``."""
    return Positions(next_offset, internal_next).value()


def state_items(items: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes | None]]:
    """Changelog records without the runtime's position record: what the core's state loads."""
    return [(key, value) for key, value in items if key != POSITION_KEY]


@dataclass(frozen=True)
class RestoredChangelog:
    items: dict[str, bytes]
    records: int
    seconds: float
    #: The next offsets to consume; None each where no batch was ever committed.
    positions: Positions = Positions()

    @property
    def position(self) -> int | None:
        """The next events offset to consume."""
        return self.positions.events


async def read_changelog(
    client_kwargs: Mapping[str, Any], topic: str, partition: int, *, deadline_s: float = 300.0
) -> RestoredChangelog:
    """The last value of every live key in one changelog partition, up to the stable end."""
    started = time.monotonic()
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        **client_kwargs,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()  # a half-started consumer still holds connections and tasks
        raise
    items: dict[str, bytes] = {}
    records = 0
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            if time.monotonic() - started > deadline_s:
                raise TimeoutError(f"restoring {topic}[{partition}] took over {deadline_s:.0f}s")
            batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
            for message in batch.get(tp, ()):
                records += 1
                key = message.key.decode() if message.key is not None else ""
                if message.value is None:
                    items.pop(key, None)
                else:
                    items[key] = message.value
    finally:
        await consumer.stop()
    raw = items.pop(POSITION_KEY, None)
    positions = Positions() if raw is None else Positions.parse(raw)
    return RestoredChangelog(items, records, time.monotonic() - started, positions)


async def events_end(client_kwargs: Mapping[str, Any], tp: TopicPartition) -> int:
    """The last stable offset of one input partition now."""
    consumer = AIOKafkaConsumer(**client_kwargs, group_id=None, isolation_level="read_committed")
    try:
        await consumer.start()
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()
