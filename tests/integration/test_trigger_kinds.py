"""Trigger kinds on a real broker: a schedule ticks, its run's end starts a pipeline-outcome run,
and a data-arrival run starts once every dataset has landed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from streamcoord.events.codec import decode
from streamcoord.events.models import ExternalEvent, RunRecordData
from streamcoord.runtime import TopicNames
from tests.integration.coordination import Harness, create_topics, in_process

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

SPEC = """\
pipelines:
  - name: ticking
    run_key: schedule.scheduled_time
    triggers:
      - kind: schedule
        cron: "* * * * *"
    stages:
      - name: work
  - name: following
    run_key: event.data.run_key
    triggers:
      - kind: pipeline
        pipeline: ticking
    stages:
      - name: work
  - name: landing
    run_key: event.data.day
    triggers:
      - kind: data
        datasets: [orders, customers]
    stages:
      - name: work
"""


@pytest.fixture
async def harness(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Harness]:
    topics = TopicNames(prefix=f"{unique_name('trigger-kinds')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    async with in_process(kafka_bootstrap, topics, unique_name("group"), spec=SPEC) as harness:
        yield harness


async def succeeded_runs(
    harness: Harness, until: Callable[[list[RunRecordData]], bool]
) -> list[RunRecordData]:
    """The run records that say succeeded, read until ``until`` holds for them."""
    done: list[RunRecordData] = []
    consumer = harness.reader(harness.topics.runs)
    await consumer.start()
    try:
        async for message in consumer:
            record = decode(message.value, list(message.headers or ()))
            data = getattr(record, "data", None)
            if isinstance(data, RunRecordData) and data.status == "succeeded":
                done.append(data)
                if until(done):
                    return done
    finally:
        await consumer.stop()
    raise AssertionError("the runs topic ended")


def arrival(dataset: str, event_id: str) -> ExternalEvent:
    return ExternalEvent(
        id=event_id,
        source="lake",
        type="dataset.landed",
        data={"dataset": dataset, "partition": "0", "day": "2026-11-28"},
    )


async def test_a_schedule_ticks_and_its_end_starts_the_pipeline_that_follows_it(
    harness: Harness,
) -> None:
    def followed(done: list[RunRecordData]) -> bool:
        ticked = {r.run_key for r in done if r.pipeline == "ticking"}
        return any(r.pipeline == "following" and r.run_key in ticked for r in done)

    done = await asyncio.wait_for(succeeded_runs(harness, followed), 90)
    ticked = next(r for r in done if r.pipeline == "ticking")
    assert ticked.caused_by[0].startswith("schedule/ticking/")  # the catch-up tick on adopt
    assert ticked.run_key.endswith(":00+00:00")  # a whole minute, the scheduled time


async def test_a_data_run_starts_once_every_dataset_landed(harness: Harness) -> None:
    await harness.emit_event(arrival("orders", "orders-1"))
    await harness.emit_event(arrival("orders", "orders-1"))  # a duplicate counts once
    await harness.emit_event(arrival("customers", "customers-1"))
    done = await asyncio.wait_for(
        succeeded_runs(harness, lambda done: any(r.pipeline == "landing" for r in done)), 90
    )
    [landed] = [r for r in done if r.pipeline == "landing"]
    assert landed.run_key == "2026-11-28"
    assert landed.caused_by == ["orders-1", "customers-1"]
    triggered = [t.data.run_id for t in harness.triggers if t.data.pipeline == "landing"]
    assert triggered == ["landing/2026-11-28"]
