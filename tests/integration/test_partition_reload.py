"""A batch whose commit fails while the broker goes away, and whose state reload then fails too,
is decided again from the committed state: its run is not lost (found by the chaos suite)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from streamcoord.core import partition_key_for
from streamcoord.devtools.consistency import run_statuses, trigger_counts
from streamcoord.events.codec import encode
from streamcoord.events.models import ExternalEvent
from streamcoord.kafka.client import KafkaTransactionalSink
from streamcoord.kafka.ports import TransportError
from streamcoord.runtime import CoordinatorSettings, TopicNames
from streamcoord.runtime import partition as partition_module
from streamcoord.runtime.partition import PartitionProcessor
from tests.integration.coordination import STEADY_SPEC, catalog_of, create_topics

pytestmark = [pytest.mark.kafka]


async def one_tick(bootstrap: str, topics: TopicNames) -> list[Any]:
    """Write one tick, as admitted onto the internal topic, and read it back as the consumer
    records a lane hands to its worker to decide."""
    event = ExternalEvent(id="tick-0", source="clock", type="steady.tick", data={"n": 0})
    value, headers = encode(event)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.internal, value, key=partition_key_for(event).encode(), headers=headers
        )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    try:
        tp = TopicPartition(topics.internal, 0)
        consumer.assign([tp])
        batch = await consumer.getmany(tp, timeout_ms=10_000)
    finally:
        await consumer.stop()
    return list(batch[tp])


async def test_retry_after_a_failed_reload_decides_from_the_committed_state(
    kafka_bootstrap: str, unique_name: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = TopicNames(prefix=f"{unique_name('reload')}.")
    await create_topics(kafka_bootstrap, topics, partitions=1)
    records = await one_tick(kafka_bootstrap, topics)
    assert len(records) == 1
    settings = CoordinatorSettings(group_id=unique_name("group"), topic_prefix=topics.prefix)
    worker = await PartitionProcessor.restore(
        TopicPartition(topics.events, 0), 1, catalog_of(STEADY_SPEC), settings,
        {"bootstrap_servers": kafka_bootstrap},
    )  # fmt: skip
    try:

        async def broker_gone(*args: object, **kwargs: object) -> Any:
            raise KafkaConnectionError("the broker is restarting")

        async def changelog_gone(*args: object, **kwargs: object) -> Any:
            raise TransportError("the broker is restarting")

        # The broker goes away after the batch is decided: the commit fails, and so does the
        # reload of the committed state from the changelog.
        sink = worker._sink
        assert isinstance(sink, KafkaTransactionalSink)
        monkeypatch.setattr(sink._producer, "commit_transaction", broker_gone)
        monkeypatch.setattr(partition_module, "read_changelog", changelog_gone)
        with pytest.raises(TransportError):
            await worker.process(records)
        monkeypatch.undo()
        # The broker is back; the lane hands the same records over again.
        outcome = await worker.process(records)
    finally:
        await worker.close()

    assert outcome.consumed == 1
    assert await trigger_counts(kafka_bootstrap, topics) == {("steady/0", "first", 1): 1}
    assert await run_statuses(kafka_bootstrap, topics) == {"steady/0": "active"}
