"""Whether the coordinator took or rejected each command this process sent, and which
pipelines are paused.

The coordinator handles a command in two steps (see :mod:`streamcoord.runtime.partition`): the
owner of its events partition *admits* it (copies it onto the internal topic, marked with the
``streamcoord_admitted_from: <partition>@<offset>`` header, or dead-letters it), then the owner
of the copy's internal partition *decides* the copy (and may dead-letter it). Each step is
committed in one transaction with the changelog's position record of that partition.

One consumer reads ``read_committed``: the changelog from its beginning (keeping only the
position records and the pipelines' pause flags, ``pipe/NAME``), and the internal and dead-letter
topics from where they end when the tracker starts. A command is *rejected* when a dead letter
names it (its events origin, or its copy's admission marker), *accepted* once the position of
its copy's partition has passed the copy and the dead letters committed up to then were read
without one, and *pending* until then. Held in memory: the newest ``capacity`` commands.
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

from streamcoord.core import partition_for
from streamcoord.emit import Delivery
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import (
    PartitionReader,
    Record,
    TopicPartition,
    Transport,
    TransportError,
)
from streamcoord.runtime.changelog import POSITION_KEY, Positions
from streamcoord.runtime.deadletter import HEADER_PREFIX
from streamcoord.runtime.partition import ADMITTED_HEADER
from streamcoord.runtime.settings import TopicNames

__all__ = ["CommandState", "CommandTracker", "TrackedCommand"]

log = logging.getLogger(__name__)

CommandState = Literal["pending", "accepted", "rejected"]
_POSITION = POSITION_KEY.encode()
_PIPE = b"pipe/"

#: Where a record is: (partition, offset).
Place = tuple[int, int]


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


class _Bounded(OrderedDict[Any, Any]):
    """An insertion-ordered dict that forgets its oldest entries past ``capacity``."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self) > self.capacity:
            self.popitem(last=False)


class CommandTracker:
    """``await start()``, ``track(delivery, ...)`` after each send, ``get(id)`` to answer.

    ``connection``: a transport or aiokafka client keyword arguments."""

    def __init__(
        self, connection: Transport | Mapping[str, Any], topics: TopicNames, *,
        capacity: int = 10_000,
    ) -> None:  # fmt: skip
        self._transport = as_transport(connection)
        self.topics = topics
        self._capacity = capacity
        self._commands: OrderedDict[str, TrackedCommand] = OrderedDict()
        self._positions: dict[int, Positions] = {}  # changelog partition -> its positions
        self._paused: dict[tuple[int, str], bool] = {}  # (partition, pipeline) -> paused
        self._state_ends: dict[TopicPartition, int] = {}
        self._state_partitions = 0
        #: Set once the changelog was read to where it ended at start: pause flags are known.
        self.caught_up = asyncio.Event()
        # What was seen before (or without) a command being tracked, by its events place.
        self._rejections: _Bounded = _Bounded(capacity)  # Place -> _Rejection
        self._copies: _Bounded = _Bounded(capacity)  # events Place -> internal Place
        # Unsettled commands by their events place, and by their copy's internal place.
        self._open: dict[Place, str] = {}
        self._by_copy: dict[Place, str] = {}
        # Decided commands: id -> the dead-letter ends to read first (None: not asked yet).
        self._settling: dict[str, dict[TopicPartition, int] | None] = {}
        self._consumer: PartitionReader | None = None
        self._task: asyncio.Task[None] | None = None
        self.changed = asyncio.Condition()

    async def start(self) -> None:
        consumer = self._transport.partition_reader()
        await consumer.start()
        try:
            state = await consumer.partitions(self.topics.state)
            tails = [
                *await consumer.partitions(self.topics.deadletter),
                *await consumer.partitions(self.topics.internal),
            ]
            consumer.assign([*state, *tails])
            await consumer.seek_to_beginning(*state)
            await consumer.seek_to_end(*tails)  # every later command lies beyond
            self._state_ends = await consumer.end_offsets(state)
            self._state_partitions = len(state)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(
            self._follow(consumer, [tp for tp in tails if tp.topic == self.topics.deadletter]),
            name="command tracker",
        )

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
        place = (command.partition, command.offset)
        self._open[place] = command.id
        while len(self._commands) > self._capacity:
            _, old = self._commands.popitem(last=False)
            self._forget(old)
        rejection = self._rejections.get(place)
        if rejection is not None:
            self._settle(command.id, rejection)
        elif (copy := self._copies.get(place)) is not None:
            self._copied(command.id, copy)
        else:
            self._admitted_elsewhere(command.id, place)
        return self._commands[command.id]

    def get(self, command_id: str) -> TrackedCommand | None:
        return self._commands.get(command_id)

    def paused(self, pipeline: str) -> bool | None:
        """Whether ``pipeline`` is paused, as its home partition decided; None until known."""
        if not self.caught_up.is_set() or not self._state_partitions:
            return None
        home = partition_for(f"pipeline/{pipeline}", self._state_partitions)
        return self._paused.get((home, pipeline), False)

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

    # ---- reading ------------------------------------------------------------------------------

    async def _follow(self, consumer: PartitionReader, dead_letters: list[TopicPartition]) -> None:
        while True:
            try:
                batch = await consumer.fetch(timeout_ms=200)
            except TransportError as error:  # the client reconnects by itself
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

    def _read(self, tp: TopicPartition, record: Record) -> None:
        headers = list(record.headers or ())
        if tp.topic == self.topics.state:
            self._read_changelog(tp.partition, record)
        elif tp.topic == self.topics.internal:
            origin = _admitted_from(headers)
            if origin is not None:
                self._copies[origin] = (tp.partition, record.offset)
                if (command_id := self._open.get(origin)) is not None:
                    self._copied(command_id, (tp.partition, record.offset))
        else:
            self._read_dead_letter(headers)

    def _read_changelog(self, partition: int, record: Record) -> None:
        if record.key == _POSITION:
            try:
                positions = Positions.parse(record.value or b"{}")
            except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
                return
            self._positions[partition] = positions
            self._note_decided(partition, positions)
        elif record.key is not None and record.key.startswith(_PIPE):
            name = record.key[len(_PIPE) :].decode(errors="replace")
            self._paused[(partition, name)] = _paused(record.value)

    def _read_dead_letter(self, headers: list[tuple[str, bytes]]) -> None:
        ours = {
            k.removeprefix(HEADER_PREFIX): v.decode(errors="replace")
            for k, v in headers
            if k.startswith(HEADER_PREFIX)
        }
        rejection = _Rejection(ours.get("reason", "rejected"), ours.get("error", ""))
        if ours.get("topic") == self.topics.events:  # refused when admitted
            try:
                origin: Place | None = (int(ours["partition"]), int(ours["offset"]))
            except (KeyError, ValueError):
                return
        else:  # refused when decided: the dead letter is of the admitted copy
            origin = _admitted_from(headers)
        if origin is None:
            return
        self._rejections[origin] = rejection
        if (command_id := self._open.get(origin)) is not None:
            self._settle(command_id, rejection)

    # ---- deciding -----------------------------------------------------------------------------

    def _copied(self, command_id: str, copy: Place) -> None:
        self._by_copy[copy] = command_id
        positions = self._positions.get(copy[0])
        if positions is not None and _next(positions.internal) > copy[1]:
            self._settling.setdefault(command_id, None)  # decided before we looked

    def _admitted_elsewhere(self, command_id: str, place: Place) -> None:
        """A coordinator of a release without the internal topic decides on the events
        partition itself: decided once that partition's position passed the command."""
        positions = self._positions.get(place[0])
        if positions is not None and positions.older_release and _next(positions.events) > place[1]:
            self._settling.setdefault(command_id, None)

    def _note_decided(self, partition: int, positions: Positions) -> None:
        if positions.older_release:
            for (p, offset), command_id in self._open.items():
                if p == partition and offset < _next(positions.events):
                    self._settling.setdefault(command_id, None)
            return
        for (q, offset), command_id in self._by_copy.items():
            if q == partition and offset < _next(positions.internal):
                self._settling.setdefault(command_id, None)

    async def _confirm(self, consumer: PartitionReader, dead_letters: list[TopicPartition]) -> None:
        """Accept the decided commands once the dead letters committed with them are read."""
        if not self._settling:
            return
        fresh = [cid for cid, ends in self._settling.items() if ends is None]
        if fresh:
            now = await consumer.end_offsets(dead_letters)
            for cid in fresh:
                self._settling[cid] = dict(now)
        for cid, ends in list(self._settling.items()):
            if ends is None:
                continue
            if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                command = self._commands.get(cid)
                if command is not None and command.state == "pending":
                    self._settle(cid, None)
                self._settling.pop(cid, None)
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

    def _forget(self, command: TrackedCommand) -> None:
        place = (command.partition, command.offset)
        self._open.pop(place, None)
        copy = self._copies.get(place)
        if copy is not None:
            self._by_copy.pop(copy, None)
        self._settling.pop(command.id, None)


def _next(offset: int | None) -> int:
    return -1 if offset is None else offset


def _admitted_from(headers: list[tuple[str, bytes]]) -> Place | None:
    """The events place an admitted copy came from (the last marker counts)."""
    found = [v for k, v in headers if k == ADMITTED_HEADER]
    if not found:
        return None
    partition, _, offset = found[-1].decode(errors="replace").partition("@")
    try:
        return int(partition), int(offset)
    except ValueError:
        return None


def _paused(value: bytes | None) -> bool:
    try:
        return bool(orjson.loads(value or b"{}").get("paused", False))
    except (orjson.JSONDecodeError, AttributeError):
        return False
