"""The coordinator on a real broker: a pipeline runs to completion; bad input is dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamcoord.core import Catalog, partition_key_for
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    ExternalEvent,
    RunRecord,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)
from streamcoord.kafka.admin import apply_topics, load_topics
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.spec.models import SpecFile

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

THREE_STAGES = {
    "pipelines": [
        {
            "name": "orders",
            "run_key": "event.data.day",
            "triggers": [{"kind": "event", "type": "shop.orders.landed"}],
            "stages": [
                {"name": "extract"},
                {"name": "transform", "needs": ["extract"]},
                {"name": "load", "needs": ["transform"]},
            ],
        }
    ]
}


def catalog_of(spec: dict[str, object]) -> Catalog:
    parsed = SpecFile.model_validate(spec)
    return Catalog.build(parsed.pipelines, parsed.pools)


async def create_topics(bootstrap: str, topics: TopicNames, partitions: int) -> None:
    """The declared topics (topics/topics.yaml), prefixed, with fewer partitions for speed."""
    declared = [
        topic.model_copy(update={"partitions": min(topic.partitions, partitions)})
        for topic in load_topics().with_prefix(topics.prefix)
    ]
    await apply_topics(KafkaSettings(bootstrap_servers=bootstrap), declared)


@dataclass
class Harness:
    """A coordinator in this process, plus a producer for events and readers for its outputs."""

    bootstrap: str
    topics: TopicNames
    producer: AIOKafkaProducer
    coordinator: Coordinator
    triggers: list[StageTrigger] = field(default_factory=list)

    async def emit(self, value: bytes, key: bytes = b"external") -> None:
        await self.producer.send_and_wait(self.topics.events, key=key, value=value)

    async def emit_event(self, event: ExternalEvent | StageStarted | StageSucceeded) -> None:
        value, headers = encode(event)
        key = partition_key_for(event).encode()
        await self.producer.send_and_wait(
            self.topics.events, key=key, value=value, headers=headers
        )

    def reader(self, topic: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )


async def answer_triggers(harness: Harness) -> None:
    """A test executor: every trigger gets `started` then `succeeded`."""
    consumer = harness.reader(harness.topics.full("streamcoord.triggers"))
    await consumer.start()
    try:
        async for message in consumer:
            trigger = decode(message.value, list(message.headers or ()))
            assert isinstance(trigger, StageTrigger)
            harness.triggers.append(trigger)
            ref = StageRef(
                run_id=trigger.data.run_id, stage=trigger.data.stage, attempt=trigger.data.attempt
            )
            base = f"executor/{trigger.data.idempotency_key}"
            await harness.emit_event(StageStarted(id=f"{base}/started", source="test", data=ref))
            await harness.emit_event(
                StageSucceeded(
                    id=f"{base}/succeeded",
                    source="test",
                    data=StageSucceededData(**ref.model_dump(), outputs={"rows": 3}),
                )
            )
    finally:
        await consumer.stop()


async def run_record_with_status(harness: Harness, run_id: str, status: str) -> RunRecord:
    consumer = harness.reader(harness.topics.runs)
    await consumer.start()
    try:
        async for message in consumer:
            record = decode(message.value, list(message.headers or ()))
            if (
                isinstance(record, RunRecord)
                and record.data.run_id == run_id
                and record.data.status == status
            ):
                return record
    finally:
        await consumer.stop()
    raise AssertionError("the runs topic ended")


@pytest.fixture
async def harness(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Harness]:
    topics = TopicNames(prefix=f"{unique_name('coordinator')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    settings = CoordinatorSettings(
        group_id=unique_name("group"), topic_prefix=topics.prefix, poll_timeout_ms=50
    )
    coordinator = Coordinator(
        catalog_of(THREE_STAGES), settings, {"bootstrap_servers": kafka_bootstrap}
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    stop = asyncio.Event()
    harness = Harness(kafka_bootstrap, topics, producer, coordinator)
    service = asyncio.create_task(coordinator.run(stop))
    executor = asyncio.create_task(answer_triggers(harness))
    try:
        yield harness
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
        executor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await executor
        await producer.stop()


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
