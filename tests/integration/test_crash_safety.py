"""kill -9 the coordinator again and again under a steady stream: every trigger exactly once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streamcoord.devtools.consistency import replay_mismatches
from streamcoord.events.models import ExternalEvent
from streamcoord.kafka.settings import KafkaClient
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    BOTH_CLIENTS,
    STEADY_SPEC,
    CoordinatorProcess,
    Harness,
    answer_triggers,
    catalog_of,
    create_topics,
    trigger_counts,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

RUNS = 200
#: kills per client: the second client's run is shorter (each kill costs a process start)
KILLS = {"aiokafka": 10, "confluent": 4}


@BOTH_CLIENTS
async def test_kill_9_ten_times_loses_and_duplicates_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path, client: KafkaClient
) -> None:
    topics = TopicNames(prefix=f"{unique_name('crash')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    spec = tmp_path / "steady.yaml"
    spec.write_text(STEADY_SPEC)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    harness = Harness(kafka_bootstrap, topics, producer)
    executor = asyncio.create_task(answer_triggers(harness))
    coordinator = CoordinatorProcess(
        spec, kafka_bootstrap, topics, unique_name("group"), instance_id="only", client=client
    )
    log = tmp_path / "coordinator.log"
    chooser = random.Random(20261128)

    async def emit_steadily() -> None:
        for n in range(RUNS):
            event = ExternalEvent(id=f"tick-{n}", source="clock", type="steady.tick", data={"n": n})
            await harness.emit_event(event)
            await asyncio.sleep(0.05)  # pacing the load, not synchronisation

    emitter = asyncio.create_task(emit_steadily())
    try:
        for _ in range(KILLS[client]):
            await coordinator.start(log)
            await asyncio.wait_for(coordinator.restored.wait(), 60)
            await asyncio.sleep(chooser.uniform(0.0, 1.0))  # a random moment mid-stream
            await coordinator.kill()
        await coordinator.start(log)
        await asyncio.wait_for(coordinator.restored.wait(), 60)
        await emitter
        await asyncio.wait_for(until_runs_succeeded(harness, RUNS), 120)
        assert await coordinator.terminate() == 0, log.read_text()[-3000:]
    finally:
        await coordinator.kill()
        executor.cancel()
        await asyncio.gather(executor, return_exceptions=True)
        await producer.stop()

    counts = await trigger_counts(harness)
    expected = {(f"steady/{n}", stage, 1) for n in range(RUNS) for stage in ("first", "second")}
    assert set(counts) == expected
    assert [key for key, count in counts.items() if count != 1] == []
    assert log.read_text().count("restored partition") >= KILLS[client], "restarts restored state"
    await assert_state_equals_uninterrupted_replay(harness, topics)


async def assert_state_equals_uninterrupted_replay(harness: Harness, topics: TopicNames) -> None:
    """Fold the committed event log through the core once: the changelog must say the same."""
    catalog = catalog_of(STEADY_SPEC)
    assert await replay_mismatches(harness.bootstrap, topics, catalog, partitions=2) == []
