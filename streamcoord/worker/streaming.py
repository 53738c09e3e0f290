"""Streaming executor: a trigger starts a job over a source topic that reports its progress.

A :class:`StreamingJob` runs until it is stopped (``ctx.cancelled``: the run was cancelled or
the worker shuts down) or reaches the end its config names, reporting
``streamcoord.stage.progress`` (per-partition offsets and an event-time watermark) so a
downstream stage can wait for a watermark.

:class:`OffsetFollowerJob` is the implementation shipped and tested: plain aiokafka, the record
timestamp as event time. :class:`~streamcoord.worker.faust_job.FaustJob` (faust-streaming, the
``streaming`` extra; ``--engine faust``) runs the same config as a Faust app.

Config: ``source_topic`` (required), ``group_id`` (default
``streamcoord-stream.<pipeline>.<stage>``), ``until`` (RFC 3339 watermark: succeed once
passed), ``stop_at_end`` (succeed once caught up with the topic's end).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from pydantic import JsonValue, TypeAdapter, ValidationError

from streamcoord.kafka.settings import KafkaSettings
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError
from streamcoord.worker._registry import Outputs

__all__ = ["OffsetFollowerJob", "RecordProcessor", "StreamingJob"]

RecordProcessor = Callable[[ConsumerRecord], Awaitable[None]]
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


class StreamingJob(Protocol):
    """One streaming attempt: runs until stopped or done; reports with ``ctx.progress``."""

    async def __call__(self, ctx: StageContext) -> Outputs:
        """Run the job; the return value is the stage's outputs."""
        ...


async def _ignore(record: ConsumerRecord) -> None:
    """The default processor: following the topic is the whole job."""


class _Position:
    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}
        self.watermark_ms: int | None = None

    def advance(self, record: ConsumerRecord) -> None:
        self.offsets[str(record.partition)] = record.offset + 1
        if record.timestamp is not None and record.timestamp >= 0:
            self.watermark_ms = max(self.watermark_ms or 0, record.timestamp)

    @property
    def watermark(self) -> datetime | None:
        if self.watermark_ms is None:
            return None
        return datetime.fromtimestamp(self.watermark_ms / 1000, UTC)

    def outputs(self) -> dict[str, JsonValue]:
        mark = self.watermark
        return {"offsets": dict(self.offsets), "watermark": mark.isoformat() if mark else None}


class OffsetFollowerJob:
    """Consume ``config.source_topic``, hand each record to ``process``, report progress."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        process: RecordProcessor = _ignore,
        progress_interval_s: float = 5.0,
    ) -> None:
        self.kafka = kafka
        self.process = process
        self.progress_interval_s = progress_interval_s

    async def __call__(self, ctx: StageContext) -> Outputs:
        """Follow the topic until cancelled, past ``until``, or caught up with ``stop_at_end``."""
        topic, until, stop_at_end = _config(ctx)
        group = ctx.config.get("group_id") or f"streamcoord-stream.{ctx.pipeline}.{ctx.stage}"
        consumer = AIOKafkaConsumer(
            self.kafka.topic(topic), **self.kafka.client_kwargs(), group_id=str(group),
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",
        )  # fmt: skip
        await consumer.start()
        position = _Position()
        try:
            await self._follow(consumer, ctx, position, until, stop_at_end)
        finally:
            await consumer.stop()
        return position.outputs()

    async def _follow(
        self,
        consumer: AIOKafkaConsumer,
        ctx: StageContext,
        position: _Position,
        until: datetime | None,
        stop_at_end: bool,
    ) -> None:
        reported: tuple[object, ...] = ()
        last_report = time.monotonic()
        while not ctx.cancelled:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batch.values():
                for record in records:
                    await self.process(record)
                    position.advance(record)
            if batch:
                await consumer.commit()
            done = _passed(position, until) or (stop_at_end and await _caught_up(consumer))
            state = (tuple(sorted(position.offsets.items())), position.watermark_ms)
            due = time.monotonic() - last_report >= self.progress_interval_s
            if state != reported and (due or done):
                await ctx.progress(watermark=position.watermark, offsets=position.offsets)
                reported, last_report = state, time.monotonic()
            if done:
                return


def _passed(position: _Position, until: datetime | None) -> bool:
    mark = position.watermark
    return until is not None and mark is not None and mark >= until


async def _caught_up(consumer: AIOKafkaConsumer) -> bool:
    assigned = consumer.assignment()
    if not assigned:
        return False
    ends = await consumer.end_offsets(list(assigned))
    return all([await consumer.position(tp) >= ends[tp] for tp in assigned])


def _config(ctx: StageContext) -> tuple[str, datetime | None, bool]:
    topic = ctx.config.get("source_topic")
    if not isinstance(topic, str) or not topic:
        raise NonRetryableError("the streaming stage has no executor.config.source_topic")
    raw_until = ctx.config.get("until")
    try:
        until = None if raw_until is None else _DATETIME.validate_python(raw_until)
    except ValidationError:
        raise NonRetryableError(
            f"executor.config.until is not an RFC 3339 time: {raw_until!r}"
        ) from None
    return topic, until, ctx.config.get("stop_at_end") is True
