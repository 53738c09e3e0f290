"""A quota on a real broker: runs over it wait, and start when the window frees.

Five runs of a pipeline allowed two starts per 4-second window arrive at once over four
partitions: two start, the others are queued (the decisions name the quota), and the quota's
timer releases them in order as the window slides, until all five succeed. The keeper of the
pipeline's slots counts a start when it grants one; the runs are keyed away from its partition so
that every grant is routed and its time is the keeper's count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from streamcoord.core import partition_for
from streamcoord.events import topology
from streamcoord.events.internal import LimitGrant
from streamcoord.events.models import CloudEvent, DecisionRecord, ExternalEvent
from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    create_topics,
    in_process,
    read_all,
    until_runs_succeeded,
)
from tests.integration.test_audit import _cli

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

PARTITIONS = 4
RUNS = 5
WINDOW = timedelta(seconds=4)
SPEC = """\
pipelines:
  - name: digest
    run_key: event.data.key
    triggers: [{kind: event, type: digest.wanted}]
    stages: [{name: mail}]
policies:
  - kind: quota
    name: two-per-window
    pipeline: digest
    max_runs: 2
    window: 4s
"""


async def test_a_quota_queues_runs_and_releases_them_as_the_window_slides(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('quota')}.")
    await create_topics(kafka_bootstrap, topics, partitions=PARTITIONS)
    keeper = partition_for("active/digest", PARTITIONS)
    keys = [
        k
        for k in (f"k{i}" for i in range(40))
        if partition_for(f"digest/{k}", PARTITIONS) != keeper
    ]
    keys = keys[:RUNS]
    async with in_process(kafka_bootstrap, topics, unique_name("group"), spec=SPEC) as harness:
        for key in keys:
            await harness.emit_event(
                ExternalEvent(id=f"go-{key}", source="app", type="digest.wanted", data={"key": key})
            )
        await asyncio.wait_for(until_runs_succeeded(harness, RUNS), 120)
        internal = await read_all(harness, topics.internal)
        decisions = await read_all(harness, topics.full(topology.DECISIONS))

    grants = sorted(
        e.time
        for *_, e in internal
        if isinstance(e, CloudEvent) and e.type == LimitGrant.TYPE and e.time is not None
    )
    assert len(grants) == RUNS
    for i, at in enumerate(grants):
        assert sum(1 for g in grants[: i + 1] if g > at - WINDOW) <= 2, grants
    assert grants[-1] - grants[0] >= 2 * WINDOW  # three runs had to wait for the window

    queued = {
        e.data.run_id
        for *_, e in decisions
        if isinstance(e, DecisionRecord)
        and e.data.action == "queued"
        and e.data.reason.startswith("quota two-per-window: 2 runs of digest per 4s reached")
    }
    assert len(queued) == RUNS - 2
    # a queued run's audit tells that it waited for the quota, then ran
    code, story = await _cli(kafka_bootstrap, topics, min(queued))
    assert code == 0, story
    assert "quota two-per-window" in story
    assert "succeeded" in story
