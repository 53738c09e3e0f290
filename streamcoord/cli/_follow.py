"""Following a command to its outcome: tail the runs, dead-letter, internal and changelog topics.

:class:`Follower` notes where those topics end *before* the command is sent, so every record
the coordinator writes about it lies beyond; it then reads them ``read_committed`` (what the
coordinator committed, never an aborted attempt) and feeds them to a :class:`Watch`.

The coordinator first admits the command (copies it onto the internal topic, marked with where
it came from, or dead-letters it) and then decides the copy: the command is *decided* once the
changelog position of the copy's partition has passed the copy, and its dead letter, if any, is
committed with that position.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import orjson

from streamcoord.cli._outcome import Outcome, Watch
from streamcoord.emit import Delivery
from streamcoord.errors import EventError
from streamcoord.events.codec import decode
from streamcoord.events.models import RunRecord
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import PartitionReader, Record, TopicPartition, Transport
from streamcoord.runtime.changelog import POSITION_KEY, Positions
from streamcoord.runtime.deadletter import HEADER_PREFIX
from streamcoord.runtime.partition import ADMITTED_HEADER
from streamcoord.runtime.settings import TopicNames

__all__ = ["Follower"]

_POLL_MS = 200


class Follower:
    """Open before sending, then ``outcome(delivery, watch, seconds)`` follows the command."""

    def __init__(self, connection: Transport | Mapping[str, Any], topics: TopicNames) -> None:
        """``connection``: a transport or aiokafka client keyword arguments."""
        self.topics = topics
        self._consumer = as_transport(connection).partition_reader()
        self._start: dict[TopicPartition, int] = {}
        self._copy: tuple[int, int] | None = None  # (partition, offset) of the admitted copy
        self._decided_up_to: dict[int, int] = {}  # internal partition -> next offset decided

    async def __aenter__(self) -> Self:
        consumer = self._consumer
        await consumer.start()
        try:
            tps = [
                tp
                for topic in (
                    self.topics.runs,
                    self.topics.deadletter,
                    self.topics.state,
                    self.topics.internal,
                )
                for tp in await consumer.partitions(topic)
            ]
            self._start = await consumer.end_offsets(tps)
        except BaseException:
            await consumer.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._consumer.stop()

    async def outcome(self, delivery: Delivery, watch: Watch, timeout_s: float) -> Outcome:
        """The outcome of the command ``delivery`` stored, or ``timeout`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        consumer = self._consumer
        tps = list(self._start)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self._start.get(tp, 0))
        dead_letters = [tp for tp in tps if tp.topic == self.topics.deadletter]
        decided = False
        read_until: dict[TopicPartition, int] | None = None  # dead letters to read, once decided
        while (left := deadline - time.monotonic()) > 0:
            batch = await consumer.fetch(timeout_ms=int(min(left * 1000, _POLL_MS)) + 1)
            for tp, records in batch.items():
                for record in records:
                    found = self._read(tp, record, delivery, watch)
                    if isinstance(found, Outcome):
                        return found
                    if found and not decided:
                        # Its dead letter, if any, was committed with this position: read up to it.
                        decided, read_until = True, await consumer.end_offsets(dead_letters)
            if read_until is not None and await _reached(consumer, read_until):
                read_until = None
                settled = watch.on_decided()
                if settled is not None:
                    return settled
        return _timed_out(watch, decided=decided, timeout_s=timeout_s)

    def _read(
        self, tp: TopicPartition, record: Record, delivery: Delivery,
        watch: Watch,
    ) -> Outcome | bool:  # fmt: skip
        """An outcome, or whether ``record`` shows the command decided."""
        headers = list(record.headers or ())
        if tp.topic == self.topics.state:
            if record.key == POSITION_KEY.encode():
                decided = _internal_next(record.value)
                self._decided_up_to[tp.partition] = max(
                    decided, self._decided_up_to.get(tp.partition, -1)
                )
            return self._copy_decided()
        if tp.topic == self.topics.internal:
            if any(k == ADMITTED_HEADER for k, _ in headers) and _origin(headers) == (
                f"{delivery.partition}@{delivery.offset}"
            ):
                self._copy = (tp.partition, record.offset)
            return self._copy_decided()
        if tp.topic == self.topics.deadletter:
            return _rejection(headers, self.topics.events, delivery) or False
        if record.value is None:
            return False  # a tombstone: compaction of a run that is gone
        try:
            run = decode(record.value, headers)
        except EventError:
            return False  # not a run record of ours to judge
        found = watch.on_run(run.data) if isinstance(run, RunRecord) else None
        return found or False

    def _copy_decided(self) -> bool:
        if self._copy is None:
            return False
        partition, offset = self._copy
        return self._decided_up_to.get(partition, -1) > offset


def _origin(headers: list[tuple[str, bytes]]) -> str:
    """Where an admitted copy came from (``<partition>@<offset>``); the last marker counts."""
    found = [v for k, v in headers if k == ADMITTED_HEADER]
    return found[-1].decode(errors="replace") if found else ""


async def _reached(consumer: PartitionReader, ends: Mapping[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


def _internal_next(value: bytes | None) -> int:
    """The next internal offset a changelog position record says is decided (-1: none)."""
    try:
        decided = Positions.parse(value or b"{}").internal
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return -1
    return -1 if decided is None else decided


def _rejection(
    headers: list[tuple[str, bytes]], events_topic: str, delivery: Delivery
) -> Outcome | None:
    """The outcome a dead letter gives, when it is the command's (matched by its origin)."""
    ours = {
        k.removeprefix(HEADER_PREFIX): v.decode(errors="replace")
        for k, v in headers
        if k.startswith(HEADER_PREFIX)
    }
    origin = (ours.get("topic"), ours.get("partition"), ours.get("offset"))
    admitted = ours.get("topic") != events_topic and _origin(headers) == (
        f"{delivery.partition}@{delivery.offset}"
    )  # refused when decided: the dead letter is of its admitted copy
    if origin != (events_topic, str(delivery.partition), str(delivery.offset)) and not admitted:
        return None
    return Outcome("rejected", False, reason=ours.get("reason"), message=ours.get("error", ""))


def _timed_out(watch: Watch, *, decided: bool, timeout_s: float) -> Outcome:
    run_id = getattr(watch, "run_id", None)
    if decided:
        message = (
            f"the coordinator took the command, but the run did not end within {timeout_s:g}s"
            " (a paused pipeline holds requested runs until `streamcoord resume`)"
        )
    else:
        message = (
            f"no coordinator decided the command within {timeout_s:g}s"
            " (is one running for these topics? `streamcoord status`)"
        )
    return Outcome("timeout", False, run_id if isinstance(run_id, str) else None, message=message)
