"""Retention on a real broker: finished runs leave the state as changelog tombstones, a restarted
coordinator restores without them, and `streamcoord runs` still lists them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import DecisionRecord, ExternalEvent, StageSucceeded
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    Harness,
    create_topics,
    in_process,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]

SPEC = """\
pipelines:
  - name: orders
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: load
"""
DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


async def tombstones(harness: Harness, keys: set[str]) -> None:
    """Follow the changelog until each of ``keys`` has a tombstone."""
    consumer = harness.reader(harness.topics.state)
    await consumer.start()
    try:
        async for message in consumer:
            if message.value is None and message.key is not None:
                keys.discard(message.key.decode())
                if not keys:
                    return
    finally:
        await consumer.stop()


async def decision(harness: Harness, run_id: str, action: str) -> str:
    """Follow the decisions topic until ``run_id`` gets ``action``; its reason."""
    consumer = harness.reader(harness.topics.full(topology.DECISIONS))
    await consumer.start()
    try:
        async for message in consumer:
            record = decode(message.value, list(message.headers or ()))
            if (
                isinstance(record, DecisionRecord)
                and record.data.run_id == run_id
                and record.data.action == action
            ):
                return record.data.reason
    finally:
        await consumer.stop()
    raise AssertionError("the decisions topic ended")


async def test_finished_runs_expire_and_a_restart_restores_without_them(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('retention')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    group = unique_name("group")
    async with in_process(kafka_bootstrap, topics, group, spec=SPEC, retention_s=2) as first:
        for day in DAYS:
            await first.emit_event(
                ExternalEvent(
                    id=f"landed-{day}",
                    source="warehouse",
                    type="shop.orders.landed",
                    data={"day": day},
                )
            )
        await asyncio.wait_for(until_runs_succeeded(first, len(DAYS)), 60)
        await asyncio.wait_for(tombstones(first, {f"run/orders/{d}" for d in DAYS}), 60)
        # a late duplicate for an expired run: ignored with the reason, not dead-lettered
        late = StageSucceeded(
            id="late",
            source="test",
            data={"run_id": f"orders/{DAYS[0]}", "stage": "load", "attempt": 1},
        )
        await first.emit_event(late)
        reason = await asyncio.wait_for(decision(first, f"orders/{DAYS[0]}", "ignored"), 30)
        assert "left the state" in reason
        assert first.coordinator is not None
        assert first.coordinator.status.dead_letters == 0

    async with in_process(kafka_bootstrap, topics, group, spec=SPEC, retention_s=2) as second:
        assert second.coordinator is not None
        await asyncio.wait_for(second.coordinator.ready.wait(), 60)
        states = [worker.state for worker in second.coordinator.processors()]
        assert len(states) == 2
        assert [run.run_id for state in states for run in state.runs()] == []
        markers = sorted(k for state in states for k, _ in state.dump() if k.startswith("gen/"))
        assert markers == [f"gen/orders/{d}" for d in DAYS]

    listed = await asyncio.to_thread(CliRunner().invoke, app, [
        "runs", "--json", "--bootstrap-servers", kafka_bootstrap,
        "--topic-prefix", topics.prefix,
    ])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    runs = [orjson.loads(line) for line in listed.output.splitlines()]
    assert [(r["run_id"], r["status"]) for r in runs] == [
        (f"orders/{d}", "succeeded") for d in DAYS
    ]
