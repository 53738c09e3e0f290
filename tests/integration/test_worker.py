"""The worker SDK on a real broker: triggers in, started/heartbeat/outcome reports out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamcoord.core import partition_key_for
from streamcoord.emit import Emitter
from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    CloudEvent,
    ExecutorBinding,
    StageFailed,
    StageProgress,
    StageStarted,
    StageSucceeded,
    StageTrigger,
    StageTriggerData,
)
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.worker import (
    SHUTDOWN_ERROR,
    NonRetryableError,
    StageContext,
    Worker,
    WorkerSettings,
)
from streamcoord.worker.streaming import OffsetFollowerJob
from tests.kafka_fixtures import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

TRIGGERS = topology.TRIGGERS
EVENTS = topology.EVENTS


def trigger(
    run_id: str, stage: str = "extract", attempt: int = 1, **config: object
) -> StageTrigger:
    key = f"{run_id}/{stage}/{attempt}"
    return StageTrigger(
        id=key,
        source="streamcoord/coordinator",
        data=StageTriggerData(
            run_id=run_id, pipeline="orders", run_key="2024-01-01", stage=stage,
            attempt=attempt, params={"day": "2024-01-01"}, idempotency_key=key,
            executor=ExecutorBinding(topic=TRIGGERS, config=config),  # type: ignore[arg-type]
        ),
    )  # fmt: skip


@dataclass
class Broker:
    bootstrap: str
    prefix: str
    group: str

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap, topic_prefix=self.prefix)

    def worker(self, **settings: object) -> Worker:
        options: dict[str, object] = {"group_id": self.group, "heartbeat_interval_s": 30.0}
        options.update(settings)
        return Worker(WorkerSettings(**options), self.kafka)  # type: ignore[arg-type]

    async def send_triggers(self, *triggers: StageTrigger) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            for item in triggers:
                value, headers = encode(item)
                await producer.send_and_wait(
                    self.prefix + TRIGGERS, value=value, headers=headers,
                    key=partition_key_for(item).encode(),
                )  # fmt: skip
        finally:
            await producer.stop()

    async def reports(
        self, until: Callable[[list[CloudEvent]], bool], deadline_s: float = 30.0
    ) -> list[tuple[bytes | None, CloudEvent]]:
        """Events on the events topic (read_committed) once ``until`` holds for them."""
        consumer = AIOKafkaConsumer(
            self.prefix + EVENTS, bootstrap_servers=self.bootstrap, group_id=None,
            auto_offset_reset="earliest", enable_auto_commit=False,
            isolation_level="read_committed",
        )  # fmt: skip
        await consumer.start()
        seen: list[tuple[bytes | None, CloudEvent]] = []
        try:
            async with asyncio.timeout(deadline_s):
                async for message in consumer:
                    seen.append((message.key, decode(message.value, message.headers)))
                    if until([event for _, event in seen]):
                        return seen
        finally:
            await consumer.stop()
        raise AssertionError("unreachable")


def count(kind: type[CloudEvent], n: int = 1) -> Callable[[list[CloudEvent]], bool]:
    return lambda events: sum(isinstance(e, kind) for e in events) >= n


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(30):
            await worker.ready.wait()
        yield stop
    finally:
        stop.set()
        await task


@pytest.fixture
async def broker(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Broker:
    prefix = unique_name("worker") + "."
    await create_topics(kafka_bootstrap, [prefix + TRIGGERS], partitions=2)
    await create_topics(kafka_bootstrap, [prefix + EVENTS], partitions=2)
    return Broker(kafka_bootstrap, prefix, unique_name("group"))


async def test_a_trigger_is_answered_with_started_then_succeeded_and_its_outputs(
    broker: Broker,
) -> None:
    worker = broker.worker()

    @worker.stage("orders.extract")
    async def extract(ctx: StageContext) -> dict[str, object]:
        return {"rows": 3, "day": ctx.params["day"]}

    async with running(worker):
        await broker.send_triggers(trigger("orders/2024-01-01"))
        seen = await broker.reports(count(StageSucceeded))
    events = [event for _, event in seen]
    assert [type(e) for e in events] == [StageStarted, StageSucceeded]
    assert events[0].id == "orders/2024-01-01/extract/1/started"
    succeeded = events[1]
    assert isinstance(succeeded, StageSucceeded)
    assert succeeded.data.outputs == {"rows": 3, "day": "2024-01-01"}
    assert {key for key, _ in seen} == {b"orders/2024-01-01"}  # partition_key_for: the run


async def test_failures_report_the_error_and_whether_a_retry_may_help(broker: Broker) -> None:
    worker = broker.worker()

    @worker.stage("flaky")
    def flaky(ctx: StageContext) -> None:  # sync: runs in the worker's thread pool
        raise RuntimeError("database unavailable")

    @worker.stage("broken")
    async def broken(ctx: StageContext) -> None:
        raise NonRetryableError("column 'price' missing in input")

    async with running(worker):
        await broker.send_triggers(trigger("r1", "flaky"), trigger("r2", "broken"))
        seen = await broker.reports(count(StageFailed, 2))
    failures = {e.data.stage: e.data for _, e in seen if isinstance(e, StageFailed)}
    assert failures["flaky"].retryable is True
    assert "database unavailable" in failures["flaky"].error
    assert failures["broken"].retryable is False
    assert failures["broken"].error == "column 'price' missing in input"


async def test_a_redelivered_trigger_runs_once(broker: Broker) -> None:
    worker = broker.worker(concurrency=4)
    calls: list[str] = []
    release = asyncio.Event()

    @worker.stage("extract")
    async def extract(ctx: StageContext) -> None:
        calls.append(ctx.idempotency_key)
        await release.wait()  # the duplicate arrives while the first delivery is running

    async with running(worker):
        same = trigger("orders/dup")
        await broker.send_triggers(same, same)
        async with asyncio.timeout(20):
            await worker.status.wait_until(lambda status: status.duplicates == 1)
        release.set()
        await broker.send_triggers(same)  # and once more after it finished
        seen = await broker.reports(count(StageSucceeded))
        async with asyncio.timeout(20):
            await worker.status.wait_until(lambda status: status.duplicates == 2)
    assert calls == ["orders/dup/extract/1"]
    assert sum(isinstance(e, StageStarted) for _, e in seen) == 1


async def test_stop_reports_unfinished_work_as_retryable_and_commits_past_it(
    broker: Broker,
) -> None:
    worker = broker.worker(shutdown_grace_s=0.2)
    entered = asyncio.Event()

    @worker.stage("extract")
    async def forever(ctx: StageContext) -> None:
        entered.set()
        await asyncio.Event().wait()

    async with running(worker) as stop:
        await broker.send_triggers(trigger("orders/slow"))
        async with asyncio.timeout(20):
            await entered.wait()
        stop.set()
    seen = await broker.reports(count(StageFailed))
    failure = next(e for _, e in seen if isinstance(e, StageFailed))
    assert failure.data.retryable is True
    assert failure.data.error == SHUTDOWN_ERROR
    assert worker.status.shutdown_failures == 1
    # The outcome is durable, so the group's offset moved past the trigger: not redelivered.
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=broker.group)
    await consumer.start()
    try:
        committed = [
            await consumer.committed(TopicPartition(broker.prefix + TRIGGERS, p)) for p in (0, 1)
        ]
    finally:
        await consumer.stop()
    assert sorted(c or 0 for c in committed) == [0, 1]


async def test_a_streaming_stage_reports_offsets_and_watermark_then_succeeds(
    broker: Broker,
) -> None:
    source = "orders.source"
    await create_topics(broker.bootstrap, [broker.prefix + source])
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(5):
            await producer.send_and_wait(
                broker.prefix + source, value=b"x", timestamp_ms=1_704_067_200_000 + n * 1000
            )
    finally:
        await producer.stop()
    worker = broker.worker()
    worker.registry.add(None, OffsetFollowerJob(broker.kafka, progress_interval_s=0.0))
    async with running(worker):
        await broker.send_triggers(trigger("orders/s", source_topic=source, stop_at_end=True))
        seen = await broker.reports(count(StageSucceeded))
    progress = [e for _, e in seen if isinstance(e, StageProgress)]
    assert progress[-1].data.offsets == {"0": 5}
    assert progress[-1].data.watermark is not None
    assert progress[-1].data.watermark.isoformat() == "2024-01-01T00:00:04+00:00"
    succeeded = next(e for _, e in seen if isinstance(e, StageSucceeded))
    assert succeeded.data.outputs["offsets"] == {"0": 5}


async def test_with_one_slot_a_burst_runs_back_to_back_not_one_poll_timeout_apart(
    broker: Broker,
) -> None:
    # A poll timeout far beyond the test's bound: a worker that waited it out with its
    # fetching paused (every slot busy, a trigger waiting) would not start the next handler.
    worker = broker.worker(concurrency=1, poll_timeout_ms=60_000)
    started: list[str] = []
    entered = asyncio.Event()
    release = asyncio.Event()

    @worker.stage("extract")
    async def extract(ctx: StageContext) -> None:
        started.append(ctx.run_id)
        entered.set()
        await release.wait()
        release.clear()

    burst = [trigger("orders/burst") if n == 0 else trigger(f"orders/burst{n}") for n in range(6)]
    async with running(worker):
        await broker.send_triggers(*burst)
        for n in range(len(burst)):
            async with asyncio.timeout(15):  # a bound, far below the 60 s poll timeout
                await entered.wait()
            entered.clear()
            assert len(started) == n + 1
            release.set()  # the handler returns: the next trigger takes its slot
        seen = await broker.reports(count(StageSucceeded, len(burst)))
    assert sorted(started) == sorted(t.data.run_id for t in burst)
    assert sum(isinstance(e, StageSucceeded) for _, e in seen) == len(burst)


class HeldStartedEmitter(Emitter):
    """The real emitter, holding back the acknowledgement of ``held`` events until
    ``release``."""

    def __init__(self, kafka: KafkaSettings, held: type[CloudEvent] = StageStarted) -> None:
        super().__init__(kafka)
        self.held = held
        self.release = asyncio.Event()

    async def send(self, event: CloudEvent) -> CloudEvent:
        sent = await super().send(event)
        if isinstance(event, self.held):
            await self.release.wait()
        return sent


async def test_the_handler_runs_before_started_is_acknowledged_and_started_comes_first(
    broker: Broker,
) -> None:
    emitter = HeldStartedEmitter(broker.kafka)
    worker = Worker(WorkerSettings(group_id=broker.group), broker.kafka, sink=emitter)
    entered = asyncio.Event()

    @worker.stage("extract")
    async def extract(ctx: StageContext) -> dict[str, object]:
        entered.set()  # `started` is not acknowledged yet
        return {"rows": 1}

    async with emitter, running(worker):
        await broker.send_triggers(trigger("orders/early"))
        async with asyncio.timeout(20):
            await entered.wait()
        assert worker.status.finished == 0  # the outcome waits for `started`
        emitter.release.set()
        seen = await broker.reports(count(StageSucceeded))
    assert [type(e) for _, e in seen] == [StageStarted, StageSucceeded]


async def test_a_slot_frees_when_the_handler_returns_and_the_offset_waits_for_the_outcome(
    broker: Broker,
) -> None:
    emitter = HeldStartedEmitter(broker.kafka, held=StageSucceeded)
    worker = Worker(
        WorkerSettings(group_id=broker.group, concurrency=1), broker.kafka, sink=emitter
    )
    started: list[str] = []
    both = asyncio.Event()

    @worker.stage("extract")
    async def extract(ctx: StageContext) -> None:
        started.append(ctx.run_id)
        if len(started) == 2:
            both.set()

    async with emitter, running(worker):
        await broker.send_triggers(trigger("orders/first"), trigger("orders/second"))
        async with asyncio.timeout(20):
            await both.wait()  # the second ran while the first's outcome was unacknowledged
        assert worker.status.finished == 0
        emitter.release.set()
        seen = await broker.reports(count(StageSucceeded, 2))
        async with asyncio.timeout(20):
            await worker.status.wait_until(lambda status: status.finished == 2)
    assert sorted(started) == ["orders/first", "orders/second"]
    assert sum(isinstance(e, StageSucceeded) for _, e in seen) == 2
