"""max_active_runs on a real broker: one slot for a pipeline whose runs live on four partitions."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import pytest

from streamcoord.core import partition_for
from streamcoord.events.models import ExternalEvent, RunRecord
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    Harness,
    create_topics,
    in_process,
    read_all,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

PARTITIONS = 4
RUNS = 12
SERIAL = """\
pipelines:
  - name: serial
    run_key: event.data.key
    concurrency: {max_active_runs: 1, over_limit: queue}
    triggers:
      - kind: event
        type: serial.go
    stages:
      - name: first
      - name: second
        needs: [first]
"""


@pytest.fixture
async def harness(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Harness]:
    topics = TopicNames(prefix=f"{unique_name('limit')}.")
    await create_topics(kafka_bootstrap, topics, partitions=PARTITIONS)
    async with in_process(kafka_bootstrap, topics, unique_name("group"), spec=SERIAL) as harness:
        yield harness


def _active_spans(records: list[RunRecord]) -> dict[str, tuple[datetime, datetime]]:
    """Per run: the time of its first ``active`` record and of its ``succeeded`` one."""
    start: dict[str, datetime] = {}
    end: dict[str, datetime] = {}
    for record in records:
        assert record.time is not None
        if record.data.status == "active":
            start.setdefault(record.data.run_id, record.time)
        elif record.data.status == "succeeded":
            end[record.data.run_id] = record.time
    assert start.keys() == end.keys()
    return {run_id: (start[run_id], end[run_id]) for run_id in start}


async def test_a_burst_over_four_partitions_runs_one_at_a_time(harness: Harness) -> None:
    keys = [f"k{i}" for i in range(RUNS)]
    assert {partition_for(f"serial/{k}", PARTITIONS) for k in keys} == set(range(PARTITIONS))
    await asyncio.gather(
        *(
            harness.emit_event(
                ExternalEvent(id=f"go-{k}", source=f"app-{k}", type="serial.go", data={"key": k})
            )
            for k in keys
        )
    )
    await asyncio.wait_for(until_runs_succeeded(harness, RUNS), 150)

    records = [
        e for *_, e in await read_all(harness, harness.topics.runs) if isinstance(e, RunRecord)
    ]
    spans = sorted(_active_spans(records).values())
    assert len(spans) == RUNS
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert started >= ended, "two runs of a max_active_runs: 1 pipeline were active at once"
    queued = {r.data.run_id for r in records if r.data.status == "queued"}
    assert len(queued) >= RUNS - PARTITIONS  # most of the burst waited for the slot
