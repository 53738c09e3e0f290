"""One contract for the runtime's Kafka ports, run on the in-memory cluster and on a real broker.

What the runtime relies on: a committed transaction is read whole and an aborted one never; an
open one holds back the last stable offset; a started sink fences the older sink of its
transactional id and aborts its open transaction; the group gives the same partition numbers of
equally sized topics to one member and hands every partition to exactly one; reading starts at
a sought position and a paused partition is not read; keyed sends land where Kafka's partitioner
puts them, and a delivery says where; a reader without a group reads committed records of the
partitions it is given from where it is sought; a cancelled fetch loses no record.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import pytest

from streamcoord.core import partition_for
from streamcoord.errors import ConfigError
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.confluent import ConfluentTransport
from streamcoord.kafka.ports import (
    GroupConsumer,
    OutRecord,
    PartitionReader,
    Record,
    TopicPartition,
    TransactionalSink,
    Transport,
    TransportError,
)
from streamcoord.testing import MemoryCluster
from tests.kafka_fixtures import create_topics


class Env(Protocol):
    async def topics(self, *names: str, partitions: int) -> list[str]: ...

    def transport(self, name: str) -> Transport: ...


class MemoryEnv:
    def __init__(self) -> None:
        self.cluster = MemoryCluster()

    async def topics(self, *names: str, partitions: int) -> list[str]:
        self.cluster.create_topics(names, partitions)
        return list(names)

    def transport(self, name: str) -> Transport:
        return self.cluster.transport(name)


class KafkaEnv:
    """The real broker, through aiokafka (``client="aiokafka"``) or confluent-kafka."""

    def __init__(self, bootstrap: str, client: str) -> None:
        self.bootstrap = bootstrap
        self.client = client
        self.run = uuid.uuid4().hex[:8]

    async def topics(self, *names: str, partitions: int) -> list[str]:
        unique = [f"contract.{name}.{self.run}" for name in names]
        await create_topics(self.bootstrap, unique, partitions=partitions)
        return unique

    def transport(self, name: str) -> Transport:
        if self.client == "confluent":
            return ConfluentTransport({"bootstrap.servers": self.bootstrap, "client.id": name})
        return KafkaTransport({"bootstrap_servers": self.bootstrap, "client_id": name})


@pytest.fixture(
    params=[
        "memory",
        pytest.param("aiokafka", marks=pytest.mark.kafka),
        pytest.param("confluent", marks=pytest.mark.kafka),
    ]
)
def env(request: pytest.FixtureRequest) -> Env:
    if request.param == "memory":
        return MemoryEnv()
    return KafkaEnv(request.getfixturevalue("kafka_bootstrap"), request.param)


async def _read(transport: Transport, topic: str, partition: int = 0) -> dict[str, bytes]:
    contents = await transport.changelog(topic).read(partition, deadline_s=30)
    return contents.items


async def test_a_committed_batch_is_read_whole_and_an_aborted_one_never(env: Env) -> None:
    [topic] = await env.topics("state", partitions=1)
    transport = env.transport("writer")
    sink = transport.transactional_sink(f"{topic}.t", timeout_s=30)
    await sink.start()
    try:
        await sink.begin()
        await sink.write({(topic, 0): [OutRecord(b"a", b"1"), OutRecord(b"b", b"1")]})
        await sink.commit()
        await sink.begin()
        await sink.write({(topic, 0): [OutRecord(b"a", b"2"), OutRecord(b"c", b"2")]})
        await sink.abort()
    finally:
        await sink.stop()
    assert await _read(transport, topic) == {"a": b"1", "b": b"1"}


async def test_an_open_transaction_holds_back_the_stable_end(env: Env) -> None:
    [topic] = await env.topics("state", partitions=1)
    transport = env.transport("writer")
    tp = TopicPartition(topic, 0)
    sink = transport.transactional_sink(f"{topic}.t", timeout_s=30)
    await sink.start()
    try:
        await sink.begin()
        await sink.write({(topic, 0): [OutRecord(b"a", b"1")]})
        assert await transport.end_offset(tp) == 0
        assert await _read(transport, topic) == {}
        await sink.commit()
    finally:
        await sink.stop()
    assert await transport.end_offset(tp) == 2  # the record and the commit marker
    assert await _read(transport, topic) == {"a": b"1"}


async def test_a_started_sink_fences_the_older_one_and_aborts_its_open_batch(env: Env) -> None:
    [topic] = await env.topics("state", partitions=1)
    old = env.transport("old").transactional_sink(f"{topic}.t", timeout_s=30)
    new = env.transport("new").transactional_sink(f"{topic}.t", timeout_s=30)
    await old.start()
    try:
        await old.begin()
        await old.write({(topic, 0): [OutRecord(b"zombie", b"1")]})
        await new.start()
        with pytest.raises(TransportError):  # on the write or at the latest on the commit
            await _write_and_commit(old, topic, OutRecord(b"zombie", b"2"))
        await new.begin()
        await new.write({(topic, 0): [OutRecord(b"owner", b"1")]})
        await new.commit()
    finally:
        with contextlib.suppress(Exception):
            await old.stop()
        await new.stop()
    assert await _read(env.transport("reader"), topic) == {"owner": b"1"}


async def _write_and_commit(sink: TransactionalSink, topic: str, record: OutRecord) -> None:
    await sink.write({(topic, 0): [record]})
    await sink.commit()


@contextlib.asynccontextmanager
async def _polling(consumer: GroupConsumer) -> AsyncIterator[list[Record]]:
    """Keep ``consumer`` fetching in the background (a member that polls); yields what it got."""
    got: list[Record] = []

    async def poll() -> None:
        while True:
            for records in (await consumer.fetch(timeout_ms=100, max_records=100)).values():
                got.extend(records)

    task = asyncio.create_task(poll())
    try:
        yield got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_group_gives_each_partition_number_of_both_topics_to_one_member(
    env: Env,
) -> None:
    events, internal = await env.topics("events", "internal", partitions=4)
    group = f"{events}.group"
    assigned: dict[str, set[TopicPartition]] = {"a": set(), "b": set()}
    settled = asyncio.Event()

    def member(name: str) -> GroupConsumer:
        consumer = env.transport(name).group_consumer(group, instance_id=None, max_records=100)

        async def revoked(partitions: set[TopicPartition]) -> None:
            assigned[name] -= partitions

        async def given(partitions: set[TopicPartition]) -> None:
            assigned[name] |= partitions
            if len(assigned["a"]) == len(assigned["b"]) == 4:
                settled.set()

        consumer.subscribe([events, internal], on_revoked=revoked, on_assigned=given)
        return consumer

    first = member("a")
    await first.start()
    second = member("b")
    await second.start()
    try:
        async with _polling(first), _polling(second):
            await asyncio.wait_for(settled.wait(), 60)
    finally:
        await second.stop()
        await first.stop()
    numbers = {name: {(tp.partition, tp.topic) for tp in tps} for name, tps in assigned.items()}
    assert numbers["a"].isdisjoint(numbers["b"])
    for tps in assigned.values():
        by_topic = {topic: {tp.partition for tp in tps if tp.topic == topic}
                    for topic in (events, internal)}  # fmt: skip
        assert by_topic[events] == by_topic[internal]
    assert assigned["a"] | assigned["b"] == {
        TopicPartition(topic, p) for topic in (events, internal) for p in range(4)
    }


async def _send(transport: Transport, topic: str, keys: Sequence[str]) -> None:
    producer = transport.producer()
    await producer.start()
    try:
        for key in keys:
            await producer.send(topic, key.encode(), f"value-{key}".encode())
    finally:
        await producer.stop()


async def test_reading_starts_at_a_sought_position_and_a_paused_partition_waits(
    env: Env,
) -> None:
    [topic] = await env.topics("events", partitions=1)
    transport = env.transport("member")
    await _send(transport, topic, [str(n) for n in range(5)])
    tp = TopicPartition(topic, 0)
    ready = asyncio.Event()

    async def given(partitions: set[TopicPartition]) -> None:
        if tp in partitions:
            consumer.seek(tp, 2)
            ready.set()

    async def revoked(partitions: set[TopicPartition]) -> None:
        pass

    consumer = transport.group_consumer(f"{topic}.group", instance_id=None, max_records=100)
    await consumer.start()
    try:
        consumer.subscribe([topic], on_revoked=revoked, on_assigned=given)
        got: list[Record] = []
        for _ in range(600):  # bounded: the group assigns within seconds
            if ready.is_set() and len(got) >= 3:
                break
            got.extend(r for rs in (await consumer.fetch(timeout_ms=100, max_records=100))
                       .values() for r in rs)  # fmt: skip
        assert [(r.offset, r.key) for r in got] == [(2, b"2"), (3, b"3"), (4, b"4")]
        assert await consumer.position(tp) == 5
        consumer.pause(tp)
        await _send(transport, topic, ["5"])
        assert await consumer.fetch(timeout_ms=500, max_records=100) == {}
        consumer.resume(tp)
        later: list[Record] = []
        for _ in range(100):
            if later:
                break
            later.extend(r for rs in (await consumer.fetch(timeout_ms=100, max_records=100))
                         .values() for r in rs)  # fmt: skip
        assert [r.key for r in later] == [b"5"]
    finally:
        await consumer.stop()


async def test_a_cancelled_fetch_loses_no_record(env: Env) -> None:
    """The worker SDK cancels a fetch when its stop is set or a slot frees: the records that
    fetch took come with a later fetch, none skipped, none twice."""
    [topic] = await env.topics("triggers", partitions=1)
    transport = env.transport("worker")
    keys = [str(n) for n in range(30)]
    await _send(transport, topic, keys)

    async def nothing(partitions: set[TopicPartition]) -> None:
        pass

    consumer = transport.group_consumer(f"{topic}.group", instance_id=None, max_records=1)
    await consumer.start()
    got: list[Record] = []
    try:
        consumer.subscribe([topic], on_revoked=nothing, on_assigned=nothing)
        for attempt in range(600):  # bounded: cancelled at varying moments, then read out
            if len(got) >= len(keys):
                break
            fetch = asyncio.ensure_future(consumer.fetch(timeout_ms=100, max_records=1))
            if attempt < 300:
                await asyncio.wait({fetch}, timeout=(attempt % 7) / 1000)
                fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                got.extend(r for rs in (await fetch).values() for r in rs)
    finally:
        await consumer.stop()
    assert [r.key for r in got] == [k.encode() for k in keys]


async def test_keyed_sends_land_where_kafkas_partitioner_puts_them(env: Env) -> None:
    [topic] = await env.topics("runs", partitions=3)
    transport = env.transport("sender")
    keys = [f"run-{n}" for n in range(12)]
    await _send(transport, topic, keys)
    for partition in range(3):
        stored = await _read(transport, topic, partition)
        assert sorted(stored) == sorted(k for k in keys if partition_for(k, 3) == partition)
    sink = transport.transactional_sink(f"{topic}.t", timeout_s=30)
    await sink.start()
    try:
        assert await sink.partition_count(topic) == 3
    finally:
        await sink.stop()


async def test_delivered_records_say_where_they_were_stored(env: Env) -> None:
    [topic] = await env.topics("events", partitions=3)
    producer = env.transport("emitter").delivery_producer(linger_ms=5)
    await producer.start()
    try:
        pending = [await producer.submit(topic, f"k-{n}".encode(), b"v") for n in range(9)]
        stored = [await acknowledged for acknowledged in pending]
    finally:
        await producer.stop()
    assert [s.partition for s in stored] == [partition_for(f"k-{n}", 3) for n in range(9)]
    for partition in range(3):
        offsets = [s.offset for s in stored if s.partition == partition]
        assert offsets == list(range(len(offsets)))  # in submission order, one after the other


async def _fetch_all(reader: PartitionReader, *tps: TopicPartition) -> list[Record]:
    got: list[Record] = []
    for _ in range(20):  # bounded: what is committed arrives within a few fetches
        batch = await reader.fetch(*tps, timeout_ms=200)
        got.extend(r for records in batch.values() for r in records)
        if not batch and got:
            break
    return got


async def test_a_partition_reader_reads_committed_records_from_where_it_is_sought(
    env: Env,
) -> None:
    [topic] = await env.topics("runs", partitions=2)
    transport = env.transport("reader")
    await _send(transport, topic, ["a", "b", "c", "d"])
    reader = transport.partition_reader()
    await reader.start()
    try:
        tps = await reader.partitions(topic)
        assert tps == [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        assert sum(ends.values()) == 4
        assert sorted(r.key for r in await _fetch_all(reader)) == [b"a", b"b", b"c", b"d"]
        assert {tp: await reader.position(tp) for tp in tps} == ends
        await reader.seek_to_end(*tps)
        sink = transport.transactional_sink(f"{topic}.t", timeout_s=30)
        await sink.start()
        try:
            await sink.begin()
            await sink.write({(topic, 0): [OutRecord(b"open", b"1")]})
            assert await reader.fetch(timeout_ms=300) == {}  # not committed: not read
            await sink.commit()
        finally:
            await sink.stop()
        assert [r.key for r in await _fetch_all(reader, tps[0])] == [b"open"]
    finally:
        await reader.stop()


async def test_a_partition_reader_names_a_missing_topic(env: Env) -> None:
    [topic] = await env.topics("present", partitions=1)
    reader = env.transport("reader").partition_reader()
    await reader.start()
    try:
        with pytest.raises(ConfigError, match="does not exist"):
            await reader.partitions(f"{topic}.missing")
    finally:
        await reader.stop()
