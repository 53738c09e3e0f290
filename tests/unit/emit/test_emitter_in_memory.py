"""The emitter, the command tracker and the read model on the in-memory cluster: what a user's
test of their own emitter (docs/testing.md) can rely on without a broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamcoord.control import CommandTracker
from streamcoord.core import Catalog, partition_for, partition_key_for
from streamcoord.emit import EmitError, Emitter
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.factory import make_event
from streamcoord.events.models import RunRequested, RunRequestedData
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.pipelines.loader import parse_specs
from streamcoord.readmodel import RunQuery, open_store, project
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.testing import MemoryCluster

SETTINGS = KafkaSettings(bootstrap_servers="in-memory:9092")  # never dialled
SPEC = """\
pipelines:
  - name: nightly
    run_key: event.data.day
    triggers:
      - kind: manual
    stages:
      - name: load
"""


@pytest.fixture
def cluster() -> MemoryCluster:
    made = MemoryCluster()
    made.create_declared_topics(partitions=2)
    return made


async def test_an_emitter_sends_onto_the_events_partition_of_each_key(
    cluster: MemoryCluster,
) -> None:
    async with Emitter(SETTINGS, transport=cluster.transport("shop")) as emitter:
        deliveries = await emitter.deliver_many(
            [make_event("order.placed", "shop", {"id": n}, subject=f"order-{n}") for n in range(6)]
        )
    stored = cluster.read(topology.EVENTS)
    assert len(stored) == 6
    for delivery in deliveries:
        assert delivery.partition == partition_for(partition_key_for(delivery.event), 2)
        [record] = [r for r in stored if (r.partition, r.offset) == (
            delivery.partition, delivery.offset)]  # fmt: skip
        assert record.value is not None
        assert decode(record.value, list(record.headers)) == delivery.event


async def test_an_emitter_whose_cluster_is_gone_says_it_cannot_reach_it(
    cluster: MemoryCluster,
) -> None:
    transport = cluster.transport("shop")
    transport.crash()
    with pytest.raises(EmitError, match="cannot reach Kafka"):
        await Emitter(SETTINGS, transport=transport).start()


@contextlib.asynccontextmanager
async def _coordinator(cluster: MemoryCluster) -> AsyncIterator[None]:
    loaded = parse_specs(SPEC, "nightly.yaml")
    assert not loaded.problems, loaded.problems
    coordinator = Coordinator(
        Catalog.build(loaded.pipelines, loaded.pools),
        CoordinatorSettings(),
        cluster.transport("coordinator"),
    )
    stop = asyncio.Event()
    running = asyncio.create_task(coordinator.run(stop))
    await coordinator.ready.wait()
    try:
        yield
    finally:
        stop.set()
        await running


async def test_a_sent_command_is_tracked_and_its_run_projected(
    cluster: MemoryCluster, tmp_path: Path
) -> None:
    topics = TopicNames()
    request = RunRequested(
        id="request-1", source="cli",
        data=RunRequestedData(pipeline="nightly", run_key="2026-12-01"),
    )  # fmt: skip
    unknown = RunRequested(
        id="request-2",
        source="cli",
        data=RunRequestedData(pipeline="no-such-pipeline", run_key="k"),
    )
    tracker = CommandTracker(cluster.transport("api"), topics)
    await tracker.start()
    try:
        async with _coordinator(cluster):
            async with Emitter(SETTINGS, transport=cluster.transport("api")) as emitter:
                sent = await emitter.deliver(request)
                refused = await emitter.deliver(unknown)
            tracker.track(sent, principal="user:ada", subject="nightly")
            tracker.track(refused, principal="user:ada", subject="no-such-pipeline")
            accepted = await tracker.wait("request-1", timeout_s=10)
            rejected = await tracker.wait("request-2", timeout_s=10)
    finally:
        await tracker.stop()
    # accepted: the run record was committed with the decision, so a projector started now
    # has it in the store once it caught up
    store = open_store(f"sqlite:///{tmp_path / 'readmodel.db'}")
    stop, caught_up = asyncio.Event(), asyncio.Event()
    projecting = asyncio.create_task(
        project(store, cluster.transport("projector"), topics, stop, caught_up=caught_up)
    )
    try:
        await asyncio.wait_for(caught_up.wait(), 10)
    finally:
        stop.set()
        await projecting
    assert accepted is not None
    assert accepted.state == "accepted"
    assert rejected is not None
    assert (rejected.state, rejected.reason) == ("rejected", "unknown_pipeline")
    [run] = store.list_runs(RunQuery(pipeline="nightly")).items
    assert run.run_key == "2026-12-01"
    store.close()
