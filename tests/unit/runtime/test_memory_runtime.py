"""The coordinator runtime on the in-memory cluster: a whole coordinator (group consumer, lanes,
partition processors, outbox, changelog, timers) without a broker, including a member that crashes
with a batch written but not committed, and members joining and leaving the group."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from streamcoord.core import Catalog, partition_key_for
from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import CloudEvent, ExternalEvent, StageTrigger, TimerFired
from streamcoord.events.specs import SpecsRecord
from streamcoord.kafka.ports import OutRecord, Record, TopicPartition
from streamcoord.pipelines.loader import parse_specs
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.runtime.changelog import POSITION_KEY, Positions, read_changelog
from streamcoord.runtime.lane import PartitionLane
from streamcoord.runtime.outbox import Outbox
from streamcoord.runtime.partition import BatchOutcome, PartitionProcessor
from streamcoord.runtime.specs import SpecsFollower, version_of
from streamcoord.testing import MemoryCluster, MemoryTransport, ProducerFenced

TOPICS = TopicNames()
TRIGGERS = topology.TRIGGERS
STEADY = """\
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


def _catalog(spec: str = STEADY) -> Catalog:
    loaded = parse_specs(spec, "test.yaml")
    assert not loaded.problems, loaded.problems
    return Catalog.build(loaded.pipelines, loaded.pools)


def _tick(n: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    event = ExternalEvent(id=f"tick-{n}", source="clock", type="steady.tick", data={"n": n})
    value, headers = encode(event)
    return partition_key_for(event).encode(), value, headers


def _trigger_counts(cluster: MemoryCluster) -> Counter[tuple[str, str, int]]:
    counts: Counter[tuple[str, str, int]] = Counter()
    for record in cluster.read(TRIGGERS):
        trigger = decode(record.value, list(record.headers))
        if not isinstance(trigger, StageTrigger):
            continue  # a cancel
        counts[trigger.data.run_id, trigger.data.stage, trigger.data.attempt] += 1
    return counts


@dataclass
class Member:
    """A coordinator running in a task on its own transport (a simulated process)."""

    coordinator: Coordinator
    transport: MemoryTransport
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def halt(self) -> None:
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
def cluster() -> MemoryCluster:
    cluster = MemoryCluster()
    cluster.create_declared_topics(partitions=2)
    return cluster


@contextlib.asynccontextmanager
async def members(cluster: MemoryCluster) -> AsyncIterator[list[Member]]:
    """Start members with ``start(name)``; whatever is still running is stopped at the end."""
    started: list[Member] = []
    try:
        yield started
    finally:
        for member in started:
            if member.task is not None and not member.task.done():
                member.stop.set()
        for member in started:
            if member.task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(member.task, 10)


def _start(cluster: MemoryCluster, started: list[Member], name: str) -> Member:
    settings = CoordinatorSettings(group_id="g", group_offsets_interval_s=0.05)
    transport = cluster.transport(name)
    member = Member(Coordinator(_catalog(), settings, transport), transport)
    member.task = asyncio.create_task(member.coordinator.run(member.stop), name=name)
    started.append(member)
    return member


async def test_an_event_triggers_its_first_stage_once(cluster: MemoryCluster) -> None:
    async with members(cluster) as started:
        member = _start(cluster, started, "a")
        await asyncio.wait_for(member.coordinator.ready.wait(), 10)
        for n in range(5):
            cluster.produce(TOPICS.events, *_tick(n))
        await cluster.wait_for(lambda: len(_trigger_counts(cluster)) == 5)
        await member.halt()
    assert _trigger_counts(cluster) == {(f"steady/{n}", "first", 1): 1 for n in range(5)}
    assert member.coordinator.status.triggered == 5
    assert sorted(member.coordinator.status.assigned) == []  # left the group


async def test_a_member_that_crashes_mid_batch_leaves_the_batch_to_the_next_owner(
    cluster: MemoryCluster,
) -> None:
    async with members(cluster) as started:
        a = _start(cluster, started, "a")
        await asyncio.wait_for(a.coordinator.ready.wait(), 10)
        # a decides the tick, writes its trigger, and dies before the commit
        a.transport.hold_commits(lambda txn: TRIGGERS in txn.topics)
        cluster.produce(TOPICS.events, *_tick(7))
        await asyncio.wait_for(a.transport.holding.wait(), 10)
        a.transport.crash()
        with pytest.raises(Exception):  # noqa: B017,PT011 - whatever a dead process's calls raise
            await asyncio.wait_for(a.task, 10)  # type: ignore[arg-type]
        assert _trigger_counts(cluster) == {}  # written, never committed: invisible
        b = _start(cluster, started, "b")
        await cluster.wait_for(lambda: bool(_trigger_counts(cluster)))
        await b.halt()
    assert _trigger_counts(cluster) == {("steady/7", "first", 1): 1}
    assert b.coordinator.status.triggered == 1


async def test_partitions_move_between_members_without_losing_or_doubling_a_decision(
    cluster: MemoryCluster,
) -> None:
    async with members(cluster) as started:
        a = _start(cluster, started, "a")
        await asyncio.wait_for(a.coordinator.ready.wait(), 10)
        for n in range(10):
            cluster.produce(TOPICS.events, *_tick(n))
        b = _start(cluster, started, "b")  # joins while a decides: the group rebalances
        for n in range(10, 20):
            cluster.produce(TOPICS.events, *_tick(n))
        await cluster.wait_for(lambda: len(_trigger_counts(cluster)) == 20)
        await cluster.wait_for(
            lambda: a.coordinator.status.assigned == [0] and b.coordinator.status.assigned == [1]
        )
        await b.halt()  # leaves: a takes partition 1 back, from b's committed positions
        for n in range(20, 30):
            cluster.produce(TOPICS.events, *_tick(n))
        await cluster.wait_for(lambda: len(_trigger_counts(cluster)) == 30)
        await cluster.wait_for(lambda: a.coordinator.status.assigned == [0, 1])
    assert _trigger_counts(cluster) == {(f"steady/{n}", "first", 1): 1 for n in range(30)}


async def test_a_started_sink_fences_the_older_one_and_aborts_its_open_batch(
    cluster: MemoryCluster,
) -> None:
    old = cluster.transport("old").transactional_sink("t", timeout_s=30)
    await old.start()
    await old.begin()
    await old.write({(TOPICS.runs, 0): [OutRecord(b"k", b"v")]})
    assert cluster.stable_end(TopicPartition(TOPICS.runs, 0)) == 0  # open: nothing readable
    new = cluster.transport("new").transactional_sink("t", timeout_s=30)
    await new.start()
    with pytest.raises(ProducerFenced):
        await old.commit()
    assert cluster.read(TOPICS.runs) == []  # aborted
    assert cluster.stable_end(TopicPartition(TOPICS.runs, 0)) == 2  # the record and the marker


async def test_the_outbox_places_keyed_records_as_kafka_does_and_commits_them_together(
    cluster: MemoryCluster,
) -> None:
    sink = cluster.transport().transactional_sink("t", timeout_s=30)
    await sink.start()
    outbox = Outbox()
    keys = [f"run-{n}" for n in range(8)]
    for key in keys:
        outbox.add(TOPICS.runs, key.encode(), b"v")
    outbox.add(TOPICS.state, b"pinned", b"p", partition=1)
    await sink.begin()
    await outbox.flush(sink)
    assert cluster.read(TOPICS.runs) == []
    await sink.commit()
    for key in keys:
        homes = [r.partition for r in cluster.read(TOPICS.runs) if r.key == key.encode()]
        expected = cluster.produce(TOPICS.deadletter, key.encode(), b"x").partition
        assert homes == [expected]  # the same partition a plain keyed send picks
    assert [(r.partition, r.key) for r in cluster.read(TOPICS.state)] == [(1, b"pinned")]


async def test_the_changelog_restores_last_values_and_positions_of_committed_batches(
    cluster: MemoryCluster,
) -> None:
    transport = cluster.transport()
    sink = transport.transactional_sink("t", timeout_s=30)
    await sink.start()
    for batch, abort in (
        ([(b"a", b"1"), (b"b", b"1"), (POSITION_KEY.encode(), Positions(5, 3).value())], False),
        ([(b"a", b"2"), (b"b", None), (POSITION_KEY.encode(), Positions(9, 4).value())], False),
        ([(b"a", b"3"), (POSITION_KEY.encode(), Positions(12, 6).value())], True),
    ):
        await sink.begin()
        await sink.write({(TOPICS.state, 1): [OutRecord(k, v) for k, v in batch]})
        await (sink.abort() if abort else sink.commit())
    restored = await read_changelog(transport.changelog(TOPICS.state), 1)
    assert restored.items == {"a": b"2"}
    assert (restored.positions.events, restored.positions.internal) == (9, 4)
    assert restored.records == 6


async def test_the_specs_follower_reads_every_version_and_follows_new_ones(
    cluster: MemoryCluster,
) -> None:
    def publish(spec: str) -> str:
        files = {"test.yaml": spec}
        version = version_of(files)
        record = SpecsRecord(version=version, applied_at=datetime(2026, 1, 1, tzinfo=UTC),
                             applied_by="test", message=None, files=files)  # fmt: skip
        cluster.produce(TOPICS.specs, version.encode(), record.to_bytes())
        return version

    first = publish(STEADY)
    follower = SpecsFollower(cluster.transport(), TOPICS, wait_s=5)
    await follower.start()
    try:
        assert set(follower.current().versions) == {first}
        second = publish(STEADY.replace("steady.tick", "steady.tock"))
        assert set((await follower.require([second])).versions) == {first, second}
        assert follower.current().default.version == second
    finally:
        await follower.stop()


async def test_a_failed_commit_is_decided_again_from_the_committed_state(
    cluster: MemoryCluster,
) -> None:
    async with members(cluster) as started:
        a = _start(cluster, started, "a")
        await asyncio.wait_for(a.coordinator.ready.wait(), 10)
        a.transport.fail_commits(lambda txn: TRIGGERS in txn.topics, times=2)
        cluster.produce(TOPICS.events, *_tick(3))
        await cluster.wait_for(lambda: bool(_trigger_counts(cluster)))
        await a.halt()
    assert _trigger_counts(cluster) == {("steady/3", "first", 1): 1}
    assert a.coordinator.status.errors == 2  # two retries, one trigger


TIMED = """\
pipelines:
  - name: timed
    run_key: string(event.data.n)
    triggers:
      - kind: event
        type: steady.tick
    stages:
      - name: first
        start_timeout_seconds: 0.2
        retries:
          max_attempts: 2
          backoff: {initial_seconds: 0.1, jitter: 0}
"""


async def test_timers_fire_onto_the_internal_topic_and_time_out_an_unstarted_attempt(
    cluster: MemoryCluster,
) -> None:
    settings = CoordinatorSettings(group_id="g")
    transport = cluster.transport("a")
    member = Member(Coordinator(_catalog(TIMED), settings, transport), transport)
    member.task = asyncio.create_task(member.coordinator.run(member.stop))
    try:
        cluster.produce(TOPICS.events, *_tick(1))
        # nobody reports `started`: attempt 1 times out, attempt 2 is triggered after backoff
        await cluster.wait_for(lambda: len(_trigger_counts(cluster)) == 2)
    finally:
        await member.halt()
    assert _trigger_counts(cluster) == {("timed/1", "first", 1): 1, ("timed/1", "first", 2): 1}
    assert member.coordinator.status.timers_fired >= 2
    fired = [decode(r.value, list(r.headers)).type for r in cluster.read(TOPICS.internal)]
    assert fired.count(TimerFired.TYPE) >= 2


class _SlowWorker:
    """Stands in for a partition processor: each batch waits until the test lets it through."""

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self.internal_tp = TopicPartition(TOPICS.internal, tp.partition)
        self.gate = asyncio.Event()
        self.batches: list[list[int]] = []

    def next_offsets(self) -> dict[TopicPartition, int]:
        return {}

    async def process(self, records: list[Record]) -> BatchOutcome:
        await self.gate.wait()
        self.batches.append([record.offset for record in records])
        return BatchOutcome(consumed=len(records))


async def test_a_lane_that_falls_behind_pauses_its_partition_until_it_catches_up(
    cluster: MemoryCluster,
) -> None:
    tp = TopicPartition(TOPICS.events, 0)
    consumer = cluster.transport().group_consumer("g", instance_id=None, max_records=100)
    assigned = asyncio.Event()

    async def given(partitions: set[TopicPartition]) -> None:
        assigned.set()

    async def revoked(partitions: set[TopicPartition]) -> None:
        pass

    consumer.subscribe([TOPICS.events], on_revoked=revoked, on_assigned=given)
    for n in range(12):
        cluster.produce(TOPICS.events, b"k", f"{n}".encode(), partition=0)
    worker = _SlowWorker(tp)
    outcomes: list[BatchOutcome] = []
    lane = PartitionLane(
        worker, consumer, max_batch=2, on_outcome=outcomes.append,  # type: ignore[arg-type]
        on_retry=lambda _: None, on_fatal=lambda exc: None,
    )  # fmt: skip
    try:
        await asyncio.wait_for(assigned.wait(), 10)
        # 8 = 4 x max_batch records waiting: the partition is paused, later records stay put
        lane.feed(list((await consumer.fetch(timeout_ms=1000, max_records=8))[tp]))
        assert await consumer.fetch(timeout_ms=50, max_records=100) == {}
        worker.gate.set()  # the lane catches up and resumes its partition
        for _ in range(100):  # bounded: a few fetches bring the rest
            batch = await consumer.fetch(timeout_ms=100, max_records=100)
            if tp in batch:
                lane.feed(list(batch[tp]))
            if sum(o.consumed for o in outcomes) == 12:
                break
    finally:
        await lane.close()
        await consumer.stop()
    assert [offset for batch in worker.batches for offset in batch] == list(range(12))
    assert max(len(batch) for batch in worker.batches) == 2


async def test_a_partition_admits_events_records_then_decides_the_copies() -> None:
    cluster = MemoryCluster()
    cluster.create_declared_topics(partitions=1)  # every run's messages stay on partition 0
    transport = cluster.transport()
    events, internal = TopicPartition(TOPICS.events, 0), TopicPartition(TOPICS.internal, 0)
    cluster.produce(TOPICS.events, *_tick(4))
    settings = CoordinatorSettings(group_id="g")
    worker = await PartitionProcessor.restore(events, 1, _catalog(), settings, transport)
    decided = 0
    try:
        admitted = await worker.process(cluster.read_partition(events, 0)[0])
        assert (admitted.admitted, admitted.published) == (1, 1)
        assert _trigger_counts(cluster) == {}  # admitted, not decided yet
        for _ in range(5):  # the core's own messages (a match) are decided in turn
            records, _ = cluster.read_partition(internal, worker.positions.internal or 0)
            if not records:
                break
            decided += (await worker.process(records)).consumed
    finally:
        await worker.close()
    assert decided >= 1  # the admitted copy (and any message deciding it sent to the run)
    assert _trigger_counts(cluster) == {("steady/4", "first", 1): 1}
    restored = await read_changelog(transport.changelog(TOPICS.state), 0)
    assert restored.positions == worker.positions
    assert restored.positions.events == 1


class _Recorder:
    """A batch observer that keeps what it is shown."""

    def __init__(self) -> None:
        self.decisions: list[str] = []
        self.outcomes: list[BatchOutcome] = []
        self.restores: list[int] = []

    def deciding(self, record: Record, event: CloudEvent) -> contextlib.nullcontext[None]:
        self.decisions.append(event.type)
        return contextlib.nullcontext()

    def committed(self, outcome: BatchOutcome) -> None:
        self.outcomes.append(outcome)

    def restored(self, partition: int, seconds: float) -> None:
        self.restores.append(partition)

    def sampling_due(self) -> bool:
        return True

    def sample(self, active_runs: int, lag: Mapping[int, int]) -> None:
        self.active_runs = active_runs


async def test_a_batch_observer_sees_every_decision_and_committed_batch(
    cluster: MemoryCluster,
) -> None:
    observer = _Recorder()
    settings = CoordinatorSettings(group_id="g")
    coordinator = Coordinator(_catalog(), settings, cluster.transport("a"), observer=observer)
    stop = asyncio.Event()
    task = asyncio.create_task(coordinator.run(stop))
    try:
        await asyncio.wait_for(coordinator.ready.wait(), 10)
        for n in range(3):
            cluster.produce(TOPICS.events, *_tick(n))
        await cluster.wait_for(lambda: len(_trigger_counts(cluster)) == 3)
        await cluster.wait_for(lambda: getattr(observer, "active_runs", 0) == 3)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert sorted(observer.restores) == [0, 1]
    # each admitted copy decided once (and the matches it routed to the run's partition)
    assert observer.decisions.count("steady.tick") == 3
    assert len(observer.decisions) == sum(sum(o.types.values()) for o in observer.outcomes)
    assert sum(o.admitted for o in observer.outcomes) == 3
    assert sum(len(o.trigger_event_times) for o in observer.outcomes) == 3
    assert sum(o.consumed for o in observer.outcomes) == coordinator.status.consumed
