"""The broker the suite runs on does what streamcoord relies on: plain delivery, transactions
(commit visible, abort invisible under read_committed) and offsets committed inside a transaction.

Client options are spelled out because aiokafka's defaults differ from the Java client's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.conftest import TopicFactory

pytestmark = pytest.mark.kafka

RECEIVE_TIMEOUT = 30.0


@asynccontextmanager
async def producer(
    bootstrap: str, transactional_id: str | None = None
) -> AsyncIterator[AIOKafkaProducer]:
    client = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        transactional_id=transactional_id,
    )
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


@asynccontextmanager
async def consumer(
    bootstrap: str, topic: str, group_id: str, *, isolation_level: str = "read_committed"
) -> AsyncIterator[AIOKafkaConsumer]:
    client = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        max_poll_records=100,
    )
    await client.start()
    try:
        yield client
    finally:
        await client.stop()


async def read_until(client: AIOKafkaConsumer, last: bytes) -> list[bytes]:
    """Values in order up to and including ``last``; fails after ``RECEIVE_TIMEOUT``."""
    values: list[bytes] = []
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        while last not in values:
            message = await client.getone()
            assert message.value is not None
            values.append(message.value)
    return values


async def test_produce_and_consume(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_name: Callable[[str], str]
) -> None:
    topic = await topic_factory("smoke")
    async with producer(kafka_bootstrap) as client:
        for value in (b"one", b"two", b"three"):
            await client.send_and_wait(topic, value, key=b"k")
    async with consumer(kafka_bootstrap, topic, unique_name("group")) as reader:
        assert await read_until(reader, b"three") == [b"one", b"two", b"three"]


async def test_committed_transaction_visible_and_aborted_one_not(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_name: Callable[[str], str]
) -> None:
    topic = await topic_factory("txn")
    async with producer(kafka_bootstrap, unique_name("txn-id")) as client:
        async with client.transaction():
            await client.send(topic, b"committed")
        await client.begin_transaction()
        await (await client.send(topic, b"aborted"))
        await client.abort_transaction()
        async with client.transaction():
            await client.send(topic, b"end")

    async with consumer(kafka_bootstrap, topic, unique_name("committed")) as reader:
        assert await read_until(reader, b"end") == [b"committed", b"end"]
    async with consumer(
        kafka_bootstrap, topic, unique_name("uncommitted"), isolation_level="read_uncommitted"
    ) as reader:  # the aborted record was really written; only the isolation level hides it
        assert await read_until(reader, b"end") == [b"committed", b"aborted", b"end"]


async def test_send_offsets_to_transaction_commits_the_group_offset(
    kafka_bootstrap: str, topic_factory: TopicFactory, unique_name: Callable[[str], str]
) -> None:
    source, sink = await topic_factory("source"), await topic_factory("sink")
    group = unique_name("group")
    async with producer(kafka_bootstrap) as client:
        for value in (b"a", b"b"):
            await client.send_and_wait(source, value)

    async with (
        consumer(kafka_bootstrap, source, group) as reader,
        producer(kafka_bootstrap, unique_name("txn-id")) as writer,
    ):
        messages = [await reader.getone(), await reader.getone()]
        tp = TopicPartition(source, 0)
        async with writer.transaction():
            for message in messages:
                assert message.value is not None
                await writer.send(sink, message.value.upper())
            await writer.send_offsets_to_transaction({tp: messages[-1].offset + 1}, group)

    # The group coordinator applies a transaction's offsets when it writes the commit marker,
    # which can land just after EndTxn answers: ask again (bounded) until they show.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        for _ in range(50):
            offsets = await admin.list_consumer_group_offsets(group)
            if tp in offsets:
                break
            await asyncio.sleep(0.1)  # bounded: 50 tries, 5 s
    finally:
        await admin.close()
    assert offsets[tp].offset == 2
    async with consumer(kafka_bootstrap, sink, unique_name("check")) as reader:
        assert await read_until(reader, b"B") == [b"A", b"B"]
