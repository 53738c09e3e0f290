"""The projector: Kafka's run records, decisions, events and dead letters into the store.

It reads ``streamcoord.runs``, ``streamcoord.decisions``, ``streamcoord.events`` and
``streamcoord.deadletter`` (with the topic prefix) under read_committed, by manual assignment of
every partition (no consumer group: the store holds the positions). Each batch's rows and the
positions it reached are written in one database transaction, and a start resumes from the
positions in the store: a crash or a restart neither loses nor counts a record twice.
``rebuild`` empties the store first and replays every topic from its beginning (a compacted
runs topic may by then hold fewer records of a run: its rows keep its latest state).

One projector writes a store; any number of processes read it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from streamcoord.events import topology
from streamcoord.events.codec import DEFAULT_LIMITS, DecodeLimits, EventDecodeError, decode
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import PartitionReader, TopicPartition, Transport, TransportError
from streamcoord.readmodel._projection import Consumed, TopicKind
from streamcoord.readmodel._sql import SqlStore
from streamcoord.runtime.settings import TopicNames

__all__ = ["TOPICS", "decode_record", "project"]

_log = logging.getLogger(__name__)

#: The declared topics the projector reads, by the role each plays.
TOPICS: Final[dict[TopicKind, str]] = {
    "runs": topology.RUNS,
    "decisions": topology.DECISIONS,
    "events": topology.EVENTS,
    "deadletter": topology.DEADLETTER,
}
_POLL_MS: Final = 200


async def project(
    store: SqlStore,
    connection: Transport | Mapping[str, Any],
    topics: TopicNames,
    stop: asyncio.Event,
    *,
    rebuild: bool = False,
    caught_up: asyncio.Event | None = None,
    on_change: Callable[[frozenset[str]], None] | None = None,
    max_records: int = 10_000,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> None:
    """Project the topics into ``store`` (from :func:`open_store`) until ``stop`` is set.

    ``connection``: a transport (:mod:`streamcoord.kafka.ports`; an in-memory one in tests) or
    aiokafka connection arguments (``KafkaSettings.client_kwargs()``);
    ``topics`` carries the prefix. ``caught_up`` is set once every partition has been read up
    to where it ended when the projector started. ``on_change`` is called on the event loop
    after each committed batch with the ids of the runs it changed (for live updates: read
    them back from the store). Database calls run in a worker thread. Errors of the broker or
    the database end the projection (raised); calling it again resumes where it stopped.
    """
    if rebuild:
        await asyncio.to_thread(store.reset)
    transport = as_transport(connection)
    consumer = transport.partition_reader(max_records=max_records)
    try:
        await consumer.start()
    except TransportError:
        refused = await transport.refusal()
        if refused is not None:
            raise refused from None
        raise
    try:
        kinds = {topics.full(name): kind for kind, name in TOPICS.items()}
        partitions = [tp for name in kinds for tp in await consumer.partitions(name)]
        consumer.assign(partitions)
        saved = await _resume(consumer, store, partitions)
        ends = await consumer.end_offsets(partitions)
        await _follow(
            consumer,
            store=store,
            kinds=kinds,
            saved=saved,
            ends=ends,
            stop=stop,
            caught_up=caught_up,
            on_change=on_change,
            limits=limits,
        )
    finally:
        await consumer.stop()


async def _resume(
    consumer: PartitionReader, store: SqlStore, partitions: list[TopicPartition]
) -> dict[tuple[str, int], int]:
    saved = await asyncio.to_thread(store.positions)
    fresh = []
    for tp in partitions:
        offset = saved.get((tp.topic, tp.partition))
        if offset is None:
            fresh.append(tp)
        else:
            consumer.seek(tp, offset)
    if fresh:
        await consumer.seek_to_beginning(*fresh)
    return saved


async def _follow(
    consumer: PartitionReader,
    *,
    store: SqlStore,
    kinds: Mapping[str, TopicKind],
    saved: dict[tuple[str, int], int],
    ends: Mapping[TopicPartition, int],
    stop: asyncio.Event,
    caught_up: asyncio.Event | None,
    on_change: Callable[[frozenset[str]], None] | None,
    limits: DecodeLimits,
) -> None:
    partitions = list(ends)
    writer = _Writer(store, on_change)
    try:
        while not stop.is_set():
            batch = await consumer.fetch(timeout_ms=_POLL_MS)
            records = [
                decode_record(kinds[tp.topic], tp.topic, tp.partition, message, limits)
                for tp, messages in sorted(batch.items()) for message in messages
            ]  # fmt: skip
            # positions, not last offset + 1: under read_committed they step over control markers
            reached = {(tp.topic, tp.partition): await consumer.position(tp) for tp in partitions}
            moved = {key: offset for key, offset in reached.items() if saved.get(key) != offset}
            if records or moved:
                await writer.submit(records, moved)
                saved.update(moved)
            if (
                caught_up is not None
                and not caught_up.is_set()
                and all(reached[(tp.topic, tp.partition)] >= end for tp, end in ends.items())
            ):
                await writer.drain()  # caught up once it is in the store, not before
                caught_up.set()
    finally:
        await writer.drain()


class _Writer:
    """Writes batches in a worker thread one after the other, while the loop fetches and
    decodes the next (SQLite and the network wait without holding the GIL)."""

    def __init__(self, store: SqlStore, on_change: Callable[[frozenset[str]], None] | None) -> None:
        self.store, self.on_change = store, on_change
        self.pending: asyncio.Task[frozenset[str]] | None = None

    async def submit(self, records: list[Consumed], moved: dict[tuple[str, int], int]) -> None:
        await self.drain()
        self.pending = asyncio.create_task(asyncio.to_thread(self.store.apply, records, moved))

    async def drain(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            return
        changed = await pending
        if changed and self.on_change is not None:
            self.on_change(changed)


def decode_record(
    kind: TopicKind, topic: str, partition: int, message: Any, limits: DecodeLimits
) -> Consumed:
    """One consumed Kafka record as the projection takes it (a dead letter stays raw)."""
    headers = tuple(message.headers or ())
    if kind == "deadletter":
        return Consumed(
            kind,
            topic,
            partition,
            message.offset,
            message.timestamp,
            None,
            message.key,
            message.value,
            headers,
        )
    try:
        event = decode(message.value, headers, limits=limits)
    except EventDecodeError as error:
        # the coordinator dead-letters such a record itself; here it only advances the position
        _log.debug("skipping %s:%d:%d: %s", topic, partition, message.offset, error)
        return Consumed(kind, topic, partition, message.offset, message.timestamp)
    return Consumed(kind, topic, partition, message.offset, message.timestamp, event)
