"""Secrets by reference on a real broker: the shell stage sees the value from the worker's
environment, while the trigger (and the reports) on the topics hold only the reference."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from streamcoord.events.models import StageSucceeded
from streamcoord.worker.shell import ShellExecutor
from tests.integration.test_worker import EVENTS, TRIGGERS, Broker, broker, count, running, trigger

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

TOKEN = "it-s3cr3t-9f8e7d6c5b4a"
__all__ = ["broker"]  # the fixture, imported


async def raw_values(bootstrap: str, topic: str, n: int) -> list[bytes]:
    """The first ``n`` records of ``topic``, value and header bytes joined."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            async for message in consumer:
                headers = b"".join(value for _, value in message.headers)
                records.append((message.value or b"") + headers)
                if len(records) == n:
                    return records
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


async def test_a_shell_stage_sees_a_secret_that_only_the_worker_has(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SC_IT_TOKEN", TOKEN)  # the worker process's environment
    seen = tmp_path / "seen"
    script = f"import os, pathlib; pathlib.Path({str(seen)!r}).write_text(os.environ['TOKEN'])"
    worker = broker.worker()
    worker.registry.add(None, ShellExecutor())
    stage = trigger(
        "orders/secret", command=[sys.executable, "-c", script],
        env={"TOKEN": {"secret": {"env": "SC_IT_TOKEN"}}},
    )  # fmt: skip
    async with running(worker):
        await broker.send_triggers(stage)
        reports = await broker.reports(count(StageSucceeded))
    assert seen.read_text() == TOKEN
    [on_topic] = await raw_values(broker.bootstrap, broker.prefix + TRIGGERS, 1)
    assert TOKEN.encode() not in on_topic
    assert b'{"secret":{"env":"SC_IT_TOKEN"}}' in on_topic
    for record in await raw_values(broker.bootstrap, broker.prefix + EVENTS, len(reports)):
        assert TOKEN.encode() not in record
