"""Driving a backfill against Kafka: request runs, follow their records, report progress."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamcoord.backfill._plan import BackfillPlan, Progress
from streamcoord.emit import Emitter
from streamcoord.errors import EventError, StreamcoordError
from streamcoord.events.codec import decode
from streamcoord.events.factory import make_event
from streamcoord.events.models import CloudEvent, RunCancel, RunRecord, RunRequested
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.ports import PartitionReader, Record, TopicPartition
from streamcoord.kafka.settings import KafkaSettings

__all__ = [
    "BackfillStalledError",
    "backfill_progress",
    "cancel_backfill",
    "request_event",
    "run_backfill",
]

SOURCE = "streamcoord/backfill"


class BackfillStalledError(StreamcoordError):
    """Requested runs did not appear or move for too long."""


def request_event(plan: BackfillPlan, key: str, params: Mapping[str, Any]) -> CloudEvent:
    """The request of ``key``'s run. Its id is the run id's, so a resent request (a backfill
    stopped between sending and seeing the run) is the same event and starts nothing twice."""
    return make_event(
        RunRequested.TYPE,
        SOURCE,
        {"pipeline": plan.pipeline, "run_key": key, "params": dict(params)},
        id=f"backfill/{plan.run_id(key)}",
    )


async def run_backfill(
    settings: KafkaSettings,
    events_topic: str,
    runs_topic: str,
    plan: BackfillPlan,
    *,
    params: Mapping[str, Any] | None = None,
    principal: str | None = None,
    on_progress: Callable[[Progress], None] = lambda _: None,
    idle_timeout_s: float = 600.0,
) -> Progress:
    """Request the plan's runs, never more than ``max_active`` unfinished, until every one has
    finished (a plan not ``requesting``: until none of its runs is active); returns the final
    progress. Raises :class:`BackfillStalledError` when nothing moves
    for ``idle_timeout_s`` (a request the coordinator refused: see the dead-letter topic)."""
    consumer = await _caught_up(settings, runs_topic, plan)
    try:
        async with Emitter(settings, topic=events_topic, principal=principal) as emitter:
            return await _drive(
                consumer,
                emitter,
                plan,
                params or {},
                on_progress=on_progress,
                idle_timeout_s=idle_timeout_s,
            )
    finally:
        await consumer.stop()


async def _caught_up(
    settings: KafkaSettings, runs_topic: str, plan: BackfillPlan
) -> PartitionReader:
    """A consumer of the runs topic that has read it to its end into ``plan`` (runs that exist
    already are not requested again); the caller stops it."""
    consumer = KafkaTransport(settings.client_kwargs()).partition_reader()
    await consumer.start()
    try:
        tps = await consumer.partitions(runs_topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await _catch_up(consumer, tps, await consumer.end_offsets(tps), plan)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _catch_up(
    consumer: PartitionReader,
    tps: list[TopicPartition],
    ends: dict[TopicPartition, int],
    plan: BackfillPlan,
) -> None:
    pending = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
    while pending:
        _observe(plan, await consumer.fetch(*pending, timeout_ms=500))
        pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]


async def _drive(
    consumer: PartitionReader,
    emitter: Emitter,
    plan: BackfillPlan,
    params: Mapping[str, Any],
    *,
    on_progress: Callable[[Progress], None],
    idle_timeout_s: float,
) -> Progress:
    last, moved = plan.progress(), time.monotonic()
    on_progress(last)
    while not plan.settled():
        keys = plan.take_next()
        if keys:
            await emitter.send_many([request_event(plan, key, params) for key in keys])
        _observe(plan, await consumer.fetch(timeout_ms=500))
        now = plan.progress()
        if now != last:
            last, moved = now, time.monotonic()
            on_progress(now)
        elif time.monotonic() - moved > idle_timeout_s:
            raise BackfillStalledError(
                f"no run of the backfill moved for {idle_timeout_s:.0f}s; unfinished: "
                f"{', '.join(plan.unfinished()[:5])}",
                hint="a pipeline needs a `manual` trigger to be backfilled; refused requests are "
                "on the dead-letter topic (`streamcoord topics tail`)",
            )
    return last


def _observe(plan: BackfillPlan, batch: Mapping[TopicPartition, Sequence[Record]]) -> None:
    for messages in batch.values():
        for message in messages:
            try:
                record = decode(message.value, list(message.headers or ()))
            except EventError:
                continue
            if isinstance(record, RunRecord):
                plan.observe(record.data.run_id, record.data.status)


async def backfill_progress(
    settings: KafkaSettings, runs_topic: str, plan: BackfillPlan
) -> Progress:
    """The backfill's progress as the runs topic shows it now (nothing is requested)."""
    consumer = await _caught_up(settings, runs_topic, plan)
    await consumer.stop()
    return plan.progress()


async def cancel_backfill(
    settings: KafkaSettings,
    events_topic: str,
    runs_topic: str,
    plan: BackfillPlan,
    principal: str | None = None,
) -> list[str]:
    """Cancel every unfinished run of the backfill's keys (and request no more); returns them."""
    consumer = await _caught_up(settings, runs_topic, plan)
    await consumer.stop()
    unfinished = plan.unfinished()
    async with Emitter(settings, topic=events_topic, principal=principal) as emitter:
        await emitter.send_many(
            [
                make_event(
                    RunCancel.TYPE, SOURCE, {"run_id": run_id, "reason": "backfill cancelled"}
                )
                for run_id in unfinished
            ]
        )
    return unfinished
