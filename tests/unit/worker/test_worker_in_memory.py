"""The worker SDK on the in-memory cluster: what docs/testing.md promises a user's test."""

from __future__ import annotations

import asyncio

from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    CloudEvent,
    StageCancel,
    StageCancelData,
    StageStarted,
    StageSucceeded,
)
from streamcoord.kafka.ports import TopicPartition
from streamcoord.testing import MemoryCluster
from streamcoord.worker import StageContext, Worker, WorkerSettings
from tests.unit.worker.helpers import make_trigger


def _reports(cluster: MemoryCluster) -> list[object]:
    return [decode(r.value, list(r.headers)) for r in cluster.read(topology.EVENTS)]


def _send(cluster: MemoryCluster, event: CloudEvent) -> None:
    value, headers = encode(event)
    cluster.produce(topology.TRIGGERS, b"orders/2024-01-01", value, headers, partition=0)


async def test_a_trigger_is_run_reported_and_its_offset_committed() -> None:
    cluster = MemoryCluster()
    cluster.create_declared_topics(partitions=2)
    worker = Worker(
        WorkerSettings(group_id="workers", poll_timeout_ms=50),
        transport=cluster.transport("worker"),
    )
    seen: list[str] = []

    @worker.stage("orders.extract")
    async def extract(ctx: StageContext) -> dict[str, int]:
        seen.append(ctx.idempotency_key)
        return {"rows": 3}

    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.ready.wait(), 10)
    _send(cluster, make_trigger("extract"))
    await cluster.wait_for(lambda: any(isinstance(e, StageSucceeded) for e in _reports(cluster)))
    stop.set()
    await running

    assert seen == ["orders/2024-01-01/extract/1"]
    started, succeeded = _reports(cluster)
    assert isinstance(started, StageStarted)
    assert isinstance(succeeded, StageSucceeded)
    # committed past the trigger: a restarted worker does not run it again
    assert cluster._groups["workers"].committed[TopicPartition(topology.TRIGGERS, 0)] == 1


async def test_a_cancel_stops_the_running_attempt_and_frees_its_slot() -> None:
    cluster = MemoryCluster()
    cluster.create_declared_topics(partitions=1)
    worker = Worker(
        WorkerSettings(group_id="workers", concurrency=1, poll_timeout_ms=50),
        transport=cluster.transport("worker"),
    )
    release = asyncio.Event()

    @worker.stage("orders.extract")
    async def extract(ctx: StageContext) -> None:
        await release.wait()  # never set: only the cancel ends it

    @worker.stage("orders.load")
    async def load(ctx: StageContext) -> None:
        pass

    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(worker.ready.wait(), 10)
    first = make_trigger("extract")
    _send(cluster, first)
    await worker.status.wait_until(lambda s: s.started == 1)
    data = first.data
    cancel = StageCancelData(
        run_id=data.run_id,
        pipeline=data.pipeline,
        stage=data.stage,
        attempt=data.attempt,
        idempotency_key=data.idempotency_key,
        cause="run_cancelled",
    )
    _send(cluster, StageCancel(id="cancel-1", source="streamcoord/coordinator", data=cancel))
    _send(cluster, make_trigger("load"))  # runs in the slot the cancelled attempt frees
    await asyncio.wait_for(worker.status.wait_until(lambda s: s.finished == 2), 10)
    stop.set()
    await running
    assert worker.status.cancelled == 1
    assert cluster._groups["workers"].committed[TopicPartition(topology.TRIGGERS, 0)] == 3
