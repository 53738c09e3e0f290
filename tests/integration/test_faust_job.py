"""FaustJob on a real broker: a Faust app follows a source topic and reports progress."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from faust.types import EventT

from streamcoord.events import topology
from streamcoord.events.models import ExecutorBinding, StageTrigger, StageTriggerData
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.worker import StageContext
from streamcoord.worker.faust_job import FaustJob
from tests.conftest import TopicFactory

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def trigger(group: str, **config: object) -> StageTrigger:
    key = "orders/s/stream/1"
    return StageTrigger(
        id=key,
        source="streamcoord/coordinator",
        data=StageTriggerData(
            run_id="orders/s", pipeline="orders", run_key="2024-01-01", stage="stream",
            attempt=1, params={}, idempotency_key=key,
            executor=ExecutorBinding(
                topic=topology.STREAMING_TRIGGERS,
                config={"group_id": group, **config},
            ),
        ),
    )  # fmt: skip


class Reports:
    """A progress reporter that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[datetime | None, dict[str, int]]] = []

    async def __call__(self, watermark: datetime | None, offsets: Mapping[str, int]) -> None:
        self.seen.append((watermark, dict(offsets)))


async def produce(bootstrap: str, topic: str, count: int, partitions: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(
                topic, value=f"r{n}".encode(), partition=n % partitions,
                timestamp_ms=BASE_MS + n * 1000,
            )  # fmt: skip
    finally:
        await producer.stop()


def tasks_left() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_a_faust_job_reports_every_offset_and_the_newest_timestamp_then_stops(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    source = await topic_factory("faust-source", partitions=2)
    await produce(kafka_bootstrap, source, count=10, partitions=2)
    processed: list[bytes] = []

    async def process(event: EventT[Any]) -> None:
        processed.append(event.value)

    before = tasks_left()
    reports = Reports()
    ctx = StageContext(
        trigger(f"{source}.group", source_topic=source, stop_at_end=True), reports,
        asyncio.get_running_loop(),
    )  # fmt: skip
    job = FaustJob(KafkaSettings(bootstrap_servers=kafka_bootstrap), process=process,
                   progress_interval_s=0.0)  # fmt: skip
    outputs = await job(ctx)

    assert sorted(processed) == sorted(f"r{n}".encode() for n in range(10))
    watermark, offsets = reports.seen[-1]
    assert offsets == {"0": 5, "1": 5}
    assert watermark == datetime(2024, 1, 1, 0, 0, 9, tzinfo=UTC)
    assert outputs == {"offsets": {"0": 5, "1": 5}, "watermark": "2024-01-01T00:00:09+00:00"}
    assert tasks_left() <= before  # the app stopped: nothing it started is still running


async def test_a_faust_job_stops_when_cancelled_and_when_past_until(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    source = await topic_factory("faust-until")
    await produce(kafka_bootstrap, source, count=6, partitions=1)
    reports = Reports()
    ctx = StageContext(
        trigger(f"{source}.group", source_topic=source, until="2024-01-01T00:00:02Z"), reports,
        asyncio.get_running_loop(),
    )  # fmt: skip
    job = FaustJob(KafkaSettings(bootstrap_servers=kafka_bootstrap), progress_interval_s=0.0)
    outputs = await job(ctx)
    assert isinstance(outputs, dict)
    assert str(outputs["watermark"]) >= "2024-01-01T00:00:02+00:00"
    assert reports.seen[-1][0] == datetime.fromisoformat(str(outputs["watermark"]))

    cancelled = StageContext(
        trigger(f"{source}.other", source_topic=source), Reports(), asyncio.get_running_loop()
    )
    cancelled.cancel()
    assert await job(cancelled) == {"offsets": {}, "watermark": None}


async def test_a_failing_processor_fails_the_attempt_after_the_app_stopped(
    kafka_bootstrap: str, topic_factory: TopicFactory
) -> None:
    source = await topic_factory("faust-fail")
    await produce(kafka_bootstrap, source, count=3, partitions=1)

    async def process(event: EventT[Any]) -> None:
        raise ValueError(f"cannot handle {event.value!r}")

    before = tasks_left()
    ctx = StageContext(
        trigger(f"{source}.group", source_topic=source, stop_at_end=True), Reports(),
        asyncio.get_running_loop(),
    )  # fmt: skip
    job = FaustJob(KafkaSettings(bootstrap_servers=kafka_bootstrap), process=process)
    with pytest.raises(ValueError, match="cannot handle b'r0'"):
        await job(ctx)
    assert tasks_left() <= before
