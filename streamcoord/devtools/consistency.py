"""End-of-run checks on what coordinators left in Kafka, shared by the crash tests and ``chaos/``.

All readers are ``read_committed``: what an aborted transaction wrote does not count. The checks
are the exactly-once claims of the runtime: each trigger once (by idempotency key), each run
finished, and the state changelog equal to folding the committed internal topic (what the
coordinators decided, in order) through the core once, uninterrupted (``replay_mismatches``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from streamcoord.core import Catalog, CoordinatorState, decide
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import CloudEvent, RunRecord, StageTrigger
from streamcoord.kafka.records import read_topic
from streamcoord.runtime import TopicNames
from streamcoord.runtime.changelog import POSITION_KEY, state_items

__all__ = [
    "read_decoded",
    "replay_mismatches",
    "run_statuses",
    "trigger_counts",
    "triggers",
]


async def read_decoded(
    bootstrap: str, topic: str, *, deadline_s: float = 120.0
) -> list[tuple[int, int, object]]:
    """(partition, timestamp, decoded record) of every committed record of ``topic``."""
    contents = await read_topic({"bootstrap_servers": bootstrap}, topic, deadline_s=deadline_s)
    return [(r.partition, r.timestamp, decode(r.value, r.headers)) for r in contents.records]


async def triggers(bootstrap: str, topics: TopicNames) -> list[StageTrigger]:
    """Every committed trigger, in offset order per partition."""
    records = await read_decoded(bootstrap, topics.full(topology.TRIGGERS))
    return [t for *_, t in records if isinstance(t, StageTrigger)]


async def trigger_counts(bootstrap: str, topics: TopicNames) -> Counter[tuple[str, str, int]]:
    """How often each (run, stage, attempt) was triggered, as a read_committed consumer sees it."""
    return Counter(
        (t.data.run_id, t.data.stage, t.data.attempt) for t in await triggers(bootstrap, topics)
    )


async def run_statuses(bootstrap: str, topics: TopicNames) -> dict[str, str]:
    """The newest committed status of every run on the runs topic."""
    latest: dict[str, str] = {}
    for *_, record in await read_decoded(bootstrap, topics.runs):
        if isinstance(record, RunRecord):
            latest[record.data.run_id] = record.data.status
    return latest


async def replay_mismatches(
    bootstrap: str, topics: TopicNames, catalog: Catalog, partitions: int
) -> list[str]:
    """Fold the committed internal topic through the core once; where the changelog says
    otherwise.

    Empty when every partition's changelog (without the position record) equals the replayed
    state, and each partition has committed a position. The core decides with the record's
    timestamp as ``now``, as the runtime does, so the replay is exact.
    """
    states = {p: CoordinatorState.empty(p, partitions) for p in range(partitions)}
    for partition, timestamp, event in await read_decoded(bootstrap, topics.internal):
        if isinstance(event, CloudEvent):
            now = datetime.fromtimestamp(timestamp / 1000, tz=UTC)
            states[partition] = decide(catalog, states[partition], event, now).state
    changelog: dict[int, dict[str, bytes | None]] = {p: {} for p in range(partitions)}
    stored = await read_topic({"bootstrap_servers": bootstrap}, topics.state, deadline_s=120.0)
    for record in stored.records:
        if record.key is not None:
            changelog[record.partition][record.key.decode()] = record.value
    problems: list[str] = []
    for partition, state in states.items():
        if POSITION_KEY not in changelog[partition]:
            problems.append(f"partition {partition}: no position committed")
        restored = {k: v for k, v in state_items(changelog[partition].items()) if v is not None}
        replayed = dict(state.dump())
        if replayed != restored:
            differing = sorted(
                key for key in replayed.keys() | restored.keys()
                if replayed.get(key) != restored.get(key)
            )  # fmt: skip
            problems.append(
                f"partition {partition}: changelog != replay for {len(differing)} key(s), "
                f"first {differing[:5]}"
            )
    return problems
