"""Following a command to its outcome: tail the runs, dead-letter and changelog topics.

:class:`Follower` notes where those topics end *before* the command is sent, so every record
the coordinator writes about it lies beyond; it then reads them ``read_committed`` (what the
coordinator committed, never an aborted attempt) and feeds them to a :class:`Watch`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from streamcoord.cli._outcome import Outcome, Watch
from streamcoord.emit import Delivery
from streamcoord.errors import EventError
from streamcoord.events.codec import decode
from streamcoord.events.models import RunRecord
from streamcoord.kafka.records import topic_partitions
from streamcoord.runtime.changelog import POSITION_KEY
from streamcoord.runtime.deadletter import HEADER_PREFIX
from streamcoord.runtime.settings import TopicNames

__all__ = ["Follower"]

_POLL_MS = 200


class Follower:
    """Open before sending, then ``outcome(delivery, watch, seconds)`` follows the command."""

    def __init__(self, client_kwargs: Mapping[str, Any], topics: TopicNames) -> None:
        self.topics = topics
        self._consumer = AIOKafkaConsumer(
            **client_kwargs,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        self._start: dict[TopicPartition, int] = {}

    async def __aenter__(self) -> Self:
        consumer = self._consumer
        await consumer.start()
        try:
            tps = [
                tp
                for topic in (self.topics.runs, self.topics.deadletter, self.topics.state)
                for tp in await topic_partitions(consumer, topic)
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
        state = TopicPartition(self.topics.state, delivery.partition)
        tps = [tp for tp in self._start if tp.topic != self.topics.state] + [state]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, self._start.get(tp, 0))
        dead_letters = [tp for tp in tps if tp.topic == self.topics.deadletter]
        decided = False
        read_until: dict[TopicPartition, int] | None = None  # dead letters to read, once decided
        while (left := deadline - time.monotonic()) > 0:
            batch = await consumer.getmany(timeout_ms=int(min(left * 1000, _POLL_MS)) + 1)
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
        self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes], delivery: Delivery,
        watch: Watch,
    ) -> Outcome | bool:  # fmt: skip
        """An outcome, or whether ``record`` shows the command decided."""
        headers = list(record.headers or ())
        if tp.topic == self.topics.state:
            return record.key == POSITION_KEY.encode() and _next_offset(record.value) > (
                delivery.offset
            )
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


async def _reached(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    return all([await consumer.position(tp) >= end for tp, end in ends.items()])


def _next_offset(value: bytes | None) -> int:
    try:
        return int(orjson.loads(value or b"{}").get("next_offset", -1))
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return -1


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
    if origin != (events_topic, str(delivery.partition), str(delivery.offset)):
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
