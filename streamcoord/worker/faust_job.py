"""A streaming job written as a Faust app (faust-streaming, the ``streaming`` extra).

:class:`FaustJob` fits the :class:`~streamcoord.worker.streaming.StreamingJob` protocol and takes
the same config as :class:`~streamcoord.worker.streaming.OffsetFollowerJob` (``source_topic``,
``group_id``, ``until``, ``stop_at_end``). For one trigger it builds a Faust app whose one agent
(concurrency 1: faust-streaming's #606 commits past in-flight messages above that) hands each
event to a user processor, tracks per-partition offsets and the event-time watermark (record
timestamps), and reports them through ``ctx.progress``.

The app runs inside the worker's event loop (``await app.start()`` / ``await app.stop()``): no
Faust ``Worker``, so no signal handlers or loop of its own. It declares no topics and uses no
tables or leader topic (brokers may refuse automatic topic creation), and starts from the
earliest offset when its group has no committed offset. Faust stays out of the coordinator's
exactly-once path: at-least-once processing suits an edge executor.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.types import EventT, StreamT

from streamcoord.kafka.settings import KafkaSettings
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import StageError
from streamcoord.worker._registry import Outputs
from streamcoord.worker.streaming import _config, _Position

__all__ = ["FaustJob", "FaustProcessor"]

#: Handles one Faust event (``event.message`` has the record's topic, partition, offset...).
FaustProcessor = Callable[[EventT[Any]], Awaitable[None]]

#: How often the job looks at its position between progress reports (seconds).
_TICK_S = 0.2
#: Tries at finding the group's coordinator (one tick apart) before giving up.
_COORDINATOR_ATTEMPTS = 50


async def _ignore(event: EventT[Any]) -> None:
    """The default processor: following the topic is the whole job."""


class _Record:
    """The fields of a Faust message that :class:`_Position` reads, timestamp in milliseconds."""

    def __init__(self, event: EventT[Any]) -> None:
        message = event.message
        self.partition: int = message.partition
        self.offset: int = message.offset
        # Faust turns the record's millisecond timestamp into float seconds; round it back.
        self.timestamp: int | None = (
            round(message.timestamp * 1000) if message.timestamp is not None else None
        )


class _Run:
    """One attempt's app and what its agent has seen."""

    def __init__(self, app: faust.App, process: FaustProcessor) -> None:
        self.app = app
        self.process = process
        self.position = _Position()
        self.error: BaseException | None = None
        # stop_at_end: per assigned partition, where reading began and the end to reach
        self.begin: dict[Any, int] = {}
        self.ends: dict[Any, int] | None = None

    async def consume(self, stream: StreamT[Any]) -> None:
        async for event in stream.events():
            if self.error is not None:
                continue  # the job is stopping; process nothing more
            try:
                await self.process(event)
            except Exception as error:  # re-raised by the job, not left to Faust's log
                self.error = error
                continue
            self.position.advance(_Record(event))  # the fields it reads


class FaustJob:
    """Run ``config.source_topic`` through a Faust agent that calls ``process`` per event."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        process: FaustProcessor = _ignore,
        progress_interval_s: float = 5.0,
        app_settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.kafka = kafka
        self.process = process
        self.progress_interval_s = progress_interval_s
        self.app_settings = dict(app_settings or {})

    async def __call__(self, ctx: StageContext) -> Outputs:
        """Follow the topic until cancelled, past ``until``, or caught up with ``stop_at_end``."""
        topic, until, stop_at_end = _config(ctx)
        group = str(ctx.config.get("group_id") or f"streamcoord-stream.{ctx.pipeline}.{ctx.stage}")
        run = self._build(group, self.kafka.topic(topic))
        start = await self._start_offsets(group)
        await run.app.start()
        try:
            await self._follow(run, ctx, until, stop_at_end, start)
        finally:
            await run.app.stop()
        if run.error is not None:
            raise run.error
        return run.position.outputs()

    def _build(self, group: str, topic: str) -> _Run:
        app = faust.App(
            group, broker=[f"kafka://{server.strip()}" for server in
                           self.kafka.bootstrap_servers.split(",")],
            broker_credentials=self._credentials(), broker_client_id=self.kafka.client_id,
            store="memory://", web_enabled=False, autodiscover=False,
            topic_allow_declare=False, topic_disable_leader=True,
            consumer_auto_offset_reset="earliest", **self.app_settings,
        )  # fmt: skip
        run = _Run(app, self.process)
        source = app.topic(topic, key_serializer="raw", value_serializer="raw")
        app.agent(source, name=f"{group}.follow", concurrency=1)(run.consume)
        return run

    def _credentials(self) -> faust.auth.Credentials | None:
        kafka = self.kafka
        context = kafka.ssl_context() if kafka.uses_ssl else None
        if kafka.security_protocol.startswith("SASL_"):
            kwargs = kafka.client_kwargs()
            return faust.SASLCredentials(
                username=kwargs["sasl_plain_username"], password=kwargs["sasl_plain_password"],
                mechanism=kafka.sasl_mechanism, ssl_context=context,
            )  # fmt: skip
        return faust.SSLCredentials(context) if context is not None else None

    async def _start_offsets(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets: where this attempt starts reading."""
        admin = AIOKafkaAdminClient(**self.kafka.client_kwargs())
        await admin.start()
        try:
            committed = await _committed(admin, group)
        finally:
            await admin.close()
        return {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}

    async def _follow(
        self,
        run: _Run,
        ctx: StageContext,
        until: datetime | None,
        stop_at_end: bool,
        start: Mapping[TopicPartition, int],
    ) -> None:
        position = run.position
        reported: tuple[object, ...] = ()
        last_report = time.monotonic()
        while not ctx.cancelled and run.error is None:
            if run.app.crashed:
                raise StageError(
                    f"the Faust app following {ctx.config.get('source_topic')} crashed: "
                    f"{run.app.crash_reason!r}",
                    hint="see the worker's log for Faust's traceback; the attempt may be retried",
                )
            mark = position.watermark
            passed = until is not None and mark is not None and mark >= until
            done = passed or (stop_at_end and await _caught_up(run, start))
            state = (tuple(sorted(position.offsets.items())), position.watermark_ms)
            due = time.monotonic() - last_report >= self.progress_interval_s
            if state != reported and (due or done):
                await ctx.progress(watermark=position.watermark, offsets=position.offsets)
                reported, last_report = state, time.monotonic()
            if done:
                return
            await _tick(ctx)


async def _committed(admin: AIOKafkaAdminClient, group: str) -> Mapping[TopicPartition, Any]:
    # A young cluster answers "coordinator not available" until its offsets topic is ready.
    for attempt in range(_COORDINATOR_ATTEMPTS):
        try:
            return await admin.list_consumer_group_offsets(group)  # type: ignore[no-any-return]
        except KafkaError as error:
            if not error.retryable or attempt == _COORDINATOR_ATTEMPTS - 1:
                raise
            await asyncio.sleep(_TICK_S)
    raise AssertionError("unreachable")


async def _tick(ctx: StageContext) -> None:
    """Wait one tick, returning early when the attempt is cancelled."""
    try:
        await asyncio.wait_for(ctx.wait_cancelled(), _TICK_S)
    except TimeoutError:
        return


async def _caught_up(run: _Run, start: Mapping[TopicPartition, int]) -> bool:
    """Whether every assigned partition has been processed up to the end decided on assignment.

    The end is fixed once the app holds an assignment and has finished seeking to its positions
    (not while Faust is still rebalancing), and fixed again only when the assignment changes: an
    end taken before that, or refreshed on every tick, can be compared against a position the
    agent has not reached yet, or never stop on a topic that keeps growing.
    """
    consumer = run.app.consumer
    assigned = frozenset(consumer.assignment())
    if not assigned or run.app.rebalancing:
        return False
    if run.ends is None or frozenset(run.ends) != assigned:
        run.ends = dict(await consumer.highwaters(*assigned))
        earliest = await consumer.earliest_offsets(*assigned)
        run.begin = {
            tp: start.get(TopicPartition(tp.topic, tp.partition), earliest[tp]) for tp in assigned
        }
    offsets = run.position.offsets
    return all(
        max(offsets.get(str(tp.partition), 0), run.begin[tp]) >= end for tp, end in run.ends.items()
    )
