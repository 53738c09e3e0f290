"""The internal topic (issue 13): coordinators' own messages travel on a topic only coordinators
write; the same messages on the public events topic are refused, except those an older release
wrote there before the upgrade (docs: deploy/README.md, "Upgrading")."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from streamcoord.core import CoordinatorState, Publish, decide, partition_for
from streamcoord.devtools import consistency
from streamcoord.events.codec import encode
from streamcoord.events.models import CloudEvent, ExternalEvent
from streamcoord.kafka.records import read_topic
from streamcoord.runtime import TopicNames
from streamcoord.runtime.changelog import POSITION_KEY
from tests.integration.coordination import (
    STEADY_SPEC,
    catalog_of,
    create_topics,
    in_process,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

PARTITIONS = 2
CATALOG = catalog_of(STEADY_SPEC)


def routed_match(n: int) -> tuple[int, CloudEvent]:
    """The ``run.match`` a coordinator sends for tick ``n`` when the run lives on another
    partition than the tick was decided on: (the run's partition, the message)."""
    home = partition_for(f"steady/{n}", PARTITIONS)
    tick = ExternalEvent(id=f"tick-{n}", source="clock", type="steady.tick", data={"n": n})
    step = decide(CATALOG, CoordinatorState.empty(1 - home, PARTITIONS), tick,
                  datetime.now(UTC))  # fmt: skip
    [match] = [c.event for c in step.commands if isinstance(c, Publish) and c.topic is None]
    assert match.type == "streamcoord.run.match"
    return home, match


async def produce(bootstrap: str, topic: str, partition: int, key: bytes, value: bytes,
                  *, headers: list[tuple[str, bytes]] | None = None) -> None:  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers or [],
                                     partition=partition)  # fmt: skip
    finally:
        await producer.stop()


async def dead_letter_reasons(bootstrap: str, topics: TopicNames) -> list[str]:
    letters = await read_topic({"bootstrap_servers": bootstrap}, topics.deadletter)
    return [dict(r.headers)["streamcoord.dlq.reason"].decode() for r in letters.records]


async def test_a_forged_match_on_the_events_topic_is_refused_and_decides_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('internal')}.")
    await create_topics(kafka_bootstrap, topics, PARTITIONS)
    home, forged = routed_match(1)
    async with in_process(kafka_bootstrap, topics, unique_name("group")) as harness:
        value, headers = encode(forged)
        await produce(kafka_bootstrap, topics.events, home, b"steady/1", value, headers=headers)
        await harness.emit_event(
            ExternalEvent(id="tick-2", source="clock", type="steady.tick", data={"n": 2})
        )
        await asyncio.wait_for(until_runs_succeeded(harness, 1), 60)
    assert await dead_letter_reasons(kafka_bootstrap, topics) == ["reserved_type"]
    statuses = await consistency.run_statuses(kafka_bootstrap, topics)
    assert statuses == {"steady/2": "succeeded"}  # the forged match started nothing
    # what was decided is on the internal topic, and replaying it gives the changelog
    assert await consistency.replay_mismatches(kafka_bootstrap, topics, CATALOG, PARTITIONS) == []


async def test_after_an_upgrade_matches_the_older_release_left_on_the_events_topic_are_decided(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """An older release sent its run.match on the events topic, and stopped before the run's
    partition decided it. The upgraded member admits it (its changelog position is in the
    older format), and refuses the same kind of message sent after the upgrade."""
    topics = TopicNames(prefix=f"{unique_name('upgrade')}.")
    await create_topics(kafka_bootstrap, topics, PARTITIONS)
    home, left_behind = routed_match(3)
    value, headers = encode(left_behind)
    await produce(kafka_bootstrap, topics.events, home, b"steady/3", value, headers=headers)
    for partition in range(PARTITIONS):  # what the older release committed: no internal offset
        await produce(kafka_bootstrap, topics.state, partition, POSITION_KEY.encode(),
                      b'{"next_offset":0}')  # fmt: skip
    async with in_process(kafka_bootstrap, topics, unique_name("group")) as harness:
        await asyncio.wait_for(until_runs_succeeded(harness, 1), 60)
        late_home, late = routed_match(4)
        value, headers = encode(late)
        await produce(
            kafka_bootstrap, topics.events, late_home, b"steady/4", value, headers=headers
        )
        await harness.emit_event(
            ExternalEvent(id="tick-5", source="clock", type="steady.tick", data={"n": 5})
        )
        await asyncio.wait_for(until_runs_succeeded(harness, 2), 60)
    statuses = await consistency.run_statuses(kafka_bootstrap, topics)
    assert statuses == {"steady/3": "succeeded", "steady/5": "succeeded"}
    assert await dead_letter_reasons(kafka_bootstrap, topics) == ["reserved_type"]
