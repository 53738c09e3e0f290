"""kill -9 the coordinator again and again under a steady stream: every trigger exactly once."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from streamcoord.core import CoordinatorState, decide
from streamcoord.events.codec import decode
from streamcoord.events.models import ExternalEvent, RunRecord, StageTrigger
from streamcoord.kafka.records import read_topic
from streamcoord.runtime import TopicNames
from tests.integration.test_coordinator import (
    Harness,
    answer_triggers,
    catalog_of,
    create_topics,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

RUNS = 200
KILLS = 10

SPEC = """\
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


def spec_dict() -> dict[str, object]:
    return {
        "pipelines": [
            {
                "name": "steady",
                "run_key": "string(event.data.n)",
                "triggers": [{"kind": "event", "type": "steady.tick"}],
                "stages": [{"name": "first"}, {"name": "second", "needs": ["first"]}],
            }
        ]
    }


class CoordinatorProcess:
    """`streamcoord run` as a child process, as an operator would start it."""

    def __init__(self, spec: Path, bootstrap: str, topics: TopicNames, group: str) -> None:
        self.command = [
            sys.executable, "-m", "streamcoord.cli.main", "run", str(spec),
            "--bootstrap-servers", bootstrap, "--group-id", group,
            "--topic-prefix", topics.prefix, "--instance-id", f"{group}-only",
        ]  # fmt: skip
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
        assert self.process is not None
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
    contents = await read_topic({"bootstrap_servers": harness.bootstrap}, topic)
    return [(r.partition, r.timestamp, decode(r.value, r.headers)) for r in contents.records]


async def test_kill_9_ten_times_loses_and_duplicates_nothing(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topics = TopicNames(prefix=f"{unique_name('crash')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    spec = tmp_path / "steady.yaml"
    spec.write_text(SPEC)
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    harness = Harness(kafka_bootstrap, topics, producer, coordinator=None)  # type: ignore[arg-type]
    executor = asyncio.create_task(answer_triggers(harness))
    coordinator = CoordinatorProcess(spec, kafka_bootstrap, topics, unique_name("group"))
    log = tmp_path / "coordinator.log"
    chooser = random.Random(20261128)

    async def emit_steadily() -> None:
        for n in range(RUNS):
            event = ExternalEvent(id=f"tick-{n}", source="clock", type="steady.tick", data={"n": n})
            await harness.emit_event(event)
            await asyncio.sleep(0.05)  # pacing the load, not synchronisation

    emitter = asyncio.create_task(emit_steadily())
    try:
        for _ in range(KILLS):
            await coordinator.start(log)
            await asyncio.wait_for(coordinator.restored.wait(), 60)
            await asyncio.sleep(chooser.uniform(0.0, 1.0))  # a random moment mid-stream
            await coordinator.kill()
        await coordinator.start(log)
        await asyncio.wait_for(coordinator.restored.wait(), 60)
        await emitter
        await asyncio.wait_for(all_runs_succeeded(harness, topics), 120)
        assert await coordinator.terminate() == 0, log.read_text()[-3000:]
    finally:
        if coordinator.process and coordinator.process.returncode is None:
            await coordinator.kill()
        executor.cancel()
        await asyncio.gather(executor, return_exceptions=True)
        await producer.stop()

    triggers = [e for *_, e in await read_all(harness, topics.full("streamcoord.triggers"))]
    counts = Counter(
        (t.data.run_id, t.data.stage, t.data.attempt)
        for t in triggers
        if isinstance(t, StageTrigger)
    )
    expected = {(f"steady/{n}", stage, 1) for n in range(RUNS) for stage in ("first", "second")}
    assert set(counts) == expected
    assert [key for key, count in counts.items() if count != 1] == []
    kills_seen = log.read_text().count("restored partition")
    assert kills_seen >= KILLS, "each restart restored state from the changelog"
    await assert_state_equals_uninterrupted_replay(harness, topics)


async def all_runs_succeeded(harness: Harness, topics: TopicNames) -> None:
    while True:
        records = [e for *_, e in await read_all(harness, topics.runs)]
        done = {
            r.data.run_id
            for r in records
            if isinstance(r, RunRecord) and r.data.status == "succeeded"
        }
        if len(done) == RUNS:
            return
        await asyncio.sleep(0.5)  # polling a compacted topic; no event to await here


async def assert_state_equals_uninterrupted_replay(harness: Harness, topics: TopicNames) -> None:
    """Fold the committed event log through the core once: the changelog must say the same."""
    from datetime import UTC, datetime

    catalog = catalog_of(spec_dict())
    states = {p: CoordinatorState.empty(p, 2) for p in range(2)}
    for partition, timestamp, event in await read_all(harness, topics.events):
        now = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
        states[partition] = decide(catalog, states[partition], event, now).state  # type: ignore[arg-type]
    changelog: dict[int, dict[str, bytes | None]] = {0: {}, 1: {}}
    stored = await read_topic({"bootstrap_servers": harness.bootstrap}, topics.state)
    for record in stored.records:
        assert record.key is not None
        changelog[record.partition][record.key.decode()] = record.value
    for partition, state in states.items():
        restored = {k: v for k, v in changelog[partition].items() if v is not None}
        replayed = dict(state.dump())
        assert replayed == restored, f"partition {partition}: changelog != uninterrupted replay"
