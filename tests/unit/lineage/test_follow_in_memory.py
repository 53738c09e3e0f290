"""The lineage follower on the in-memory cluster: the run records and success reports of a topic
give the RunEvents the tracker gives them directly."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

pytest.importorskip("openlineage.client", reason="the lineage extra is not installed")

from openlineage.client.serde import Serde

from streamcoord.events.codec import encode
from streamcoord.events.models import StageSucceeded
from streamcoord.lineage import LineageTracker
from streamcoord.lineage._follow import follow_runs
from streamcoord.testing import MemoryCluster
from tests.unit.lineage.test_events import PIPELINES, _records


async def test_the_follower_sends_what_the_tracker_makes_of_the_topics() -> None:
    cluster = MemoryCluster()
    cluster.create_topics(["runs", "events"], partitions=2)
    for record in _records():  # one run's records in one partition, in order
        value, headers = encode(record)
        topic = "events" if isinstance(record, StageSucceeded) else "runs"
        cluster.produce(topic, None, value, headers, partition=0)

    followed: list[Any] = []
    sent = await follow_runs(
        cluster.transport("lineage"), "runs", LineageTracker("shop", PIPELINES),
        followed.append, until_end=True, events_topic="events",
    )  # fmt: skip

    direct: list[Any] = []
    tracker = LineageTracker("shop", PIPELINES)
    for record in _records():
        if isinstance(record, StageSucceeded):
            tracker.reported(record)
        else:
            direct.extend(tracker.events(record))
    assert sent == len(followed) == len(direct) > 0
    assert [orjson.loads(Serde.to_json(e)) for e in followed] == [
        orjson.loads(Serde.to_json(e)) for e in direct
    ]
