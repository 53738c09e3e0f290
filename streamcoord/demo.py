"""The end-to-end demo: the example pipelines on a real broker, from the first hourly partition
to a deployed model.

One process runs what would be separate services in production: the coordinator, a shell
worker for batch stages and a streaming worker. It emits the 48 ``dataset.landed`` events of one
day (24 hourly partitions of clicks and orders) and asks for the streaming ``features`` run; the
rest is the coordinator's doing. ``on_record`` sees every run record as it is committed, which is
what the CLI draws its live progress from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from streamcoord.core import Catalog
from streamcoord.emit import Emitter
from streamcoord.errors import StreamcoordError
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    RunRecord,
    RunRequested,
    RunRequestedData,
)
from streamcoord.events.topics import PACKAGED_TOPICS_FILE
from streamcoord.kafka.admin import apply_topics, load_topics
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.ports import Record
from streamcoord.kafka.records import read_topic
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.worker import Worker, WorkerSettings
from streamcoord.worker.shell import ShellExecutor
from streamcoord.worker.streaming import OffsetFollowerJob

__all__ = [
    "DATASETS",
    "EXPECTED_RUNS",
    "DemoError",
    "DemoProgress",
    "demo_events",
    "pick_day",
    "run_demo",
]

DATASETS = ("clicks", "orders")
HOURS = 24
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})

log = logging.getLogger(__name__)


class DemoError(StreamcoordError):
    """The demo did not reach its end state."""


def demo_events(day: date) -> list[CloudEvent]:
    """Everything the outside world says during the demo day, in the order it says it."""
    events: list[CloudEvent] = []
    for hour in range(HOURS):
        partition = f"{day.isoformat()}T{hour:02d}"
        landed_at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(hours=1)
        events.extend(
            ExternalEvent(
                id=f"landed/{dataset}/{partition}",
                source=f"s3://landing/{dataset}",
                type="dataset.landed",
                subject=f"{dataset}/{partition}",
                time=landed_at,
                data={
                    "dataset": dataset,
                    "partition": partition,
                    "date": day.isoformat(),
                    "uri": f"s3://landing/{dataset}/{partition}.parquet",
                },
            )
            for dataset in DATASETS
        )
    events.append(
        RunRequested(
            id=f"demo/features/{day.isoformat()}",
            source="streamcoord/demo",
            data=RunRequestedData(pipeline="features", run_key=day.isoformat()),
        )
    )
    return events


#: How many runs of each pipeline the demo day ends with.
EXPECTED_RUNS = {"ingest": HOURS * len(DATASETS), "daily": 1, "ml": 1, "features": 1}


def pick_day(used: set[str], today: date) -> date:
    """Today, or the day after the newest earlier demo day: a rerun starts fresh runs, and its
    arrivals stay ahead of the daily watermark (an earlier day would be late and not count)."""
    if not used:
        return today
    return max(today, max(date.fromisoformat(day) for day in used) + timedelta(days=1))


@dataclass
class DemoProgress:
    """The newest status of every run the demo day produced."""

    day: date
    runs: dict[str, RunRecord] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, record: RunRecord) -> None:
        self.runs[record.data.run_id] = record
        self.changed.set()

    def count(self, pipeline: str, status: str | None = None) -> int:
        return sum(
            1
            for r in self.runs.values()
            if r.data.pipeline == pipeline and (status is None or r.data.status == status)
        )

    @property
    def finished(self) -> bool:
        return all(self.count(p, "succeeded") >= n for p, n in EXPECTED_RUNS.items())

    @property
    def failed_runs(self) -> list[str]:
        return sorted(
            r.data.run_id for r in self.runs.values() if r.data.status in TERMINAL - {"succeeded"}
        )


async def _used_days(kafka: KafkaSettings, topics: TopicNames) -> set[str]:
    contents = await read_topic(kafka.client_kwargs(), topics.runs)
    days: set[str] = set()
    for stored in contents.records:
        with contextlib.suppress(StreamcoordError):
            record = decode(stored.value, stored.headers)
            if isinstance(record, RunRecord) and record.data.pipeline == "daily":
                days.add(record.data.run_key)
    return days


@contextlib.asynccontextmanager
async def _services(
    catalog: Catalog, kafka: KafkaSettings, topics: TopicNames
) -> AsyncIterator[Coordinator]:
    """Coordinator, shell worker and streaming worker, stopped cleanly on the way out."""
    stop = asyncio.Event()
    coordinator = Coordinator(
        catalog,
        CoordinatorSettings(topic_prefix=topics.prefix, poll_timeout_ms=50),
        kafka.client_kwargs(),
    )
    shell = Worker(
        WorkerSettings(
            group_id="streamcoord-worker-shell",
            concurrency=8,
            heartbeat_interval_s=5.0,
            poll_timeout_ms=50,
        ),
        kafka,
    )
    shell.registry.add(None, ShellExecutor())
    streaming = Worker(
        WorkerSettings(
            group_id="streamcoord-worker-streaming",
            topics=[topology.STREAMING_TRIGGERS],
            poll_timeout_ms=50,
        ),
        kafka,
    )
    streaming.registry.add(None, OffsetFollowerJob(kafka, progress_interval_s=1.0))
    tasks = [
        asyncio.create_task(coordinator.run(stop), name="coordinator"),
        asyncio.create_task(shell.run(stop), name="shell worker"),
        asyncio.create_task(streaming.run(stop), name="streaming worker"),
    ]
    try:
        yield coordinator
    finally:
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
        for task, result in zip(tasks, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("%s stopped with %r", task.get_name(), result)


async def _follow_runs(
    kafka: KafkaSettings,
    topics: TopicNames,
    progress: DemoProgress,
    on_record: Callable[[RunRecord], None],
    started: asyncio.Event,
) -> None:
    """Feed every run record committed from now on to ``progress`` and ``on_record``."""
    consumer = KafkaTransport(kafka.client_kwargs()).partition_reader()
    await consumer.start()
    try:
        tps = await consumer.partitions(topics.runs)
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)  # before the first event goes out
        started.set()
        while True:
            batch = await consumer.fetch(timeout_ms=1000)
            for message in [m for messages in batch.values() for m in messages]:
                _take_run_record(message, progress, on_record)
    finally:
        progress.changed.set()  # wake the waiter: it checks whether the follower ended
        await consumer.stop()


def _take_run_record(
    message: Record, progress: DemoProgress, on_record: Callable[[RunRecord], None]
) -> None:
    """Count ``message`` when it is a run record of the demo's day."""
    with contextlib.suppress(StreamcoordError):
        record = decode(message.value, list(message.headers or ()))
        # run keys hold the day: "2026-11-28", "clicks/2026-11-28T03"
        if isinstance(record, RunRecord) and progress.day.isoformat() in record.data.run_key:
            progress.add(record)
            on_record(record)


async def run_demo(
    kafka: KafkaSettings,
    catalog: Catalog,
    *,
    topics_file: Path = PACKAGED_TOPICS_FILE,
    on_record: Callable[[RunRecord], None] = lambda _: None,
    on_phase: Callable[[str], None] = lambda _: None,
    timeout_s: float = 300.0,
    today: date | None = None,
) -> DemoProgress:
    """Run the demo day to its end; raises :class:`DemoError` when a run fails or time runs out."""
    topics = TopicNames(kafka.topic_prefix)
    on_phase("creating topics")
    await apply_topics(kafka, load_topics(topics_file).with_prefix(topics.prefix))
    day = pick_day(await _used_days(kafka, topics), today or datetime.now(UTC).date())
    progress = DemoProgress(day)
    on_phase(f"demo day {day.isoformat()}: starting coordinator and workers")
    async with _services(catalog, kafka, topics) as coordinator:
        await asyncio.wait_for(coordinator.ready.wait(), 60)
        following = asyncio.Event()
        follower = asyncio.create_task(_follow_runs(kafka, topics, progress, on_record, following))
        try:
            await asyncio.wait_for(following.wait(), 30)
            on_phase(f"emitting {HOURS * len(DATASETS)} dataset.landed events")
            async with Emitter(kafka) as emitter:
                await emitter.send_many(demo_events(day))
            on_phase("waiting for every run to finish")
            await _until_finished(progress, follower, timeout_s)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
    return progress


async def _until_finished(
    progress: DemoProgress, follower: asyncio.Task[None], timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not progress.finished:
        if progress.failed_runs:
            raise DemoError(
                f"runs ended without success: {', '.join(progress.failed_runs)}",
                hint="`streamcoord explain RUN STAGE` says why",
            )
        if follower.done():
            follower.result()
            raise DemoError("stopped following the run records")
        progress.changed.clear()
        try:
            await asyncio.wait_for(progress.changed.wait(), max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise DemoError(
                f"the demo did not finish within {timeout_s:.0f}s",
                hint="`streamcoord runs` shows where it stands",
            ) from None
