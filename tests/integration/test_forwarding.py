"""Any partitioner works (issue 13): a run's events produced by hand onto partitions other than
the one their key hashes to (as kcat and librdkafka clients do with consistent_random) are
forwarded to the run's partition in the same transaction, never dead-lettered as unknown_run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest
from aiokafka.structs import ConsumerRecord

from streamcoord.core import partition_for, partition_key_for
from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    CloudEvent,
    RunRequested,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    Harness,
    create_topics,
    in_process,
    trigger_counts,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

PARTITIONS = 3
SPEC = """\
pipelines:
  - name: byhand
    triggers:
      - kind: manual
    stages:
      - name: first
      - name: second
        needs: [first]
"""
EVERYWHERE = "everywhere"  # every event of this run goes to every partition
OFF = "off"  # every event of this run goes only to one partition that is not its own


def _home(run_key: str) -> int:
    return partition_for(f"byhand/{run_key}", PARTITIONS)


def _partitions_for(run_key: str) -> list[int]:
    return list(range(PARTITIONS)) if run_key == EVERYWHERE else [(_home(run_key) + 1) % PARTITIONS]


async def _produce(harness: Harness, event: CloudEvent, partitions: list[int]) -> None:
    """The same record onto each of ``partitions``, by number, not by the key's murmur2."""
    value, headers = encode(event)
    key = partition_key_for(event).encode()
    for partition in partitions:
        await harness.producer.send_and_wait(
            harness.topics.events, key=key, value=value, headers=headers, partition=partition
        )


async def _execute_by_hand(harness: Harness) -> None:
    """An executor whose producer places records by hand: started and succeeded per trigger."""
    consumer = harness.reader(harness.topics.full(topology.TRIGGERS))
    await consumer.start()
    try:
        async for message in consumer:
            trigger = decode(message.value, list(message.headers or ()))
            assert isinstance(trigger, StageTrigger)
            harness.triggers.append(trigger)
            data = trigger.data
            ref = StageRef(run_id=data.run_id, stage=data.stage, attempt=data.attempt)
            where = _partitions_for(data.run_id.removeprefix("byhand/"))
            base = f"byhand/{data.idempotency_key}"
            await _produce(
                harness, StageStarted(id=f"{base}/started", source="kcat", data=ref), where
            )
            await _produce(
                harness,
                StageSucceeded(id=f"{base}/ok", source="kcat", data=ref.model_dump()),
                where,
            )
    finally:
        await consumer.stop()


async def _dead_letters(harness: Harness, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = harness.reader(harness.topics.deadletter)
    await consumer.start()
    letters: list[ConsumerRecord[bytes, bytes]] = []
    try:
        while len(letters) < count:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
            letters += [m for records in batch.values() for m in records]
    finally:
        await consumer.stop()
    return letters


async def _all_decided(harness: Harness) -> list[ConsumerRecord[bytes, bytes]]:
    """Wait until every partition decided everything produced so far, forwarded copies too.

    A record each partition can only dead-letter, produced after everything else, marks the end
    of what was produced; a second round marks the end of what the first round's partitions
    forwarded (committed before that round was produced). Returns all dead letters.
    """
    for round_ in (1, 2):
        for partition in range(PARTITIONS):
            await harness.producer.send_and_wait(
                harness.topics.events,
                key=b"end",
                value=b"end of round %d" % round_,
                partition=partition,
            )
        letters = await _dead_letters(harness, round_ * PARTITIONS)
    return letters


async def test_events_on_every_partition_reach_their_run_and_trigger_exactly_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    assert _home(OFF) != _partitions_for(OFF)[0]
    topics = TopicNames(prefix=f"{unique_name('forwarding')}.")
    await create_topics(kafka_bootstrap, topics, partitions=PARTITIONS)
    async with in_process(
        kafka_bootstrap, topics, unique_name("group"), spec=SPEC, executor=False
    ) as harness:
        executor = asyncio.create_task(_execute_by_hand(harness))
        try:
            for run_key in (EVERYWHERE, OFF):
                request = RunRequested(
                    id=f"request-{run_key}",
                    source="kcat",
                    data={"pipeline": "byhand", "run_key": run_key},
                )
                await _produce(harness, request, _partitions_for(run_key))
            await asyncio.wait_for(until_runs_succeeded(harness, 2), 90)
            letters = await asyncio.wait_for(_all_decided(harness), 90)
        finally:
            executor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await executor
        assert harness.coordinator is not None
        status = harness.coordinator.status

    reasons = [dict(letter.headers)["streamcoord.dlq.reason"] for letter in letters]
    assert reasons == [b"not_json"] * (2 * PARTITIONS)  # only the end marks: no unknown_run
    counts = await trigger_counts(harness)
    assert counts == {
        (f"byhand/{key}", stage, 1): 1 for key in (EVERYWHERE, OFF) for stage in ("first", "second")
    }
    # stage reports only (requests are routed as matches by the core): 2 stages x 2 reports,
    # 2 misplaced copies each for EVERYWHERE and 1 for OFF
    assert status.forwarded == 2 * 2 * (PARTITIONS - 1) + 2 * 2
