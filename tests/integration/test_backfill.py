"""A backfill over 1,000 daily partitions on a real broker, hosted as ``streamcoord serve``
hosts the API's (:class:`BackfillManager`): every run exactly once, never more than N unfinished
at a time, and a repeated backfill (the CLI's) requests nothing."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from streamcoord.backfill import (
    BackfillManager,
    BackfillPlan,
    cancel_backfill,
    partition_keys,
    run_backfill,
)
from streamcoord.devtools import consistency
from streamcoord.events.models import RunRecord
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import TopicNames
from tests.integration.coordination import create_topics, in_process, run_record_with_status

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

ROOT = Path(__file__).parents[2]
MAX_ACTIVE = 8
SPEC = """\
pipelines:
  - name: daily
    run_key: event.data.day
    triggers:
      - kind: manual
    stages:
      - name: load
"""


def _peak_unfinished(records: list[RunRecord]) -> int:
    """The most runs unfinished at once, by the coordinator's clock: a run counts from its first
    record's time (its request's) up to its finishing record's time, exclusive."""
    start: dict[str, datetime] = {}
    end: dict[str, datetime] = {}
    for record in records:
        assert record.time is not None
        start.setdefault(record.data.run_id, record.time)
        if record.data.status in {"succeeded", "failed", "cancelled"}:
            end[record.data.run_id] = record.time
    moments = sorted(
        [(t, 1) for t in start.values()] + [(t, -1) for t in end.values()],
        key=lambda m: (m[0], m[1]),
    )  # at a tie, an end before a start
    peak = level = 0
    for _, change in moments:
        level += change
        peak = max(peak, level)
    return peak


async def test_a_thousand_daily_partitions_run_once_each_never_more_than_n_at_once(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('backfill')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    keys = partition_keys("2024-01-01", "2026-09-26")
    assert len(keys) == 1000
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    manager = BackfillManager(settings, topics.events, topics.runs)
    async with in_process(kafka_bootstrap, topics, unique_name("group"), spec=SPEC):
        backfill = manager.start(
            "daily", keys, MAX_ACTIVE, params={}, principal="tester", now=datetime.now(UTC)
        )
        await manager.wait(backfill.id, "succeeded", "failed", "stalled", timeout_s=480)
    final = backfill.progress
    assert (backfill.state, backfill.message) == ("succeeded", "")
    assert (final.succeeded, final.failed, final.requested, final.started) == (1000, 0, 1000, 1000)
    assert final.peak_active <= MAX_ACTIVE

    triggers = await consistency.trigger_counts(kafka_bootstrap, topics)
    assert len(triggers) == 1000
    assert set(triggers.values()) == {1}  # every run's stage triggered exactly once
    records = [
        e
        for _, _, e in await consistency.read_decoded(kafka_bootstrap, topics.runs)
        if isinstance(e, RunRecord)
    ]
    assert {r.data.run_id for r in records} == {f"daily/{k}" for k in keys}  # no #2
    assert {r.data.principal for r in records} == {"tester"}
    assert _peak_unfinished(records) <= MAX_ACTIVE

    # the same backfill again, as an operator runs it: every run exists, nothing is requested
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "backfill", "daily",
        "--from", keys[0], "--to", keys[-1], "-n", str(MAX_ACTIVE), "--json",
        "-b", kafka_bootstrap, "--topic-prefix", topics.prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out
    last = orjson.loads(out.decode().strip().splitlines()[-1])
    assert (last["done"], last["requested"], last["succeeded"]) == (True, 0, 1000)

    # its progress from anywhere, read from the runs topic
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "backfill", "daily",
        "--from", keys[0], "--to", keys[-1], "--status",
        "-b", kafka_bootstrap, "--topic-prefix", topics.prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, out
    assert out.decode().strip().splitlines()[-1] == (
        "daily: 1000/1000 finished (1000 succeeded, 0 failed, 0 cancelled), 0 active, "
        "1000 started, 0 requested"
    )


async def test_cancel_stops_the_backfills_unfinished_runs_as_a_group(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('backfill-cancel')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    keys = partition_keys("2026-01-01", "2026-01-06")
    plan = BackfillPlan("daily", keys, 3)
    async with in_process(
        kafka_bootstrap, topics, unique_name("group"), spec=SPEC, executor=False
    ) as harness:  # nobody answers: runs stay unfinished
        progress = asyncio.create_task(
            run_backfill(settings, topics.events, topics.runs, plan, idle_timeout_s=60)
        )
        for key in keys[:3]:
            await asyncio.wait_for(run_record_with_status(harness, f"daily/{key}", "active"), 60)
        progress.cancel()  # what Ctrl-C does to `streamcoord backfill`: it requests no more
        await asyncio.gather(progress, return_exceptions=True)
        cancelled = await cancel_backfill(
            settings, topics.events, topics.runs, BackfillPlan("daily", keys, 3), principal="ops"
        )
        assert sorted(cancelled) == [f"daily/{k}" for k in keys[:3]]  # never more than 3 ran
        for run_id in cancelled:
            record = await asyncio.wait_for(
                run_record_with_status(harness, run_id, "cancelled"), 60
            )
            assert record.data.principal is None  # started by a request nobody stamped
