"""The coordinator keeps its promises when things go wrong: hostile input, a dead peer, a broker
restart. Every test counts triggers with a read_committed consumer: each exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamcoord.devtools.kafka import BrokerSettings, LocalKafka, free_port
from streamcoord.events.codec import encode
from streamcoord.events.models import ExternalEvent, StageSucceeded, StageSucceededData
from streamcoord.kafka.records import read_topic
from streamcoord.kafka.settings import KafkaClient
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    BOTH_CLIENTS,
    STEADY_SPEC,
    CoordinatorProcess,
    Harness,
    answer_triggers,
    create_topics,
    in_process,
    trigger_counts,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]


def tick(n: int) -> ExternalEvent:
    return ExternalEvent(id=f"tick-{n}", source="clock", type="steady.tick", data={"n": n})


def expected_triggers(runs: int) -> set[tuple[str, str, int]]:
    return {(f"steady/{n}", stage, 1) for n in range(runs) for stage in ("first", "second")}


async def assert_each_trigger_once(harness: Harness, runs: int) -> None:
    counts = await trigger_counts(harness)
    assert set(counts) == expected_triggers(runs)
    assert [key for key, count in counts.items() if count != 1] == []


Record = tuple[bytes, list[tuple[str, bytes]]]
ENVELOPE = {"specversion": "1.0", "source": "fuzz", "type": "streamcoord.stage.succeeded"}


def _succeeded(event_id: str, data: object) -> Record:
    return orjson.dumps({**ENVELOPE, "id": event_id, "data": data}), []


HOSTILE_KINDS: list[Callable[[int, int], Record]] = [
    lambda i, _: (b"\x00\xff not json " + bytes([i % 256]), []),
    lambda i, _: (b'{"unterminated": ', []),
    lambda i, _: (orjson.dumps({"id": f"x{i}", "type": "t"}), []),  # no source, no specversion
    lambda i, _: _succeeded(f"w{i}", {"run_id": 7}),  # wrong type, missing stage
    lambda i, _: _succeeded(f"a{i}", {"run_id": "steady/1", "stage": "first", "attempt": "x"}),
    lambda i, _: _succeeded(f"u{i}", {"run_id": f"nope/{i}", "stage": "first"}),  # unknown run
    lambda i, limit: _succeeded(f"h{i}", "x" * (limit + 1)),  # oversized
    lambda i, _: (b"{}", [("ce_specversion", b"\xff\xfe"), ("ce_id", b"1")]),  # bad header bytes
    lambda i, _: (orjson.dumps([1, 2, 3]), []),
    lambda i, _: (orjson.dumps({**ENVELOPE, "specversion": "0.3", "id": f"v{i}"}), []),
]


def hostile_values(count: int, seed: int, max_bytes: int) -> list[Record]:
    """Malformed and hostile records of every kind the issue names, in a shuffled order."""
    chooser = random.Random(seed)
    return [chooser.choice(HOSTILE_KINDS)(i, max_bytes) for i in range(count)]


async def test_a_thousand_hostile_events_are_dead_lettered_and_nothing_stops(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('hostile')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    runs, bad = 50, 1000
    max_bytes = 16 * 1024
    async with in_process(
        kafka_bootstrap, topics, unique_name("group"), max_event_bytes=max_bytes
    ) as harness:
        hostile = hostile_values(bad, seed=5, max_bytes=max_bytes)
        per_run = bad // runs
        for n in range(runs):
            sends = [
                await harness.producer.send(topics.events, key=b"fuzz", value=v, headers=h)
                for v, h in hostile[n * per_run : (n + 1) * per_run]
            ]
            await asyncio.gather(*sends)
            await harness.emit_event(tick(n))
        await asyncio.wait_for(until_runs_succeeded(harness, runs), 120)
        assert harness.coordinator is not None
        assert harness.coordinator.status.consuming

    letters = (await read_topic({"bootstrap_servers": kafka_bootstrap}, topics.deadletter)).records
    assert len(letters) == bad
    reasons = {dict(letter.headers)["streamcoord.dlq.reason"].decode() for letter in letters}
    assert {"not_json", "not_cloudevent", "oversized", "invalid_data"} <= reasons
    assert all(dict(letter.headers)["streamcoord.dlq.error"] for letter in letters)
    await assert_each_trigger_once(harness, runs)


@BOTH_CLIENTS
async def test_a_peer_killed_mid_stream_hands_its_partitions_over(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path, client: KafkaClient
) -> None:
    topics = TopicNames(prefix=f"{unique_name('takeover')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    spec = tmp_path / "steady.yaml"
    spec.write_text(STEADY_SPEC)
    group = unique_name("group")
    first = CoordinatorProcess(spec, kafka_bootstrap, topics, group, client=client)
    second = CoordinatorProcess(spec, kafka_bootstrap, topics, group, client=client)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    harness = Harness(kafka_bootstrap, topics, producer)
    executor = asyncio.create_task(answer_triggers(harness))
    runs = 80
    try:
        await first.start(tmp_path / "first.log")
        await asyncio.wait_for(first.restored.wait(), 60)
        await second.start(tmp_path / "second.log")
        await asyncio.wait_for(second.restored.wait(), 60)  # the group split the partitions
        for n in range(runs):
            await harness.emit_event(tick(n))
            if n == runs // 2:
                await first.kill()
            await asyncio.sleep(0.02)  # pacing the load, not synchronisation
        await asyncio.wait_for(until_runs_succeeded(harness, runs), 120)
        assert await second.terminate() == 0
    finally:
        await first.kill()
        await second.kill()
        executor.cancel()
        await asyncio.gather(executor, return_exceptions=True)
        await producer.stop()
    assert "restored partition" in (tmp_path / "second.log").read_text()
    await assert_each_trigger_once(harness, runs)


@BOTH_CLIENTS
async def test_a_frozen_member_woken_after_its_partitions_moved_is_fenced(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path, client: KafkaClient
) -> None:
    """A zombie: a member stopped (SIGSTOP) mid-stream loses its partitions to a peer, then
    resumes with a transaction open; the peer's producers fenced it, so nothing it decided
    while it was the owner is committed twice."""
    topics = TopicNames(prefix=f"{unique_name('zombie')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    spec = tmp_path / "steady.yaml"
    spec.write_text(STEADY_SPEC)
    group = unique_name("group")
    zombie = CoordinatorProcess(spec, kafka_bootstrap, topics, group, client=client)
    peer = CoordinatorProcess(spec, kafka_bootstrap, topics, group, client=client)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    harness = Harness(kafka_bootstrap, topics, producer)
    executor = asyncio.create_task(answer_triggers(harness))
    runs = 40
    try:
        await zombie.start(tmp_path / "zombie.log")
        await asyncio.wait_for(zombie.restored.wait(), 60)
        for n in range(runs // 2):
            await harness.emit_event(tick(n))
            await asyncio.sleep(0.02)  # pacing the load, not synchronisation
        assert zombie.process is not None
        zombie.process.send_signal(signal.SIGSTOP)  # frozen, its batches in flight
        await peer.start(tmp_path / "peer.log")
        # the group waits out the frozen member's session, then the peer restores everything
        await asyncio.wait_for(peer.restored.wait(), 90)
        for n in range(runs // 2, runs):
            await harness.emit_event(tick(n))
        zombie.process.send_signal(signal.SIGCONT)
        await asyncio.wait_for(until_runs_succeeded(harness, runs), 120)
        assert await peer.terminate() == 0
        assert await zombie.terminate() == 0
    finally:
        if zombie.process is not None and zombie.process.returncode is None:
            zombie.process.send_signal(signal.SIGCONT)
        await zombie.kill()
        await peer.kill()
        executor.cancel()
        await asyncio.gather(executor, return_exceptions=True)
        await producer.stop()
    await assert_each_trigger_once(harness, runs)


@pytest.fixture
def own_broker(tmp_path: Path) -> LocalKafka:
    """A broker this test may stop and start: the session's broker is shared."""
    version = os.environ.get("STREAMCOORD_TEST_KAFKA_VERSION", "4.4.0")
    return LocalKafka(
        BrokerSettings(port=free_port(), data_dir=tmp_path / "broker", version=version)
    )


@BOTH_CLIENTS
async def test_a_broker_restart_mid_stream_loses_and_duplicates_nothing(
    own_broker: LocalKafka, unique_name: Callable[[str], str], client: KafkaClient
) -> None:
    await asyncio.to_thread(own_broker.start)
    try:
        bootstrap = own_broker.bootstrap
        topics = TopicNames(prefix=f"{unique_name('restart')}.")
        await create_topics(bootstrap, topics, partitions=2)
        runs = 40
        async with in_process(bootstrap, topics, unique_name("group"), client=client) as harness:
            for n in range(runs // 2):
                await harness.emit_event(tick(n))
            await asyncio.to_thread(own_broker.stop)
            await asyncio.to_thread(own_broker.start)
            for n in range(runs // 2, runs):
                await harness.emit_event(tick(n))
            await asyncio.wait_for(until_runs_succeeded(harness, runs), 180)
        await assert_each_trigger_once(harness, runs)
    finally:
        await asyncio.to_thread(own_broker.stop)


async def test_stage_outcome_for_an_unknown_run_names_the_reason(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('unknown')}.")
    await create_topics(kafka_bootstrap, topics, partitions=1)
    async with in_process(kafka_bootstrap, topics, unique_name("group")) as harness:
        stray = StageSucceeded(
            id="stray",
            source="test",
            data=StageSucceededData(run_id="steady/404", stage="first", attempt=1),
        )
        value, headers = encode(stray)
        await harness.producer.send_and_wait(
            topics.events, key=b"steady/404", value=value, headers=headers
        )
        await harness.emit_event(tick(0))
        await asyncio.wait_for(until_runs_succeeded(harness, 1), 60)
    letters = (await read_topic({"bootstrap_servers": kafka_bootstrap}, topics.deadletter)).records
    assert len(letters) == 1
    headers_of = dict(letters[0].headers)
    assert headers_of["streamcoord.dlq.reason"] == b"unknown_run"
    assert b"steady/404" in headers_of["streamcoord.dlq.error"]
