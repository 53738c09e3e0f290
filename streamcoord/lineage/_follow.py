"""Following the runs topic (read_committed) and sending each record's RunEvents; with the
events topic, the datasets executors report with their successes join the attempts' ends."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from openlineage.client.event_v2 import RunEvent

from streamcoord.errors import EventError
from streamcoord.events.codec import decode
from streamcoord.events.models import RunRecord, StageSucceeded
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import PartitionReader, TopicPartition, Transport
from streamcoord.lineage._events import LineageTracker

__all__ = ["follow_runs"]


async def follow_runs(
    connection: Transport | Mapping[str, Any],
    runs_topic: str,
    tracker: LineageTracker,
    send: Callable[[RunEvent], None],
    *,
    until_end: bool = False,
    events_topic: str | None = None,
) -> int:
    """Send the RunEvents of every run record from the topic's beginning on; with
    ``until_end``, stop at the end the topic had when this began. Returns how many were sent.

    With ``events_topic``, executors' success reports are read too: before each batch of run
    records, up to that topic's end at that moment. A report is on the events topic before the
    coordinator decides it, so before the run record that ends its attempt is written.

    ``connection``: a transport (:mod:`streamcoord.kafka.ports`) or aiokafka client keyword
    arguments (:meth:`KafkaSettings.client_kwargs`)."""
    transport = as_transport(connection)
    consumer = transport.partition_reader()
    reports = transport.partition_reader() if events_topic is not None else None
    await consumer.start()
    sent = 0
    try:
        tps = await _from_beginning(consumer, runs_topic)
        report_tps = []
        if reports is not None and events_topic is not None:
            await reports.start()
            report_tps = await _from_beginning(reports, events_topic)
        ends = await consumer.end_offsets(tps)
        while not until_end or [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.fetch(timeout_ms=500)
            if reports is not None and batch:
                await _read_reports(reports, report_tps, tracker)
            for messages in batch.values():
                for message in messages:
                    record = _decoded(message)
                    if isinstance(record, RunRecord):
                        for event in tracker.events(record):
                            send(event)
                            sent += 1
    finally:
        await consumer.stop()
        if reports is not None:
            await reports.stop()
    return sent


async def _from_beginning(consumer: PartitionReader, topic: str) -> list[TopicPartition]:
    tps = await consumer.partitions(topic)
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def _read_reports(
    reports: PartitionReader, tps: list[TopicPartition], tracker: LineageTracker
) -> None:
    """Every success report up to the events topic's end as of now."""
    ends = await reports.end_offsets(tps)
    pending = [tp for tp in tps if await reports.position(tp) < ends[tp]]
    while pending:
        batch = await reports.fetch(*pending, timeout_ms=500)
        for messages in batch.values():
            for message in messages:
                event = _decoded(message)
                if isinstance(event, StageSucceeded):
                    tracker.reported(event)
        pending = [tp for tp in pending if await reports.position(tp) < ends[tp]]


def _decoded(message: Any) -> object:
    try:
        return decode(message.value, list(message.headers or ()))
    except EventError:
        return None
