"""Following the runs topic (read_committed) and sending each record's RunEvents."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from openlineage.client.event_v2 import RunEvent

from streamcoord.errors import EventError
from streamcoord.events.codec import decode
from streamcoord.events.models import RunRecord
from streamcoord.kafka.records import topic_partitions
from streamcoord.lineage._events import LineageTracker

__all__ = ["follow_runs"]


async def follow_runs(
    client_kwargs: Mapping[str, Any],
    runs_topic: str,
    tracker: LineageTracker,
    send: Callable[[RunEvent], None],
    *,
    until_end: bool = False,
) -> int:
    """Send the RunEvents of every run record from the topic's beginning on; with
    ``until_end``, stop at the end the topic had when this began. Returns how many were sent."""
    consumer = AIOKafkaConsumer(
        **client_kwargs,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    sent = 0
    try:
        tps = await topic_partitions(consumer, runs_topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while not until_end or [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for message in messages:
                    try:
                        record = decode(message.value, list(message.headers or ()))
                    except EventError:
                        continue
                    if isinstance(record, RunRecord):
                        for event in tracker.events(record):
                            send(event)
                            sent += 1
    finally:
        await consumer.stop()
    return sent
