"""A tiny Kafka in one process: partitioned logs, transactions, fencing and a consumer group.

It implements the runtime's ports (:mod:`streamcoord.kafka.ports`) as the real cluster behaves
where the runtime relies on it:

- every partition is a log with offsets; a transaction's records sit in the logs from the
  moment they are written, and its commit or abort writes a marker on each partition it
  touched (markers occupy offsets, as in Kafka);
- readers are ``read_committed``: they see records up to the last stable offset (the first
  offset of the oldest open transaction on the partition), never an aborted one;
- starting a transactional sink fences every older sink with the same transactional id (their
  next call raises) and aborts its open transaction;
- a consumer group assigns the subscribed topics' partitions to its members by range (eager:
  every member's partitions are revoked, then the new assignment handed out), whenever a
  member joins, leaves or crashes.

:meth:`MemoryTransport.crash` stops a "process" dead: its clients fail from then on, it leaves
its group at once, and its open transactions stay open until the next owner fences them.
:meth:`MemoryTransport.hold_commits` holds chosen commits so a test can crash a member with a
batch written but not committed; :meth:`MemoryTransport.fail_commits` fails them. There is no
compaction, retention, replication or timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from streamcoord.core import partition_for
from streamcoord.errors import ConfigError
from streamcoord.events.topics import PACKAGED_TOPICS_FILE, parse_topics
from streamcoord.kafka.ports import (
    AssignmentCallback,
    ChangelogContents,
    OutRecord,
    Record,
    StoredAt,
    TopicPartition,
    TransportError,
)

__all__ = [
    "MemoryCluster",
    "MemoryDeliveryProducer",
    "MemoryPartitionReader",
    "MemoryRecord",
    "MemoryTransport",
    "ProducerFenced",
    "TransactionView",
]

log = logging.getLogger(__name__)


class ProducerFenced(TransportError):  # noqa: N818 - Kafka's name for it
    """A newer sink with the same transactional id started: this one may not write."""


@dataclass(frozen=True)
class MemoryRecord:
    """A record in a log (the shape of :class:`~streamcoord.kafka.ports.Record`)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(eq=False)  # one transaction is itself: hashed by identity
class _Transaction:
    transactional_id: str
    state: Literal["open", "committed", "aborted"] = "open"
    #: the first offset it wrote on each partition
    first: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True)
class TransactionView:
    """What a transaction about to commit wrote: the topics and the records (for
    :meth:`MemoryTransport.hold_commits`)."""

    transactional_id: str
    records: tuple[MemoryRecord, ...]

    @property
    def topics(self) -> set[str]:
        return {record.topic for record in self.records}


@dataclass
class _Entry:
    record: MemoryRecord | None  # None: a transaction marker
    transaction: _Transaction | None = None

    @property
    def visible(self) -> bool:
        """Whether a read_committed reader below the stable offset sees it."""
        if self.record is None:
            return False
        return self.transaction is None or self.transaction.state == "committed"


@dataclass
class _Log:
    entries: list[_Entry] = field(default_factory=list)
    #: open transactions that wrote here, with the first offset each wrote
    open: dict[_Transaction, int] = field(default_factory=dict)

    def stable_end(self) -> int:
        """The last stable offset: nothing at or after it may be read yet."""
        return min(self.open.values(), default=len(self.entries))


class MemoryCluster:
    """The cluster: topics, transactional ids and consumer groups, in memory.

    Make one per test (inside the event loop), create its topics, then hand a
    :meth:`transport` per simulated process to what runs on it.
    """

    def __init__(self) -> None:
        self._topics: dict[str, list[_Log]] = {}
        self._epochs: dict[str, int] = {}
        self._open: dict[str, _Transaction] = {}
        self._groups: dict[str, _Group] = {}
        self._changed = asyncio.Event()
        self._names = itertools.count()

    # ---- topics ----------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int) -> None:
        """Create ``name`` with ``partitions`` (again: no change)."""
        self._topics.setdefault(name, [_Log() for _ in range(partitions)])

    def create_topics(self, names: Iterable[str], partitions: int) -> None:
        for name in names:
            self.create_topic(name, partitions)

    def create_declared_topics(self, partitions: int, *, prefix: str = "") -> None:
        """Every topic of the packaged topics.yaml (``prefix`` applied), ``partitions`` each."""
        text = PACKAGED_TOPICS_FILE.read_text(encoding="utf-8")
        self.create_topics((t.name for t in parse_topics(text).with_prefix(prefix)), partitions)

    def partitions(self, topic: str) -> int | None:
        logs = self._topics.get(topic)
        return None if logs is None else len(logs)

    def transport(self, name: str | None = None) -> MemoryTransport:
        """The clients of one process (``name`` shows in member ids and errors)."""
        return MemoryTransport(self, name or f"process-{next(self._names)}")

    def produce(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (), *, partition: int | None = None,
        timestamp: int | None = None,
    ) -> MemoryRecord:  # fmt: skip
        """Append one record outside any transaction (keyed records go where Kafka's
        partitioner puts them; unkeyed ones to partition 0 unless told)."""
        logs = self._log_list(topic)
        if partition is None:
            partition = 0 if key is None else partition_for(key.decode(), len(logs))
        record = self._append(
            TopicPartition(topic, partition), key, value, headers, timestamp=timestamp
        )
        self._notify()
        return record

    def read(self, topic: str) -> list[MemoryRecord]:
        """Every committed record of ``topic`` (read_committed, up to the stable ends),
        partition by partition in offset order."""
        return [
            record
            for partition in range(len(self._log_list(topic)))
            for record in self.read_partition(TopicPartition(topic, partition), 0)[0]
        ]

    def read_partition(
        self, tp: TopicPartition, start: int, limit: int | None = None
    ) -> tuple[list[MemoryRecord], int]:
        """Committed records of ``tp`` from ``start`` up to its stable end (at most ``limit``),
        and the next offset to read."""
        log_ = self._log(tp)
        end = log_.stable_end()
        found: list[MemoryRecord] = []
        position = start
        while position < end and (limit is None or len(found) < limit):
            entry = log_.entries[position]
            position += 1
            if entry.visible:
                assert entry.record is not None
                found.append(entry.record)
        return found, position

    def stable_end(self, tp: TopicPartition) -> int:
        return self._log(tp).stable_end()

    async def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        """Return once ``predicate()`` holds, checking after every change of the cluster;
        ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the cluster did not reach the state within {timeout_s}s")
            await self._wait(remaining)

    # ---- internals the clients use ---------------------------------------------------------

    def _log_list(self, topic: str) -> list[_Log]:
        logs = self._topics.get(topic)
        if logs is None:
            raise TransportError(f"topic {topic} does not exist")
        return logs

    def _log(self, tp: TopicPartition) -> _Log:
        logs = self._log_list(tp.topic)
        if not 0 <= tp.partition < len(logs):
            raise TransportError(f"{tp.topic} has no partition {tp.partition}")
        return logs[tp.partition]

    def _append(
        self, tp: TopicPartition, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]], *, timestamp: int | None,
        transaction: _Transaction | None = None,
    ) -> MemoryRecord:  # fmt: skip
        log_ = self._log(tp)
        record = MemoryRecord(
            tp.topic, tp.partition, len(log_.entries),
            int(time.time() * 1000) if timestamp is None else timestamp, key, value,
            tuple(headers),
        )  # fmt: skip
        if transaction is not None and tp not in transaction.first:
            transaction.first[tp] = record.offset
            log_.open[transaction] = record.offset
        log_.entries.append(_Entry(record, transaction))
        return record

    def _fence(self, transactional_id: str) -> int:
        epoch = self._epochs.get(transactional_id, -1) + 1
        self._epochs[transactional_id] = epoch
        previous = self._open.pop(transactional_id, None)
        if previous is not None:
            self._end(previous, "aborted")
        return epoch

    def _end(self, transaction: _Transaction, state: Literal["committed", "aborted"]) -> None:
        transaction.state = state
        for tp in transaction.first:
            log_ = self._log(tp)
            log_.entries.append(_Entry(None, transaction))  # the marker
            del log_.open[transaction]
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()  # waiters hold the one that fired

    async def _wait(self, timeout_s: float) -> None:
        """Until anything changes or ``timeout_s`` passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), max(0.0, timeout_s))

    def _group(self, group_id: str) -> _Group:
        return self._groups.setdefault(group_id, _Group())


class _Group:
    """Members, their subscriptions, the generation and its assignment; committed offsets."""

    def __init__(self) -> None:
        self.members: dict[str, MemoryGroupConsumer] = {}
        self.generation = 0
        self.joined: dict[str, int] = {}
        self.assignment: dict[str, set[TopicPartition]] | None = None
        self.committed: dict[TopicPartition, int] = {}

    def change(self, cluster: MemoryCluster) -> None:
        self.generation += 1
        self.joined.clear()
        self.assignment = None
        cluster._notify()

    def assign(self, cluster: MemoryCluster) -> dict[str, set[TopicPartition]]:
        """Range assignment: each topic's partitions, in order, split over the sorted members
        in contiguous ranges (the first ones get one more when it does not divide)."""
        result: dict[str, set[TopicPartition]] = {member: set() for member in self.members}
        topics = sorted({t for m in self.members.values() for t in m.topics})
        for topic in topics:
            members = sorted(m for m, c in self.members.items() if topic in c.topics)
            count = cluster.partitions(topic) or 0
            if not members:
                continue
            share, extra = divmod(count, len(members))
            start = 0
            for index, member in enumerate(members):
                size = share + (1 if index < extra else 0)
                result[member].update(TopicPartition(topic, p) for p in range(start, start + size))
                start += size
        return result


class MemoryTransport:
    """The clients of one simulated process (:class:`~streamcoord.kafka.ports.Transport`)."""

    def __init__(self, cluster: MemoryCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.crashed = False
        self._consumers: list[MemoryGroupConsumer] = []
        self._hold: Callable[[TransactionView], bool] | None = None
        self._fail: Callable[[TransactionView], bool] | None = None
        self._failures = 0
        self._release = asyncio.Event()
        #: Set once a commit is being held.
        self.holding = asyncio.Event()

    def crash(self) -> None:
        """Stop the process dead: every client call fails from now on, its consumers leave
        their groups at once, its open transactions stay open (until fenced)."""
        self.crashed = True
        for consumer in self._consumers:
            consumer._leave()
        self._release.set()
        self.cluster._notify()

    def hold_commits(self, when: Callable[[TransactionView], bool]) -> None:
        """Hold every commit ``when`` is true of (until :meth:`release_commits` or a crash);
        :attr:`holding` is set once one is held."""
        self._hold = when
        self._release = asyncio.Event()

    def release_commits(self) -> None:
        self._hold = None
        self._release.set()

    def fail_commits(self, when: Callable[[TransactionView], bool], times: int = 1) -> None:
        """Fail the next ``times`` commits ``when`` is true of, as a broker outage would (the
        transaction stays open: the caller aborts it)."""
        self._fail = when
        self._failures = times

    def check(self) -> None:
        if self.crashed:
            raise TransportError(f"{self.name} crashed")

    # ---- the Transport port ----------------------------------------------------------------

    def prepare(self) -> None:
        pass

    def group_consumer(
        self, group_id: str, *, instance_id: str | None, max_records: int
    ) -> MemoryGroupConsumer:
        consumer = MemoryGroupConsumer(self, group_id, instance_id)
        self._consumers.append(consumer)
        return consumer

    def producer(self) -> MemoryProducer:
        return MemoryProducer(self)

    def transactional_sink(self, transactional_id: str, *, timeout_s: float) -> MemorySink:
        return MemorySink(self, transactional_id)

    def changelog(self, topic: str) -> MemoryChangelog:
        return MemoryChangelog(self, topic)

    def topic_reader(self, topic: str) -> MemoryTopicReader:
        return MemoryTopicReader(self, topic)

    def delivery_producer(self, *, linger_ms: int = 5) -> MemoryDeliveryProducer:
        return MemoryDeliveryProducer(self)

    def partition_reader(self, *, max_records: int | None = None) -> MemoryPartitionReader:
        return MemoryPartitionReader(self, max_records)

    async def end_offset(self, tp: TopicPartition) -> int:
        self.check()
        return self.cluster.stable_end(tp)

    async def refusal(self) -> Exception | None:
        return None


_member_ids = itertools.count()


class MemoryGroupConsumer:
    """A group member (:class:`~streamcoord.kafka.ports.GroupConsumer`)."""

    def __init__(self, transport: MemoryTransport, group_id: str, instance_id: str | None) -> None:
        self._transport = transport
        self._cluster = transport.cluster
        self._group = self._cluster._group(group_id)
        self.member_id = f"{instance_id or transport.name}-{next(_member_ids):06d}"
        self.topics: tuple[str, ...] = ()
        self.assigned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._task: asyncio.Task[None] | None = None
        self._rotation = 0

    async def start(self) -> None:
        self._transport.check()

    async def stop(self) -> None:
        self._leave()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _leave(self) -> None:
        if self._group.members.pop(self.member_id, None) is not None:
            self._group.change(self._cluster)
        self.assigned = set()

    async def partition_count(self, topic: str) -> int | None:
        self._transport.check()
        return self._cluster.partitions(topic)

    def subscribe(
        self, topics: Sequence[str], *, on_revoked: AssignmentCallback,
        on_assigned: AssignmentCallback,
    ) -> None:  # fmt: skip
        self._transport.check()
        self.topics = tuple(topics)
        self._group.members[self.member_id] = self
        self._group.change(self._cluster)
        self._task = asyncio.create_task(
            self._membership(on_revoked, on_assigned), name=f"membership {self.member_id}"
        )

    async def _membership(
        self, on_revoked: AssignmentCallback, on_assigned: AssignmentCallback
    ) -> None:
        """Follow the group's generations: revoke everything, join, take the new share."""
        group, applied = self._group, -1
        while not self._transport.crashed and self.member_id in group.members:
            generation = group.generation
            if generation == applied:
                await self._cluster._wait(1.0)
                continue
            revoked, self.assigned = self.assigned, set()
            await _quietly(on_revoked, revoked)
            group.joined[self.member_id] = generation
            self._cluster._notify()
            while group.generation == generation and set(group.joined) != set(group.members):
                await self._cluster._wait(1.0)
            if group.generation != generation or self._transport.crashed:
                continue  # someone joined or left meanwhile: again
            if group.assignment is None:
                group.assignment = group.assign(self._cluster)
            mine = group.assignment.get(self.member_id, set())
            self._positions = {tp: group.committed.get(tp, 0) for tp in mine}
            self._paused &= mine
            self.assigned = set(mine)
            applied = generation
            await _quietly(on_assigned, set(mine))

    async def fetch(
        self, *, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._transport.check()
            batch = self._take(max_records)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            await self._cluster._wait(remaining)

    def _take(self, max_records: int) -> dict[TopicPartition, Sequence[Record]]:
        readable = sorted(self.assigned - self._paused)
        if not readable:
            return {}
        self._rotation = (self._rotation + 1) % len(readable)  # no partition starves the rest
        batch: dict[TopicPartition, Sequence[Record]] = {}
        left = max_records
        for tp in readable[self._rotation :] + readable[: self._rotation]:
            if left <= 0:
                break
            records, self._positions[tp] = self._cluster.read_partition(
                tp, self._positions.get(tp, 0), left
            )
            if records:
                batch[tp] = records
                left -= len(records)
        return batch

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self.assigned:
            self._positions[tp] = offset

    def pause(self, *tps: TopicPartition) -> None:
        self._paused.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self._paused.difference_update(tps)

    async def position(self, tp: TopicPartition) -> int:
        self._transport.check()
        return self._positions.get(tp, 0)

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self._cluster.stable_end(tp) if tp in self.assigned else None

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._transport.check()
        self._group.committed.update(offsets)


async def _quietly(callback: AssignmentCallback, partitions: set[TopicPartition]) -> None:
    """Run an assignment callback; like aiokafka, a failing one is logged, not raised."""
    try:
        await callback(partitions)
    except Exception:
        log.exception("an assignment callback failed")


class MemoryProducer:
    """Plain sends (:class:`~streamcoord.kafka.ports.Producer`)."""

    def __init__(self, transport: MemoryTransport) -> None:
        self._transport = transport

    async def start(self) -> None:
        self._transport.check()

    async def stop(self) -> None:
        pass

    async def partition_count(self, topic: str) -> int | None:
        self._transport.check()
        return self._transport.cluster.partitions(topic)

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (), *, partition: int | None = None,
    ) -> None:  # fmt: skip
        self._transport.check()
        self._transport.cluster.produce(topic, key, value, headers, partition=partition)


class MemorySink:
    """A transactional producer (:class:`~streamcoord.kafka.ports.TransactionalSink`)."""

    def __init__(self, transport: MemoryTransport, transactional_id: str) -> None:
        self._transport = transport
        self._cluster = transport.cluster
        self.transactional_id = transactional_id
        self._epoch: int | None = None
        self._transaction: _Transaction | None = None
        self._written: list[MemoryRecord] = []

    def _check(self) -> None:
        self._transport.check()
        if self._epoch is None:
            raise TransportError("the sink was not started")
        if self._cluster._epochs.get(self.transactional_id) != self._epoch:
            raise ProducerFenced(
                f"a newer producer with transactional id {self.transactional_id} started"
            )

    async def start(self) -> None:
        self._transport.check()
        self._epoch = self._cluster._fence(self.transactional_id)

    async def stop(self) -> None:
        # what the broker does once the transaction times out; a crashed process never stops
        if self._transaction is not None and not self._transport.crashed:
            with contextlib.suppress(TransportError):
                await self.abort()

    async def partition_count(self, topic: str) -> int:
        self._transport.check()
        return len(self._cluster._log_list(topic))

    async def begin(self) -> None:
        self._check()
        if self._transaction is not None:
            raise TransportError("a transaction is already open")
        self._transaction = _Transaction(self.transactional_id)
        self._cluster._open[self.transactional_id] = self._transaction
        self._written = []

    async def write(self, records: Mapping[tuple[str, int], Sequence[OutRecord]]) -> None:
        self._check()
        transaction = self._transaction
        if transaction is None:
            raise TransportError("no transaction is open")
        for (topic, partition), placed in records.items():
            for record in placed:
                self._written.append(self._cluster._append(
                    TopicPartition(topic, partition), record.key, record.value, record.headers,
                    timestamp=record.timestamp, transaction=transaction,
                ))  # fmt: skip

    async def commit(self) -> None:
        self._check()
        transaction = self._transaction
        if transaction is None:
            raise TransportError("no transaction is open")
        view = TransactionView(self.transactional_id, tuple(self._written))
        transport = self._transport
        if transport._failures and transport._fail is not None and transport._fail(view):
            transport._failures -= 1
            raise TransportError("the commit failed (MemoryTransport.fail_commits)")
        if transport._hold is not None and transport._hold(view):
            transport.holding.set()
            await transport._release.wait()
            self._check()
        self._finish("committed")

    async def abort(self) -> None:
        self._check()
        if self._transaction is not None:
            self._finish("aborted")

    def _finish(self, state: Literal["committed", "aborted"]) -> None:
        transaction, self._transaction = self._transaction, None
        assert transaction is not None
        self._cluster._open.pop(self.transactional_id, None)
        self._cluster._end(transaction, state)


class MemoryChangelog:
    """One changelog topic (:class:`~streamcoord.kafka.ports.ChangelogStore`)."""

    def __init__(self, transport: MemoryTransport, topic: str) -> None:
        self._transport = transport
        self._topic = topic

    async def read(self, partition: int, *, deadline_s: float) -> ChangelogContents:
        self._transport.check()
        records, _ = self._transport.cluster.read_partition(
            TopicPartition(self._topic, partition), 0
        )
        items: dict[str, bytes] = {}
        for record in records:
            key = record.key.decode() if record.key is not None else ""
            if record.value is None:
                items.pop(key, None)
            else:
                items[key] = record.value
        return ChangelogContents(items, len(records))


class MemoryTopicReader:
    """A whole topic, followed (:class:`~streamcoord.kafka.ports.TopicReader`)."""

    def __init__(self, transport: MemoryTransport, topic: str) -> None:
        self._transport = transport
        self._topic = topic
        self._positions: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._transport.check()
        cluster = self._transport.cluster
        partitions = cluster.partitions(self._topic)
        if not partitions:
            raise ConfigError(
                f"topic {self._topic} does not exist",
                hint="create it with `streamcoord topics apply`",
            )
        tps = [TopicPartition(self._topic, p) for p in range(partitions)]
        self._positions = dict.fromkeys(tps, 0)
        self._ends = {tp: cluster.stable_end(tp) for tp in tps}

    async def stop(self) -> None:
        pass

    async def caught_up(self) -> bool:
        self._transport.check()
        return all(self._positions[tp] >= end for tp, end in self._ends.items())

    async def fetch(self, *, timeout_ms: int) -> Mapping[TopicPartition, Sequence[Record]]:
        cluster = self._transport.cluster
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._transport.check()
            batch: dict[TopicPartition, Sequence[Record]] = {}
            for tp, position in self._positions.items():
                records, self._positions[tp] = cluster.read_partition(tp, position)
                if records:
                    batch[tp] = records
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            await cluster._wait(remaining)


class MemoryDeliveryProducer:
    """Sends that say where they were stored (:class:`~streamcoord.kafka.ports.DeliveryProducer`).

    A record is in its log once :meth:`submit` returns; the awaitable only reports where."""

    def __init__(self, transport: MemoryTransport) -> None:
        self._transport = transport

    async def start(self) -> None:
        self._transport.check()

    async def stop(self) -> None:
        pass

    async def submit(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[StoredAt]:  # fmt: skip
        self._transport.check()
        record = self._transport.cluster.produce(topic, key, value, headers)
        stored: asyncio.Future[StoredAt] = asyncio.get_running_loop().create_future()
        stored.set_result(StoredAt(record.partition, record.offset))
        return stored


class MemoryPartitionReader:
    """Partitions read without a group (:class:`~streamcoord.kafka.ports.PartitionReader`)."""

    def __init__(self, transport: MemoryTransport, max_records: int | None) -> None:
        self._transport = transport
        self._cluster = transport.cluster
        self._max_records = max_records
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._transport.check()

    async def stop(self) -> None:
        pass

    async def partitions(self, topic: str) -> list[TopicPartition]:
        self._transport.check()
        count = self._cluster.partitions(topic)
        if not count:
            raise ConfigError(
                f"topic {topic} does not exist", hint="create it with `streamcoord topics apply`"
            )
        return [TopicPartition(topic, p) for p in range(count)]

    def assign(self, tps: Sequence[TopicPartition]) -> None:
        self._positions = {tp: self._positions.get(tp, 0) for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp in self._positions:
            self._positions[tp] = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self.seek(tp, 0)

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        self._transport.check()
        for tp in tps:
            self.seek(tp, self._cluster.stable_end(tp))

    async def position(self, tp: TopicPartition) -> int:
        self._transport.check()
        return self._positions[tp]

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        self._transport.check()
        return {tp: self._cluster.stable_end(tp) for tp in tps}

    async def fetch(
        self, *tps: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self._transport.check()
            batch = self._take(tps or tuple(self._positions), max_records or self._max_records)
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0:
                return batch
            await self._cluster._wait(remaining)

    def _take(
        self, tps: Sequence[TopicPartition], limit: int | None
    ) -> dict[TopicPartition, Sequence[Record]]:
        batch: dict[TopicPartition, Sequence[Record]] = {}
        for tp in sorted(tps):
            if limit is not None and limit <= 0:
                break
            records, self._positions[tp] = self._cluster.read_partition(
                tp, self._positions[tp], limit
            )
            if records:
                batch[tp] = records
                limit = None if limit is None else limit - len(records)
        return batch
