"""Shared pieces of the coordinator's integration tests: topics, a test executor, readers,
and ``streamcoord run`` as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamcoord.core import Catalog, partition_key_for
from streamcoord.devtools import consistency
from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    CloudEvent,
    RunRecord,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)
from streamcoord.kafka.admin import apply_topics, load_topics
from streamcoord.kafka.settings import KafkaClient, KafkaSettings
from streamcoord.kafka.transport import make_transport
from streamcoord.pipelines.loader import parse_specs
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.runtime.specs import SpecSource
from streamcoord.telemetry.metrics import GLOBAL_INSTRUMENTS, Instruments

#: Parametrize a coordinator test with this to run it on both Kafka clients (``client=``).
BOTH_CLIENTS = pytest.mark.parametrize("client", ["aiokafka", "confluent"])


def catalog_of(spec: str) -> Catalog:
    """A catalog from spec YAML, through the same loader `streamcoord run` uses."""
    loaded = parse_specs(spec, "test.yaml")
    assert not loaded.problems, loaded.problems
    return Catalog.build(loaded.pipelines, loaded.pools, policies=loaded.policies)


async def create_topics(bootstrap: str, topics: TopicNames, partitions: int) -> None:
    """The declared topics (the packaged topics.yaml), prefixed, with fewer partitions for speed."""
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
    coordinator: Coordinator | None = None
    triggers: list[StageTrigger] = field(default_factory=list)

    async def emit(self, value: bytes, key: bytes = b"external") -> None:
        await self.producer.send_and_wait(self.topics.events, key=key, value=value)

    async def emit_event(self, event: CloudEvent) -> None:
        value, headers = encode(event)
        key = partition_key_for(event).encode()
        await self.producer.send_and_wait(self.topics.events, key=key, value=value, headers=headers)

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
    consumer = harness.reader(harness.topics.full(topology.TRIGGERS))
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


STEADY_SPEC = """\
pipelines:
  - name: steady
    run_key: string(event.data.n)
    triggers:
      - kind: event
        type: steady.tick
    stages:
      - name: first
      - name: second
        needs: [first]
"""


class CoordinatorProcess:
    """`streamcoord run` as a child process, as an operator would start it."""

    def __init__(
        self,
        spec: Path,
        bootstrap: str,
        topics: TopicNames,
        group: str,
        *,
        instance_id: str | None = None,
        extra: tuple[str, ...] = (),
        client: KafkaClient = "aiokafka",
    ) -> None:
        self.command = [
            sys.executable, "-m", "streamcoord.cli.main", "run", str(spec),
            "--bootstrap-servers", bootstrap, "--group-id", group,
            "--topic-prefix", topics.prefix, "--kafka-client", client, *extra,
        ]  # fmt: skip
        if instance_id is not None:
            self.command += ["--instance-id", f"{group}-{instance_id}"]
        self.process: asyncio.subprocess.Process | None = None
        self.restored = asyncio.Event()
        self._copy: asyncio.Task[None] | None = None

    async def start(self, log: Path) -> None:
        """Start it; ``restored`` is set once it has restored a partition and is consuming."""
        self.restored = asyncio.Event()
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        self._copy = asyncio.create_task(self._copy_output(self.process, log, self.restored))

    @staticmethod
    async def _copy_output(
        process: asyncio.subprocess.Process, log: Path, restored: asyncio.Event
    ) -> None:
        assert process.stdout is not None
        with log.open("ab") as out:
            async for line in process.stdout:
                out.write(line)
                if b"restored partition" in line:
                    restored.set()

    async def kill(self) -> None:
        """SIGKILL, if it still runs."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        if self._copy is not None:
            await self._copy

    async def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        if self._copy is not None:
            await self._copy
        return code


async def read_all(harness: Harness, topic: str) -> list[tuple[int, int, object]]:
    """(partition, timestamp, event) of every committed record of ``topic``, in offset order."""
    return await consistency.read_decoded(harness.bootstrap, topic)


async def until_runs_succeeded(harness: Harness, count: int) -> None:
    """Follow the run records until ``count`` runs have succeeded (newest record per run)."""
    latest: dict[str, str] = {}
    consumer = harness.reader(harness.topics.runs)
    await consumer.start()
    try:
        async for message in consumer:
            record = decode(message.value, list(message.headers or ()))
            if isinstance(record, RunRecord):
                latest[record.data.run_id] = record.data.status
                if sum(status == "succeeded" for status in latest.values()) >= count:
                    return
    finally:
        await consumer.stop()


async def trigger_counts(harness: Harness) -> Counter[tuple[str, str, int]]:
    """How often each (run, stage, attempt) was triggered, as a read_committed consumer sees it."""
    return await consistency.trigger_counts(harness.bootstrap, harness.topics)


@contextlib.asynccontextmanager
async def in_process(
    bootstrap: str,
    topics: TopicNames,
    group: str,
    *,
    spec: str = STEADY_SPEC,
    specs: SpecSource | None = None,
    executor: bool = True,
    instruments: Instruments = GLOBAL_INSTRUMENTS,
    client: KafkaClient = "aiokafka",
    **settings: int,
) -> AsyncIterator[Harness]:
    """A coordinator and a test executor in this process, stopped cleanly at the end.

    It runs ``spec``, or the versions ``specs`` gives (the specs topic, say), on the Kafka
    ``client``. Without ``executor`` the test answers the triggers itself.
    """
    coordinator = Coordinator(
        catalog_of(spec) if specs is None else specs,
        CoordinatorSettings(
            group_id=group, topic_prefix=topics.prefix, poll_timeout_ms=50, **settings
        ),
        make_transport(KafkaSettings(bootstrap_servers=bootstrap, client=client)),
        instruments=instruments,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    harness = Harness(bootstrap, topics, producer, coordinator)
    stop = asyncio.Event()
    service = asyncio.create_task(coordinator.run(stop))
    answering = [asyncio.create_task(answer_triggers(harness))] if executor else []
    try:
        yield harness
    finally:
        stop.set()
        await asyncio.wait_for(service, 60)
        for task in answering:
            task.cancel()
        await asyncio.gather(*answering, return_exceptions=True)
        await producer.stop()
