"""The coordinator on a real broker: a pipeline runs to completion; bad input is dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamcoord.events.models import ExternalEvent, StageSucceeded, StageSucceededData
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    Harness,
    create_topics,
    in_process,
    run_record_with_status,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

THREE_STAGES = """\
pipelines:
  - name: orders
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: extract
      - name: transform
        needs: [extract]
      - name: load
        needs: [transform]
"""


@pytest.fixture
async def harness(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Harness]:
    topics = TopicNames(prefix=f"{unique_name('coordinator')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    async with in_process(
        kafka_bootstrap, topics, unique_name("group"), spec=THREE_STAGES
    ) as harness:
        yield harness


def landed(day: str, event_id: str) -> ExternalEvent:
    return ExternalEvent(
        id=event_id, source="warehouse", type="shop.orders.landed", data={"day": day}
    )


async def test_three_stage_pipeline_runs_to_completion(harness: Harness) -> None:
    await harness.emit_event(landed("2026-11-28", "landed-1"))
    await harness.emit_event(landed("2026-11-28", "landed-1"))  # a duplicate delivery
    record = await asyncio.wait_for(
        run_record_with_status(harness, "orders/2026-11-28", "succeeded"), 60
    )
    assert record.data.stages == {
        "extract": "succeeded", "transform": "succeeded", "load": "succeeded",
    }  # fmt: skip
    stages = [(t.data.stage, t.data.attempt) for t in harness.triggers]
    assert stages == [("extract", 1), ("transform", 1), ("load", 1)]
    assert harness.triggers[0].data.caused_by == ["landed-1"]


async def test_bad_input_goes_to_dead_letters_and_processing_goes_on(harness: Harness) -> None:
    await harness.emit(b"this is not json")
    await harness.emit(b'{"specversion": "1.0", "type": "x"}')
    await harness.emit_event(
        StageSucceeded(
            id="stray",
            source="test",
            data=StageSucceededData(run_id="orders/never-started", stage="load", attempt=1),
        )
    )
    await harness.emit_event(landed("2026-11-29", "landed-2"))
    await asyncio.wait_for(run_record_with_status(harness, "orders/2026-11-29", "succeeded"), 60)

    consumer = harness.reader(harness.topics.deadletter)
    await consumer.start()
    try:
        letters = []
        while len(letters) < 3:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            letters += [m for records in batch.values() for m in records]
    finally:
        await consumer.stop()
    by_value = {m.value: dict(m.headers) for m in letters}
    garbage = by_value[b"this is not json"]
    assert garbage["streamcoord.dlq.reason"] == b"not_json"
    assert garbage["streamcoord.dlq.topic"] == harness.topics.events.encode()
    assert by_value[b'{"specversion": "1.0", "type": "x"}']["streamcoord.dlq.reason"] == (
        b"not_cloudevent"
    )
    stray = next(h for v, h in by_value.items() if b"never-started" in (v or b""))
    assert stray["streamcoord.dlq.reason"]  # the core names why it refused an unknown run
    assert harness.coordinator.status.dead_letters == 3


async def test_a_restart_resumes_from_the_changelog_not_from_the_group_offsets(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """The position commits with each batch's outputs; the group's offsets are only a view for
    lag tools. Even with them wiped, a restarted coordinator decides no record twice."""
    topics = TopicNames(prefix=f"{unique_name('resume')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    group = unique_name("group")
    # Records nothing answers (a test executor would answer old triggers again on restart).
    async with in_process(kafka_bootstrap, topics, group, spec=THREE_STAGES) as first:
        for n in range(4):
            await first.emit(b"not json %d" % n, key=b"k%d" % n)
        await dead_letters(first, 4)

    parts = [TopicPartition(topics.events, p) for p in range(2)]
    wiper = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await wiper.start()
    try:
        wiper.assign(parts)
        shown = [await wiper.committed(tp) for tp in parts]
        assert sum(o or 0 for o in shown) == 4  # positions are shown to the group on shutdown
        await wiper.commit(dict.fromkeys(parts, 0))
    finally:
        await wiper.stop()

    async with in_process(kafka_bootstrap, topics, group, spec=THREE_STAGES) as second:
        await second.emit(b"not json 4", key=b"k4")
        await dead_letters(second, 5)
    assert second.coordinator is not None
    assert second.coordinator.status.consumed == 1
    assert second.coordinator.status.dead_letters == 1


async def dead_letters(harness: Harness, count: int) -> None:
    """Until the dead-letter topic holds ``count`` records."""
    consumer = harness.reader(harness.topics.deadletter)
    await consumer.start()
    try:
        seen = 0
        while seen < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
