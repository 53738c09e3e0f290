"""Group membership: joining the consumer group, checking what it assigns, showing positions.

The group consumes the events topic and the internal topic, which have as many partitions as each
other and as the changelog. The range assignor gives every member the same partition numbers of
both topics (it assigns each topic's sorted partitions to the sorted members in the same way), so
the member that admits an events partition also decides the internal partition of that number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from streamcoord.errors import ConfigError
from streamcoord.kafka.ports import (
    GroupConsumer,
    Producer,
    TopicPartition,
    Transport,
    TransportError,
)
from streamcoord.runtime.lane import PartitionLane
from streamcoord.runtime.settings import CoordinatorSettings, TopicNames

__all__ = [
    "CONNECT_ATTEMPTS",
    "GroupOffsets",
    "check_copartitioned",
    "connect",
    "partition_count",
]

log = logging.getLogger(__name__)

#: Tries to reach the cluster at start before giving up (about two minutes in all).
CONNECT_ATTEMPTS = 30


async def connect(
    transport: Transport, settings: CoordinatorSettings, stop: asyncio.Event
) -> tuple[GroupConsumer, Producer] | None:
    """Start the group consumer and a producer (for time events), waiting (bounded) for a broker
    that is not up yet (a member started during a broker restart); None if stopped meanwhile."""
    delay = 0.5
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        # both inputs of a partition number to one member (see the module docstring)
        consumer = transport.group_consumer(
            settings.group_id, instance_id=settings.instance_id, max_records=settings.max_batch
        )
        producer = transport.producer()
        try:
            await producer.start()
            await consumer.start()
        except (TransportError, OSError) as exc:
            await producer.stop()  # half-started clients still hold connections and tasks
            await consumer.stop()
            refused = await transport.refusal()
            if refused is not None:  # wrong credentials or CA: waiting will not help
                raise refused from None
            if attempt == CONNECT_ATTEMPTS:
                raise
            log.warning(
                "cannot reach Kafka yet (%s); retrying in %.1fs",
                exc,
                delay,
                extra={"retrying": True},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return None
            delay = min(delay * 2, 5.0)
            continue
        return consumer, producer
    raise AssertionError("unreachable")


async def partition_count(consumer: GroupConsumer, topics: TopicNames) -> int:
    """The partitions of the events topic, once both inputs are known to have that many."""
    events = await _partitions(consumer, topics.events)
    internal = await _partitions(consumer, topics.internal)
    if internal != events:
        raise ConfigError(
            f"{topics.internal} has {internal} partitions and {topics.events} has "
            f"{events}: partition N of both is decided together",
            hint="give both (and the state topic) the same count: edit topics.yaml and "
            "run `streamcoord topics apply`",
        )
    return events


async def _partitions(consumer: GroupConsumer, topic: str) -> int:
    partitions = await consumer.partition_count(topic)
    if partitions:
        return partitions
    raise ConfigError(
        f"topic {topic} does not exist", hint="create it with `streamcoord topics apply`"
    )


def check_copartitioned(assigned: set[TopicPartition], topics: TopicNames) -> None:
    """Say so loudly if the group gave this member one input of a partition without the
    other (a member with another assignor, or topics of different sizes)."""
    by_topic: dict[str, set[int]] = {}
    for tp in assigned:
        by_topic.setdefault(tp.topic, set()).add(tp.partition)
    events, internal = by_topic.get(topics.events, set()), by_topic.get(topics.internal, set())
    if events != internal:
        log.error(
            "the group assigned %s partitions %s but %s partitions %s: both inputs of a "
            "partition must go to one member; is another member running with a different "
            "partition_assignment_strategy (an older streamcoord)?",
            topics.events, sorted(events), topics.internal, sorted(internal),
        )  # fmt: skip


class GroupOffsets:
    """The decided positions, committed to the consumer group as well.

    The changelog holds the authoritative positions (committed with each batch's outputs); the
    group's copy is for lag monitors, ``streamcoord status`` and the benchmark, so it is written
    outside the transactions and may trail them by one interval.
    """

    def __init__(self, settings: CoordinatorSettings) -> None:
        self._settings = settings
        self.consumer: GroupConsumer | None = None
        self._shown: dict[TopicPartition, int] = {}  # last positions shown to the group

    async def show_every_interval(self, lanes: Callable[[], list[PartitionLane]]) -> None:
        """Every few hundred ms, commit the positions of the ``lanes()`` of the moment."""
        while True:
            await asyncio.sleep(self._settings.group_offsets_interval_s)  # a period, not a wait
            await self.show(lanes())

    async def show(self, lanes: list[PartitionLane]) -> None:
        """Commit the positions of ``lanes`` that changed since last shown (best effort)."""
        consumer = self.consumer
        offsets = {
            tp: position
            for lane in lanes
            for tp, position in lane.committed_offsets().items()
            if self._shown.get(tp) != position
        }
        if consumer is None or not offsets:
            return
        try:
            timeout = self._settings.transaction_timeout_s
            await asyncio.wait_for(consumer.commit(offsets), timeout)
        except (TransportError, TimeoutError) as exc:  # a rebalance or an outage: next time
            log.debug("committing positions to the group failed: %s", exc)
            return
        self._shown.update(offsets)

    def forget(self, lanes: Iterable[PartitionLane]) -> None:
        """Forget what was shown of ``lanes`` (handed to another member)."""
        for lane in lanes:
            for tp in lane.inputs:
                self._shown.pop(tp, None)
