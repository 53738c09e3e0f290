"""The operator commands against a real broker and an in-process coordinator, run as an operator
runs them: ``streamcoord trigger|cancel|retry|pause|resume`` in a child process."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import (
    StageFailed,
    StageFailedData,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    Harness,
    create_topics,
    in_process,
    run_record_with_status,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ROOT = Path(__file__).parents[2]
OTHER_TOPIC = topology.STREAMING_TRIGGERS  # answered by flaky_executor, not the harness

SPEC = f"""\
pipelines:
  - name: manual
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: first
      - name: second
        needs: [first]
  - name: waits
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: forever
        executor:
          topic: {OTHER_TOPIC}
  - name: flaky
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: work
        executor:
          topic: {OTHER_TOPIC}
  - name: eventful
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: only
"""


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.stdout.strip().splitlines()[-1])
        return parsed


@pytest.fixture
async def harness(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Harness]:
    topics = TopicNames(prefix=f"{unique_name('operate')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    async with in_process(kafka_bootstrap, topics, unique_name("group"), spec=SPEC) as harness:
        executor = asyncio.create_task(flaky_executor(harness))
        try:
            yield harness
        finally:
            executor.cancel()
            await asyncio.gather(executor, return_exceptions=True)


async def flaky_executor(harness: Harness) -> None:
    """On the other topic: `flaky` fails its first attempt for good and succeeds after; the
    `waits` pipeline's stage is started and never finishes."""
    consumer = harness.reader(harness.topics.full(OTHER_TOPIC))
    await consumer.start()
    try:
        async for message in consumer:
            trigger = decode(message.value, list(message.headers or ()))
            assert isinstance(trigger, StageTrigger)
            data = trigger.data
            ref = StageRef(run_id=data.run_id, stage=data.stage, attempt=data.attempt)
            base = f"executor/{data.idempotency_key}"
            await harness.emit_event(StageStarted(id=f"{base}/started", source="t", data=ref))
            if data.pipeline != "flaky":
                continue
            if data.attempt == 1:
                failed = StageFailedData(**ref.model_dump(), error="disk full", retryable=False)
                await harness.emit_event(StageFailed(id=f"{base}/failed", source="t", data=failed))
            else:
                done = StageSucceededData(**ref.model_dump())
                await harness.emit_event(StageSucceeded(id=f"{base}/ok", source="t", data=done))
    finally:
        await consumer.stop()


async def cli(harness: Harness, *args: str) -> Result:
    """``streamcoord ARGS -b ... --topic-prefix ...`` as a child process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", *args,
        "-b", harness.bootstrap, "--topic-prefix", harness.topics.prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 150)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


async def test_trigger_wait_follows_the_requested_run_to_success(harness: Harness) -> None:
    result = await cli(harness, "trigger", "manual", "--key", "k1", "--param", "n=3", "--wait",
                       "--json")  # fmt: skip

    assert result.code == 0, result
    assert result.json["run_id"] == "manual/k1"
    assert result.json["status"] == "succeeded"
    assert result.json["ok"] is True
    first = next(t for t in harness.triggers if t.data.run_id == "manual/k1")
    assert first.data.caused_by == [result.json["event_id"]]


async def test_trigger_without_wait_prints_the_event_id(harness: Harness) -> None:
    result = await cli(harness, "trigger", "manual", "--key", "k2")

    assert result.code == 0, result
    event_id = result.stdout.strip()
    record = await asyncio.wait_for(run_record_with_status(harness, "manual/k2", "succeeded"), 60)
    assert record.data.caused_by == [event_id]


async def test_trigger_of_a_pipeline_without_manual_trigger_is_rejected(harness: Harness) -> None:
    result = await cli(harness, "trigger", "eventful", "--key", "k", "--wait", "--json")

    assert result.code == 3, result
    assert result.json["status"] == "rejected"
    assert result.json["reason"] == "manual_not_allowed"


async def test_cancel_wait_ends_an_active_run_as_cancelled(harness: Harness) -> None:
    assert (await cli(harness, "trigger", "waits", "--key", "c1")).code == 0

    result = await cli(harness, "cancel", "waits/c1", "--reason", "wrong day", "--wait")

    assert result.code == 0, result
    assert result.stdout.strip() == "run waits/c1 cancelled"
    record = await asyncio.wait_for(run_record_with_status(harness, "waits/c1", "cancelled"), 30)
    assert record.data.stages == {"forever": "cancelled"}


async def test_cancel_of_an_unknown_run_is_rejected_with_its_reason(harness: Harness) -> None:
    result = await cli(harness, "cancel", "waits/nope", "--wait")

    assert result.code == 3, result
    assert result.stdout.startswith("command ")
    assert "rejected (unknown_run: no run 'waits/nope'" in result.stdout


async def test_trigger_wait_reports_a_failed_run_and_retry_wait_its_success(
    harness: Harness,
) -> None:
    failed = await cli(harness, "trigger", "flaky", "--key", "r1", "--wait", "--json")
    assert failed.code == 1, failed
    assert (failed.json["run_id"], failed.json["status"]) == ("flaky/r1", "failed")

    retried = await cli(harness, "retry", "flaky/r1", "work", "--wait", "--json")

    assert retried.code == 0, retried
    assert (retried.json["run_id"], retried.json["status"]) == ("flaky/r1", "succeeded")


async def test_retry_of_a_stage_that_did_not_fail_is_rejected(harness: Harness) -> None:
    assert (await cli(harness, "trigger", "manual", "--key", "r2", "--wait")).code == 0

    result = await cli(harness, "retry", "manual/r2", "first", "--wait", "--json")

    assert result.code == 3, result
    assert result.json["reason"] == "illegal_transition"


async def test_pause_holds_requested_runs_until_resume(harness: Harness) -> None:
    paused = await cli(harness, "pause", "manual", "--wait")
    assert paused.code == 0, paused
    assert paused.stdout.strip().endswith(" paused")

    held = await cli(harness, "trigger", "manual", "--key", "p1", "--wait", "--timeout", "3")
    assert held.code == 4, held
    assert "did not end within 3s" in held.stdout

    resumed = await cli(harness, "resume", "manual", "--wait", "--json")
    assert resumed.code == 0, resumed
    assert resumed.json["status"] == "resumed"
    await asyncio.wait_for(run_record_with_status(harness, "manual/p1", "succeeded"), 60)


async def test_pause_of_an_unknown_pipeline_is_rejected(harness: Harness) -> None:
    result = await cli(harness, "pause", "nope", "--wait", "--json")

    assert result.code == 3, result
    assert result.json["reason"] == "unknown_pipeline"
