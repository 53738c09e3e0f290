"""The runtime's ports (:mod:`streamcoord.kafka.ports`) implemented with aiokafka.

Every aiokafka call of the coordinator runtime is here, with the workarounds it needs: the
private metadata calls (``_wait_on_metadata``, ``_client.force_metadata_update``), the
transaction backoff patch (:func:`cap_concurrent_transactions_backoff`) and record batches built
with ``BatchBuilder``. aiokafka's ``KafkaError`` leaves as :class:`TransportError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from streamcoord.errors import ConfigError
from streamcoord.kafka.ports import (
    AssignmentCallback,
    ChangelogContents,
    OutRecord,
    Record,
    StoredAt,
    TopicPartition,
    Transport,
    TransportError,
)
from streamcoord.kafka.refusal import refusal
from streamcoord.kafka.transactions import (
    TRANSACTION_RETRY_BACKOFF_MS,
    cap_concurrent_transactions_backoff,
)

__all__ = [
    "KafkaChangelog",
    "KafkaDeliveryProducer",
    "KafkaGroupConsumer",
    "KafkaPartitionReader",
    "KafkaProducer",
    "KafkaTopicReader",
    "KafkaTransactionalSink",
    "KafkaTransport",
    "as_transport",
    "topic_partitions",
    "write_batches",
]


@contextmanager
def _translated() -> Iterator[None]:
    """aiokafka's errors as the ports' :class:`TransportError`."""
    try:
        yield
    except KafkaError as exc:
        raise TransportError(str(exc) or type(exc).__name__) from exc


def _kafka_tp(tp: TopicPartition) -> KafkaTopicPartition:
    # aiokafka's pause/resume/seek insist on their own named tuple
    return KafkaTopicPartition(tp.topic, tp.partition)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[KafkaTopicPartition]:
    """Every partition of ``topic``; a fresh client knows no topics until it asks the broker."""
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise ConfigError(
            f"topic {topic} does not exist", hint="create it with `streamcoord topics apply`"
        )
    return [KafkaTopicPartition(topic, p) for p in sorted(partitions)]


class KafkaTransport:
    """aiokafka clients made with ``client_kwargs`` (:meth:`KafkaSettings.client_kwargs`)."""

    def __init__(self, client_kwargs: Mapping[str, Any]) -> None:
        self.client_kwargs = dict(client_kwargs)

    def prepare(self) -> None:
        # Back-to-back commits of one partition: 12-16 -> 3.5-4 ms each (see the function).
        cap_concurrent_transactions_backoff(TRANSACTION_RETRY_BACKOFF_MS / 1000)

    def group_consumer(
        self, group_id: str, *, instance_id: str | None, max_records: int
    ) -> KafkaGroupConsumer:
        return KafkaGroupConsumer(self.client_kwargs, group_id, instance_id, max_records)

    def producer(self) -> KafkaProducer:
        return KafkaProducer(self.client_kwargs)

    def transactional_sink(
        self, transactional_id: str, *, timeout_s: float
    ) -> KafkaTransactionalSink:
        return KafkaTransactionalSink(self.client_kwargs, transactional_id, timeout_s)

    def changelog(self, topic: str) -> KafkaChangelog:
        return KafkaChangelog(self.client_kwargs, topic)

    def topic_reader(self, topic: str) -> KafkaTopicReader:
        return KafkaTopicReader(self.client_kwargs, topic)

    def delivery_producer(self, *, linger_ms: int = 5) -> KafkaDeliveryProducer:
        return KafkaDeliveryProducer(self.client_kwargs, linger_ms=linger_ms)

    def partition_reader(self, *, max_records: int | None = None) -> KafkaPartitionReader:
        return KafkaPartitionReader(self.client_kwargs, max_records=max_records)

    async def end_offset(self, tp: TopicPartition) -> int:
        consumer = AIOKafkaConsumer(
            **self.client_kwargs, group_id=None, isolation_level="read_committed"
        )
        with _translated():
            try:
                await consumer.start()
                return int((await consumer.end_offsets([_kafka_tp(tp)]))[_kafka_tp(tp)])
            finally:
                await consumer.stop()

    async def refusal(self) -> Exception | None:
        return await refusal(self.client_kwargs)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no types
    def __init__(self, on_revoked: AssignmentCallback, on_assigned: AssignmentCallback) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[KafkaTopicPartition]) -> None:
        await self._on_revoked({TopicPartition(tp.topic, tp.partition) for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[KafkaTopicPartition]) -> None:
        await self._on_assigned({TopicPartition(tp.topic, tp.partition) for tp in assigned})


class KafkaGroupConsumer:
    """An ``AIOKafkaConsumer`` in a group, ``read_committed``, assigning by range."""

    def __init__(
        self, client_kwargs: Mapping[str, Any], group_id: str, instance_id: str | None,
        max_records: int,
    ) -> None:  # fmt: skip
        self._consumer = AIOKafkaConsumer(
            **client_kwargs,
            group_id=group_id,
            group_instance_id=instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=max_records,
            # both inputs of a partition number to one member (see the coordinator's docstring)
            partition_assignment_strategy=(RangePartitionAssignor,),
        )

    async def start(self) -> None:
        with _translated():
            await self._consumer.start()

    async def stop(self) -> None:
        with _translated():
            await self._consumer.stop()

    async def partition_count(self, topic: str) -> int | None:
        with _translated():
            for _ in range(50):
                partitions = self._consumer.partitions_for_topic(topic)
                if partitions:
                    return len(partitions)
                # a fresh client knows no topics until it asks the broker
                await self._consumer._client.force_metadata_update()
        return None

    def subscribe(
        self, topics: Sequence[str], *, on_revoked: AssignmentCallback,
        on_assigned: AssignmentCallback,
    ) -> None:  # fmt: skip
        self._consumer.subscribe(list(topics), listener=_Listener(on_revoked, on_assigned))

    async def fetch(
        self, *, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        with _translated():
            batch: Mapping[TopicPartition, Sequence[Record]] = await self._consumer.getmany(
                timeout_ms=timeout_ms, max_records=max_records
            )
        return batch  # aiokafka's TopicPartition is a tuple equal to the ports' one

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer.seek(_kafka_tp(tp), offset)

    def pause(self, *tps: TopicPartition) -> None:
        self._consumer.pause(*(_kafka_tp(tp) for tp in tps))

    def resume(self, *tps: TopicPartition) -> None:
        self._consumer.resume(*(_kafka_tp(tp) for tp in tps))

    async def position(self, tp: TopicPartition) -> int:
        with _translated():
            return int(await self._consumer.position(_kafka_tp(tp)))

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        end = self._consumer.last_stable_offset(_kafka_tp(tp))
        return None if end is None else int(end)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with _translated():
            await self._consumer.commit({_kafka_tp(tp): o for tp, o in offsets.items()})


class _OwnProducer:
    """Starts and stops the ``AIOKafkaProducer`` it owns, errors translated."""

    _producer: AIOKafkaProducer

    async def start(self) -> None:
        try:
            with _translated():
                await self._producer.start()
        except BaseException:
            await self._producer.stop()  # a half-started producer holds connections and tasks
            raise

    async def stop(self) -> None:
        with _translated():
            await self._producer.stop()


class KafkaProducer(_OwnProducer):
    """An idempotent ``AIOKafkaProducer``, ``acks=all``."""

    def __init__(self, client_kwargs: Mapping[str, Any], *, linger_ms: int = 2) -> None:
        self._producer = AIOKafkaProducer(
            **client_kwargs, enable_idempotence=True, acks="all", linger_ms=linger_ms
        )

    async def partition_count(self, topic: str) -> int | None:
        with _translated():
            partitions = await self._producer.partitions_for(topic)
        return len(partitions) if partitions else None

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (), *, partition: int | None = None,
    ) -> None:  # fmt: skip
        with _translated():
            await self._producer.send_and_wait(
                topic, key=key, value=value, headers=list(headers), partition=partition
            )


class KafkaTransactionalSink(_OwnProducer):
    """A transactional ``AIOKafkaProducer`` that hands over whole record batches."""

    def __init__(
        self, client_kwargs: Mapping[str, Any], transactional_id: str, timeout_s: float
    ) -> None:
        self._producer = AIOKafkaProducer(
            **client_kwargs,
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            # Whole record batches are handed over, so waiting for more records only adds
            # latency; and the broker answers CONCURRENT_TRANSACTIONS while the previous commit's
            # markers are written, which the default 100 ms backoff turns into a long stall.
            linger_ms=0,
            retry_backoff_ms=TRANSACTION_RETRY_BACKOFF_MS,
            transaction_timeout_ms=int(timeout_s * 2000),
        )

    async def partition_count(self, topic: str) -> int:
        with _translated():
            await self._producer.client._wait_on_metadata(topic)
            return len(self._producer.client.cluster.partitions_for_topic(topic))

    async def begin(self) -> None:
        with _translated():
            await self._producer.begin_transaction()

    async def write(self, records: Mapping[tuple[str, int], Sequence[OutRecord]]) -> None:
        with _translated():
            await asyncio.gather(*await write_batches(self._producer, records))

    async def commit(self) -> None:
        with _translated():
            await self._producer.commit_transaction()

    async def abort(self) -> None:
        with _translated():
            await self._producer.abort_transaction()


async def write_batches(
    producer: AIOKafkaProducer, records: Mapping[tuple[str, int], Sequence[OutRecord]]
) -> list[Any]:
    """Submit records as record batches, one ``BatchBuilder`` per partition at a time; returns
    the delivery futures.

    ``AIOKafkaProducer.send`` costs tens of microseconds per record (a future, metadata checks,
    an accumulator lookup); appending to a builder and submitting it once costs a fraction.
    """
    futures: list[Any] = []
    for (topic, partition), placed in records.items():
        builder = producer.create_batch()
        for record in placed:
            if (
                builder.append(
                    key=record.key,
                    value=record.value,
                    timestamp=record.timestamp,
                    headers=record.headers,
                )
                is None
            ):  # full: submit it and start the next one
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = producer.create_batch()
                builder.append(
                    key=record.key,
                    value=record.value,
                    timestamp=record.timestamp,
                    headers=record.headers,
                )
        futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures


class KafkaTopicReader:
    """An ``AIOKafkaConsumer`` without a group, assigned every partition of one topic."""

    def __init__(self, client_kwargs: Mapping[str, Any], topic: str) -> None:
        self._topic = topic
        self._consumer = AIOKafkaConsumer(
            **client_kwargs,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self._ends: dict[KafkaTopicPartition, int] = {}

    async def start(self) -> None:
        with _translated():
            await self._consumer.start()
            try:
                tps = await topic_partitions(self._consumer, self._topic)
                self._consumer.assign(tps)
                await self._consumer.seek_to_beginning(*tps)
                self._ends = dict(await self._consumer.end_offsets(tps))
            except BaseException:
                await self._consumer.stop()
                raise

    async def stop(self) -> None:
        with _translated():
            await self._consumer.stop()

    async def caught_up(self) -> bool:
        with _translated():
            return not any(
                [await self._consumer.position(tp) < end for tp, end in self._ends.items()]
            )

    async def fetch(self, *, timeout_ms: int) -> Mapping[TopicPartition, Sequence[Record]]:
        with _translated():
            batch: Mapping[TopicPartition, Sequence[Record]] = await self._consumer.getmany(
                timeout_ms=timeout_ms
            )
        return batch


class KafkaChangelog:
    """Reads one changelog partition from its beginning to its last stable offset.

    Under ``read_committed`` ``end_offsets()`` is the last stable offset, and transaction markers
    occupy offsets of their own, so the read ends when the consumer's *position* reaches the
    end, not when a record with offset ``end - 1`` arrives (that record may be a marker).
    """

    def __init__(self, client_kwargs: Mapping[str, Any], topic: str) -> None:
        self._client_kwargs = client_kwargs
        self._topic = topic

    async def read(self, partition: int, *, deadline_s: float) -> ChangelogContents:
        with _translated():
            return await self._read(partition, deadline_s)

    async def _read(self, partition: int, deadline_s: float) -> ChangelogContents:
        started = time.monotonic()
        tp = KafkaTopicPartition(self._topic, partition)
        consumer = AIOKafkaConsumer(
            **self._client_kwargs,
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
                    raise TimeoutError(
                        f"restoring {self._topic}[{partition}] took over {deadline_s:.0f}s"
                    )
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
        return ChangelogContents(items, records)


class KafkaDeliveryProducer(_OwnProducer):
    """An idempotent ``AIOKafkaProducer``, ``acks=all``, with many sends in flight."""

    def __init__(self, client_kwargs: Mapping[str, Any], *, linger_ms: int) -> None:
        self._producer = AIOKafkaProducer(
            **client_kwargs, acks="all", enable_idempotence=True, linger_ms=linger_ms
        )

    async def submit(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[StoredAt]:  # fmt: skip
        with _translated():
            future = await self._producer.send(topic, key=key, value=value, headers=list(headers))
        return _acknowledged(future)


def _acknowledged(sent: asyncio.Future[Any]) -> asyncio.Future[StoredAt]:
    """Where ``sent`` (aiokafka's delivery future) stored its record, errors translated (a
    future, not a coroutine: one left unawaited after a failed batch warns nothing)."""
    stored: asyncio.Future[StoredAt] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[Any]) -> None:
        if stored.done():
            return
        if done.cancelled():
            stored.cancel()
        elif (error := done.exception()) is not None:
            failure = TransportError(str(error) or type(error).__name__)
            failure.__cause__ = error
            stored.set_exception(failure)
        else:
            stored.set_result(StoredAt(int(done.result().partition), int(done.result().offset)))

    sent.add_done_callback(settle)
    return stored


class KafkaPartitionReader:
    """An ``AIOKafkaConsumer`` without a group, ``read_committed``, assigned by hand."""

    def __init__(self, client_kwargs: Mapping[str, Any], *, max_records: int | None) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_kwargs, group_id=None, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest",
            max_poll_records=max_records,
        )  # fmt: skip

    async def start(self) -> None:
        try:
            with _translated():
                await self._consumer.start()
        except BaseException:
            await self._consumer.stop()  # a half-started consumer holds connections and tasks
            raise

    async def stop(self) -> None:
        with _translated():
            await self._consumer.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        with _translated():
            return [TopicPartition(tp.topic, tp.partition)
                    for tp in await topic_partitions(self._consumer, topic)]  # fmt: skip

    def assign(self, tps: Sequence[TopicPartition]) -> None:
        self._consumer.assign([_kafka_tp(tp) for tp in tps])

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._consumer.seek(_kafka_tp(tp), offset)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        with _translated():
            await self._consumer.seek_to_beginning(*(_kafka_tp(tp) for tp in tps))

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        with _translated():
            await self._consumer.seek_to_end(*(_kafka_tp(tp) for tp in tps))
            for tp in tps:  # resolve "end" now: every later record lies beyond
                await self._consumer.position(_kafka_tp(tp))

    async def position(self, tp: TopicPartition) -> int:
        with _translated():
            return int(await self._consumer.position(_kafka_tp(tp)))

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        with _translated():
            ends = await self._consumer.end_offsets([_kafka_tp(tp) for tp in tps])
        return {TopicPartition(tp.topic, tp.partition): int(end) for tp, end in ends.items()}

    async def fetch(
        self, *tps: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        with _translated():
            batch: Mapping[TopicPartition, Sequence[Record]] = await self._consumer.getmany(
                *(_kafka_tp(tp) for tp in tps), timeout_ms=timeout_ms, max_records=max_records
            )
        return batch  # aiokafka's TopicPartition is a tuple equal to the ports' one


def as_transport(connection: Transport | Mapping[str, Any]) -> Transport:
    """``connection`` itself if it is a transport, else aiokafka clients made with it as
    client keyword arguments (:meth:`KafkaSettings.client_kwargs`)."""
    if isinstance(connection, Mapping):
        return KafkaTransport(connection)
    return connection
