"""Cancellation and timeouts reach the executor: a coordinator and a shell worker in this process
on a real broker. A cancelled run leaves no process behind; an attempt nobody started times out,
is cancelled on the trigger topic, and its retry runs once a worker is back, never alongside it."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streamcoord.events import topology
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    RunCancel,
    StageCancel,
    StageTrigger,
)
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.worker import Worker, WorkerSettings
from streamcoord.worker.shell import ShellExecutor, group_running
from tests.integration.coordination import (
    Harness,
    catalog_of,
    create_topics,
    read_all,
    run_record_with_status,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]

SPEC = """\
pipelines:
  - name: jobs
    run_key: event.data.key
    triggers:
      - kind: event
        type: job.go
    stages:
      - name: work
        start_timeout_seconds: {start_timeout}
        retries:
          max_attempts: 3
          backoff: {{initial_seconds: {backoff}, jitter: 0}}
        executor:
          config:
            shell: true
            command: {command}
"""
# Writes "start <attempt> <pid>" and its background child's pid, then runs until stopped; on
# SIGTERM it writes "end <attempt>". The retry (attempt > 1) ends at once.
COMMAND = (
    "echo start {attempt} $$ >> {log}; "
    "if [ {attempt} -gt 1 ]; then echo end {attempt} >> {log}; exit 0; fi; "
    "trap 'echo end {attempt} >> {log}; exit 143' TERM; "
    "sleep 300 & echo $! > {pidfile}; wait"
)


@contextlib.asynccontextmanager
async def coordinator(
    bootstrap: str, topics: TopicNames, group: str, spec: str
) -> AsyncIterator[Harness]:
    service = Coordinator(
        catalog_of(spec),
        CoordinatorSettings(group_id=group, topic_prefix=topics.prefix, poll_timeout_ms=50),
        {"bootstrap_servers": bootstrap},
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield Harness(bootstrap, topics, producer, service)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await producer.stop()


@contextlib.asynccontextmanager
async def shell_worker(bootstrap: str, topics: TopicNames, group: str) -> AsyncIterator[Worker]:
    worker = Worker(
        WorkerSettings(group_id=group, concurrency=4, heartbeat_interval_s=30.0,
                       poll_timeout_ms=50),
        KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=topics.prefix),
    )  # fmt: skip
    worker.registry.add(None, ShellExecutor(kill_grace_s=5.0))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(30):
            await worker.ready.wait()
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicNames:
    names = TopicNames(prefix=f"{unique_name('cancel')}.")
    await create_topics(kafka_bootstrap, names, partitions=2)
    return names


def spec(tmp_path: Path, *, start_timeout: float, backoff: float) -> str:
    command = COMMAND.format(
        attempt="{attempt}", log=tmp_path / "log", pidfile=tmp_path / "child.pid"
    )
    return SPEC.format(start_timeout=start_timeout, backoff=backoff, command=f'"{command}"')


async def child_pid(path: Path) -> int:
    """The pid the command wrote (another process: nothing to await but the file)."""
    async with asyncio.timeout(30):
        while not (text := await asyncio.to_thread(_read, path)):  # noqa: ASYNC110  # a file
            await asyncio.sleep(0.02)
    return int(text)


def _read(path: Path) -> str:
    return path.read_text().strip() if path.exists() else ""


async def on_trigger_topic(
    harness: Harness, until: Callable[[list[CloudEvent]], bool]
) -> tuple[list[CloudEvent], set[int]]:
    """Trigger-topic events (committed, in offset order; one run keeps to one partition) once
    ``until`` holds for them, and the partitions they are on."""
    async with asyncio.timeout(60):
        while True:
            records = await read_all(harness, harness.topics.full(topology.TRIGGERS))
            events = [e for *_, e in records if isinstance(e, CloudEvent)]
            if until(events):
                return events, {partition for partition, *_ in records}
            await asyncio.sleep(0.2)  # the topic is re-read; no event tells a reader "more"


async def test_a_cancelled_run_leaves_no_process_behind(
    kafka_bootstrap: str, topics: TopicNames, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    text = spec(tmp_path, start_timeout=60, backoff=1)
    async with (
        coordinator(kafka_bootstrap, topics, unique_name("coord"), text) as harness,
        shell_worker(kafka_bootstrap, topics, unique_name("shell")) as worker,
    ):
        await harness.emit_event(
            ExternalEvent(id="go-1", source="test", type="job.go", data={"key": "a"})
        )
        child = await child_pid(tmp_path / "child.pid")
        group = os.getpgid(child)
        assert group_running(group)
        await harness.emit_event(
            RunCancel(id="cancel-1", source="test", data={"run_id": "jobs/a", "reason": "operator"})
        )
        async with asyncio.timeout(30):  # the attempt ends only once its process group is gone
            await worker.status.wait_until(lambda s: s.finished == 1)
        assert not group_running(group)
        assert worker.status.cancelled == 1
        await asyncio.wait_for(run_record_with_status(harness, "jobs/a", "cancelled"), 30)
        events, partitions = await on_trigger_topic(
            harness, lambda es: any(isinstance(e, StageCancel) for e in es)
        )
    assert [type(e) for e in events] == [StageTrigger, StageCancel]  # in order
    assert len(partitions) == 1  # the trigger's key
    cancel = events[1]
    assert isinstance(cancel, StageCancel)
    assert (cancel.data.idempotency_key, cancel.data.cause) == ("jobs/a/work/1", "run_cancelled")
    log = (tmp_path / "log").read_text().split("\n")
    assert log[0].startswith("start 1 ")
    assert log[1] == "end 1"  # it got SIGTERM, not SIGKILL


async def test_an_attempt_no_worker_started_times_out_and_its_retry_runs_alone(
    kafka_bootstrap: str, topics: TopicNames, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    # start timeout 4 s, then the retry 8 s later: the worker joins its group in between
    text = spec(tmp_path, start_timeout=4, backoff=10)
    async with coordinator(kafka_bootstrap, topics, unique_name("coord"), text) as harness:
        await harness.emit_event(
            ExternalEvent(id="go-1", source="test", type="job.go", data={"key": "b"})
        )
        await on_trigger_topic(harness, lambda es: any(isinstance(e, StageCancel) for e in es))
        async with shell_worker(kafka_bootstrap, topics, unique_name("shell")):
            record = await asyncio.wait_for(
                run_record_with_status(harness, "jobs/b", "succeeded"), 60
            )
        events, partitions = await on_trigger_topic(harness, lambda es: len(es) >= 3)
    attempts = [(type(e).__name__, e.data.attempt) for e in events]
    assert attempts[:3] == [("StageTrigger", 1), ("StageCancel", 1), ("StageTrigger", 2)]
    assert events[1].data.cause == "start_timeout"
    assert len(partitions) == 1
    assert record.data.attempts == {"work": 2}
    # The worker read trigger 1 and its cancel together: attempt 1 either never ran a process
    # or ended (SIGTERM) before attempt 2 started.
    log = (tmp_path / "log").read_text().splitlines()
    starts = [line.split()[1] for line in log if line.startswith("start")]
    assert starts in (["2"], ["1", "2"])
    if starts == ["1", "2"]:
        second = next(i for i, line in enumerate(log) if line.startswith("start 2"))
        assert log.index("end 1") < second
