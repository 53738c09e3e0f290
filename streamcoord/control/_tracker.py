"""Whether the coordinator took or rejected each command this process sent, and which
pipelines are paused.

One consumer reads two topics ``read_committed``: the coordinator's changelog from its
beginning, keeping only the position records (the next events offset each partition will
decide, committed in the same transaction as that batch's outputs) and the pipelines' pause
flags (``pipe/NAME``), and the dead letters from where they end when the tracker starts. A
command stored at ``(partition, offset)`` is *rejected* when a dead letter names that origin,
*accepted* once the partition's position has passed the offset and the dead letters committed
up to then have been read without one, and *pending* until then. Held in memory: the newest
``capacity`` commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from streamcoord.core import partition_for
from streamcoord.emit import Delivery
from streamcoord.kafka.records import topic_partitions
from streamcoord.runtime.changelog import POSITION_KEY
from streamcoord.runtime.deadletter import HEADER_PREFIX
from streamcoord.runtime.settings import TopicNames

__all__ = ["CommandState", "CommandTracker", "TrackedCommand"]

log = logging.getLogger(__name__)

CommandState = Literal["pending", "accepted", "rejected"]
_POSITION = POSITION_KEY.encode()
_PIPE = b"pipe/"


@dataclass(frozen=True)
class TrackedCommand:
    """A command as this process knows it."""

    id: str
    type: str
    principal: str
    subject: str  # the run or pipeline it is about
    partition: int
    offset: int
    sent_at: datetime
    state: CommandState = "pending"
    reason: str | None = None  # the dead letter's stable code, e.g. "unknown_run"
    message: str = ""
    decided_at: datetime | None = None


@dataclass(frozen=True)
class _Rejection:
    reason: str
    message: str


class CommandTracker:
    """``await start()``, ``track(delivery, ...)`` after each send, ``get(id)`` to answer."""

    def __init__(
        self, client_kwargs: Mapping[str, Any], topics: TopicNames, *, capacity: int = 10_000
    ) -> None:
        self._client_kwargs = dict(client_kwargs)
        self.topics = topics
        self._capacity = capacity
        self._commands: OrderedDict[str, TrackedCommand] = OrderedDict()
        self._positions: dict[int, int] = {}  # events partition -> next offset to decide
        self._paused: dict[tuple[int, str], bool] = {}  # (partition, pipeline) -> paused
        self._state_ends: dict[TopicPartition, int] = {}
        self._state_partitions = 0
        #: Set once the changelog was read to where it ended at start: pause flags are known.
        self.caught_up = asyncio.Event()
        self._rejections: OrderedDict[tuple[int, int], _Rejection] = OrderedDict()
        # Decided commands: id -> the dead-letter ends to read first (None: not asked yet).
        self._settling: dict[str, dict[TopicPartition, int] | None] = {}
        # Unsettled commands by where they are: partition -> offset -> id.
        self._open: dict[int, dict[int, str]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Condition()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._client_kwargs, group_id=None, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="latest",
        )  # fmt: skip
        await consumer.start()
        try:
            state = await topic_partitions(consumer, self.topics.state)
            dead_letters = await topic_partitions(consumer, self.topics.deadletter)
            consumer.assign([*state, *dead_letters])
            await consumer.seek_to_beginning(*state)
            await consumer.seek_to_end(*dead_letters)
            for tp in dead_letters:
                await consumer.position(tp)  # resolve "end" now: every later command lies beyond
            self._state_ends = await consumer.end_offsets(state)
            self._state_partitions = len(state)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer), name="command tracker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def track(self, delivery: Delivery, *, principal: str, subject: str) -> TrackedCommand:
        """Follow the command ``delivery`` stored; what is already known settles it at once."""
        command = TrackedCommand(
            id=delivery.event.id, type=delivery.event.type, principal=principal, subject=subject,
            partition=delivery.partition, offset=delivery.offset, sent_at=datetime.now(UTC),
        )  # fmt: skip
        self._commands[command.id] = command
        self._open.setdefault(command.partition, {})[command.offset] = command.id
        while len(self._commands) > self._capacity:
            _, old = self._commands.popitem(last=False)
            self._forget(old)
        rejection = self._rejections.get((command.partition, command.offset))
        if rejection is not None:
            self._settle(command.id, rejection)
        elif self._positions.get(command.partition, -1) > command.offset:
            self._settling[command.id] = None  # decided before we looked: confirm next round
        return self._commands[command.id]

    def _forget(self, command: TrackedCommand) -> None:
        self._open.get(command.partition, {}).pop(command.offset, None)
        self._settling.pop(command.id, None)

    def get(self, command_id: str) -> TrackedCommand | None:
        return self._commands.get(command_id)

    def paused(self, pipeline: str) -> bool | None:
        """Whether ``pipeline`` is paused, as its home partition decided; None until known."""
        if not self.caught_up.is_set() or not self._state_partitions:
            return None
        home = partition_for(f"pipeline/{pipeline}", self._state_partitions)
        return self._paused.get((home, pipeline), False)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        dead_letters = [tp for tp in consumer.assignment() if tp.topic == self.topics.deadletter]
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=200)
            except KafkaError as error:  # the client reconnects by itself
                log.warning("command tracker: %s", error)
                await asyncio.sleep(1.0)  # a pause between attempts, not a wait for an event
                continue
            for tp, records in batch.items():
                for record in records:
                    self._read(tp, record)
            if not self.caught_up.is_set() and all(
                [await consumer.position(tp) >= end for tp, end in self._state_ends.items()]
            ):
                self.caught_up.set()
            await self._confirm(consumer, dead_letters)

    def _read(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        if tp.topic == self.topics.state:
            if record.key == _POSITION:
                self._positions[tp.partition] = _next_offset(record.value)
                self._note_decided(tp.partition)
            elif record.key is not None and record.key.startswith(_PIPE):
                name = record.key[len(_PIPE) :].decode(errors="replace")
                self._paused[(tp.partition, name)] = _paused(record.value)
            return
        origin, rejection = _rejection(list(record.headers or ()), self.topics.events)
        if origin is None or rejection is None:
            return
        self._rejections[origin] = rejection
        while len(self._rejections) > self._capacity:
            self._rejections.popitem(last=False)
        command_id = self._open.get(origin[0], {}).get(origin[1])
        if command_id is not None:
            self._settle(command_id, rejection)

    def _note_decided(self, partition: int) -> None:
        position = self._positions[partition]
        for offset, command_id in self._open.get(partition, {}).items():
            if offset < position and command_id not in self._settling:
                self._settling[command_id] = None

    async def _confirm(
        self, consumer: AIOKafkaConsumer, dead_letters: list[TopicPartition]
    ) -> None:
        """Accept the decided commands once the dead letters committed with them are read."""
        if not self._settling:
            return
        fresh = [cid for cid, ends in self._settling.items() if ends is None]
        if fresh:
            ends = await consumer.end_offsets(dead_letters)
            for cid in fresh:
                self._settling[cid] = dict(ends)
        for cid, ends in list(self._settling.items()):
            if ends is None:
                continue
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                del self._settling[cid]
                command = self._commands.get(cid)
                if command is not None and command.state == "pending":
                    self._settle(cid, None)
        async with self.changed:
            self.changed.notify_all()

    def _settle(self, command_id: str, rejection: _Rejection | None) -> None:
        command = self._commands[command_id]
        now = datetime.now(UTC)
        self._forget(command)
        if rejection is None:
            self._commands[command_id] = replace(command, state="accepted", decided_at=now)
        else:
            self._commands[command_id] = replace(
                command, state="rejected", reason=rejection.reason, message=rejection.message,
                decided_at=now,
            )  # fmt: skip

    async def wait(self, command_id: str, timeout_s: float) -> TrackedCommand | None:
        """The command once it is no longer pending, or as it is after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        async with self.changed:
            while (command := self.get(command_id)) is not None and command.state == "pending":
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), left)
        return self.get(command_id)


def _next_offset(value: bytes | None) -> int:
    try:
        return int(orjson.loads(value or b"{}").get("next_offset", -1))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return -1


def _paused(value: bytes | None) -> bool:
    try:
        return bool(orjson.loads(value or b"{}").get("paused", False))
    except (orjson.JSONDecodeError, AttributeError):
        return False


def _rejection(
    headers: list[tuple[str, bytes]], events_topic: str
) -> tuple[tuple[int, int] | None, _Rejection | None]:
    """The origin on the events topic a dead letter names, and its reason."""
    ours = {
        k.removeprefix(HEADER_PREFIX): v.decode(errors="replace")
        for k, v in headers
        if k.startswith(HEADER_PREFIX)
    }
    if ours.get("topic") != events_topic:
        return None, None
    try:
        origin = (int(ours.get("partition", "")), int(ours.get("offset", "")))
    except ValueError:
        return None, None
    return origin, _Rejection(ours.get("reason", "rejected"), ours.get("error", ""))
