"""The benchmark workload: a long chain pipeline, its events, topics and a pre-computed state.

Every stage completion triggers the next stage, so each hand-off is one stage-completion event in
and one trigger out. State for many runs is computed with the pure core (no broker) and written
to the changelog directly, so setting up 100,000 active runs takes seconds, not minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streamcoord.core import Catalog, CoordinatorState, decide, partition_for, partition_key_for
from streamcoord.events.codec import encode
from streamcoord.events.models import (
    CloudEvent,
    RunRequested,
    RunRequestedData,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
)
from streamcoord.kafka.admin import apply_topics, load_topics
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.pipelines.loader import parse_specs
from streamcoord.runtime import TopicNames

PIPELINE = "chain"
STAGES = 20
T = TypeVar("T")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def spec_yaml(stages: int = STAGES) -> str:
    """A chain s0 -> s1 -> ... started by a run request (a manual trigger)."""
    lines = [
        "pipelines:", f"  - name: {PIPELINE}", "    run_key: event.data.n",
        "    triggers:", "      - kind: manual", "    stages:",
        "      - name: s0",
    ]  # fmt: skip
    for i in range(1, stages):
        lines += [f"      - name: s{i}", f"        needs: [s{i - 1}]"]
    return "\n".join(lines) + "\n"


def catalog() -> Catalog:
    loaded = parse_specs(spec_yaml(), "bench.yaml")
    if loaded.problems:
        raise SystemExit(f"bench spec invalid: {loaded.problems}")
    return Catalog.build(loaded.pipelines, loaded.pools)


def run_id(n: int) -> str:
    return f"{PIPELINE}/r{n}"


def request(n: int) -> RunRequested:
    return RunRequested(
        id=f"go-{n}", source="bench", data=RunRequestedData(pipeline=PIPELINE, run_key=f"r{n}")
    )


def completion(run: str, stage: int) -> list[CloudEvent]:
    """What an executor sends for one attempt: started, then succeeded."""
    ref = StageRef(run_id=run, stage=f"s{stage}", attempt=1)
    base = f"x/{run}/s{stage}"
    return [
        StageStarted(id=f"{base}/a", source="bench", data=ref),
        StageSucceeded(id=f"{base}/b", source="bench", data=StageSucceededData(**ref.model_dump())),
    ]


async def create_topics(bootstrap: str, topics: TopicNames, partitions: int) -> None:
    declared = [
        topic.model_copy(update={"partitions": partitions})
        for topic in load_topics().with_prefix(topics.prefix)
    ]
    await apply_topics(KafkaSettings(bootstrap_servers=bootstrap), declared)


async def delete_topics(bootstrap: str, topics: TopicNames) -> None:
    """Drop a finished measurement's topics, so the broker's cleaner and caches never work on
    them while the next measurement runs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [name for name in await admin.list_topics() if name.startswith(topics.prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


_TEMPLATE_N = 999_999


def seeded_states(runs: int, partitions: int) -> list[list[tuple[str, bytes]]]:
    """Changelog records per partition for ``runs`` active runs with ``s0`` triggered.

    The core decides one run request; its dump is cloned with the run number substituted
    (deciding 100,000 requests would take longer than the benchmark it sets up)."""
    state = CoordinatorState.empty(0, 1)
    step = decide(catalog(), state, request(_TEMPLATE_N), NOW)
    if step.rejection is not None:
        raise SystemExit(f"bench spec rejects its run request: {step.rejection}")
    # the run's record; the partition's decision chain head ("chain") is not per run
    ((key, value),) = [(k, v) for k, v in state.dump() if k.startswith("run/")]
    marker = str(_TEMPLATE_N).encode()
    out: list[list[tuple[str, bytes]]] = [[] for _ in range(partitions)]
    for n in range(runs):
        number = str(n)
        out[partition_for(run_id(n), partitions)].append(
            (key.replace(marker.decode(), number), value.replace(marker, number.encode()))
        )
    return out


async def write_changelog(
    bootstrap: str, topics: TopicNames, states: Sequence[Sequence[tuple[str, bytes]]]
) -> int:
    """Each partition's records onto its changelog partition; returns the records written."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
        max_batch_size=1 << 20,
    )  # fmt: skip
    await producer.start()
    written = 0
    try:
        for chunk in _chunks(
            ((p, k, v) for p, records in enumerate(states) for k, v in records), 5000
        ):
            futures = [
                await producer.send(topics.state, key=k.encode(), value=v, partition=p)
                for p, k, v in chunk
            ]
            await asyncio.gather(*futures)
            written += len(chunk)
    finally:
        await producer.stop()
    return written


async def produce_events(bootstrap: str, topic: str, events: Iterable[CloudEvent]) -> int:
    """Keyed as the emitter keys them; returns how many were written."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
        max_batch_size=1 << 20,
    )  # fmt: skip
    await producer.start()
    written = 0
    try:
        for chunk in _chunks(iter(events), 5000):
            futures = []
            for event in chunk:
                value, headers = encode(event)
                key = partition_key_for(event).encode()
                futures.append(await producer.send(topic, key=key, value=value, headers=headers))
            await asyncio.gather(*futures)
            written += len(chunk)
    finally:
        await producer.stop()
    return written


def _chunks(items: Iterator[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
