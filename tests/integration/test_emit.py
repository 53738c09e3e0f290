"""Emitters on a real broker: what they produce is read back by a read_committed consumer."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from cloudevents.core.bindings import kafka as sdk_kafka

import streamcoord
from streamcoord.core import partition_for
from streamcoord.emit import Emitter
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.factory import make_event
from streamcoord.events.models import RunRequested
from streamcoord.kafka.settings import KafkaSettings
from tests.kafka_fixtures import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

EVENTS = topology.EVENTS


async def read(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                records.append(record)
                if len(records) == count:
                    return records
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


@pytest.fixture
async def prefix(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> str:
    prefix = unique_name("emit") + "."
    await create_topics(kafka_bootstrap, [prefix + EVENTS], partitions=3)
    return prefix


async def test_emit_returns_once_acknowledged_and_keys_by_partition_key(
    kafka_bootstrap: str, prefix: str
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    sent = await streamcoord.emit(
        "shop.orders.landed", source="shop/etl", subject="2024-01-01",
        data={"day": "2024-01-01"}, settings=settings,
    )  # fmt: skip
    (record,) = await read(kafka_bootstrap, prefix + EVENTS, 1)
    assert record.key == b"shop/etl"  # external events key by source
    received = decode(record.value, record.headers)
    assert received == sent
    assert dict(record.headers)["content-type"] == b"application/cloudevents+json"


async def test_an_emitter_sends_many_in_either_mode_and_the_sdk_reads_them(
    kafka_bootstrap: str, prefix: str
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    async with Emitter(settings, mode="binary") as emitter:
        first = await emitter.emit(
            "streamcoord.run.requested", source="cli",
            data={"pipeline": "orders", "run_key": "2024-01-02"},
        )  # fmt: skip
        batch = await emitter.send_many(
            [first.model_copy(update={"id": f"{first.id}-{n}"}) for n in range(5)]
        )
    records = await read(kafka_bootstrap, prefix + EVENTS, 6)
    assert {r.key for r in records} == {b"orders/2024-01-02"}  # one run, one partition
    assert [decode(r.value, r.headers).id for r in records] == [first.id] + [e.id for e in batch]
    assert all(isinstance(decode(r.value, r.headers), RunRequested) for r in records)
    sdk_event = sdk_kafka.from_kafka_event(
        sdk_kafka.KafkaMessage(headers=dict(records[0].headers), key=records[0].key,
                               value=records[0].value)
    )  # fmt: skip
    assert sdk_event.get_id() == first.id


@pytest.mark.parametrize("binary", [False, True])
async def test_the_cli_prints_the_id_of_an_acknowledged_event(
    kafka_bootstrap: str, prefix: str, binary: bool
) -> None:
    command = [
        sys.executable, "-m", "streamcoord.cli.main", "emit", "shop.orders.landed",
        "--source", "shop/etl", "--data", '{"day": "2024-01-03"}', "--id", "evt-1",
        "--bootstrap-servers", kafka_bootstrap, *(["--binary"] if binary else []),
    ]  # fmt: skip
    env = {**os.environ, "STREAMCOORD_KAFKA_TOPIC_PREFIX": prefix}
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "evt-1"
    (record,) = await read(kafka_bootstrap, prefix + EVENTS, 1)
    event = decode(record.value, record.headers)
    assert (event.id, event.data) == ("evt-1", {"day": "2024-01-03"})
    assert any(name.startswith("ce_") for name, _ in record.headers) is binary


async def test_the_cli_topic_prefix_option_wins_over_the_environment(
    kafka_bootstrap: str, prefix: str
) -> None:
    command = [
        sys.executable, "-m", "streamcoord.cli.main", "emit", "shop.orders.landed",
        "--source", "shop/etl", "--id", "evt-2", "--bootstrap-servers", kafka_bootstrap,
        "--topic-prefix", prefix,
    ]  # fmt: skip
    env = {**os.environ, "STREAMCOORD_KAFKA_TOPIC_PREFIX": "not-this-one."}
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    (record,) = await read(kafka_bootstrap, prefix + EVENTS, 1)
    assert decode(record.value, record.headers).id == "evt-2"


def test_cli_rejects_data_that_is_not_json_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "streamcoord.cli.main", "emit", "x.y", "--source", "s",
         "--data", "{nope"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: --data is not valid JSON")
    assert "Traceback" not in result.stderr


async def test_deliver_says_where_each_event_was_stored(kafka_bootstrap: str, prefix: str) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    events = [
        make_event(RunRequested.TYPE, "ops", {"pipeline": "daily", "run_key": f"d{n}"})
        for n in range(4)
    ]
    async with Emitter(settings) as emitter:
        deliveries = await emitter.deliver_many(events)

    records = await read(kafka_bootstrap, prefix + EVENTS, count=4)
    stored = {(r.partition, r.offset): r.key for r in records}
    assert [d.event for d in deliveries] == events
    for delivery in deliveries:
        assert stored[(delivery.partition, delivery.offset)] == delivery.key.encode()
        assert delivery.key == f"daily/{delivery.event.data.run_key}"
        assert delivery.partition == partition_for(delivery.key, 3)
