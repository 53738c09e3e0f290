"""Measuring helpers: percentiles, steady rates, consumer-group progress, child coordinators."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds of ``values`` given in seconds."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50_ms": pick(0.50), "p95_ms": pick(0.95),
            "p99_ms": pick(0.99), "max_ms": ordered[-1] * 1000}  # fmt: skip


def steady_rate(samples: Sequence[tuple[float, int]], total: int) -> float:
    """Records/s between 10% and 90% of ``total`` (leaves out start-up and the tail)."""
    lo = next((s for s in samples if s[1] >= 0.1 * total), None)
    hi = next((s for s in samples if s[1] >= 0.9 * total), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        return dict(await consumer.end_offsets(parts))
    finally:
        await consumer.stop()


@dataclass
class Drain:
    """How a consumer group worked through a fixed set of end offsets."""

    total: int
    seconds: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Records/s from the first progress seen to the end (what the first progress
        covered took time before the clock started, so it is not counted)."""
        if not self.seconds or not self.samples:
            return 0.0
        return (self.total - self.samples[0][1]) / self.seconds


async def follow_group(
    bootstrap: str,
    group: str,
    ends: dict[TopicPartition, int],
    *,
    deadline_s: float,
    on_progress: Any = None,
) -> Drain:
    """Poll the group's committed offsets until they reach ``ends``; time from first progress."""
    base = 0
    total = sum(ends.values()) - base
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    drain = Drain(total)
    first: float | None = None
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < deadline_s:
            committed = await admin.list_consumer_group_offsets(group)
            done = sum(
                min(committed[tp].offset, end) for tp, end in ends.items() if tp in committed
            )
            now = time.perf_counter()
            if done and first is None:
                first = now
            if first is not None:
                drain.samples.append((now - first, done))
            if on_progress is not None:
                on_progress(done)
            if done >= total:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    drain.seconds = drain.samples[-1][0] if drain.samples else 0.0
    return drain


async def follow_decisions(
    bootstrap: str, group: str, internal: str, partitions: int, drain: Drain, *, deadline_s: float
) -> Drain:
    """After ``drain`` saw every event admitted, wait until the group has also decided every
    admitted copy on the ``internal`` topic (its offsets reach that topic's end), and count the
    drain's time up to then: an event is done once decided, not once admitted."""
    ends = await end_offsets(bootstrap, internal, partitions)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < deadline_s:
            committed = await admin.list_consumer_group_offsets(group)
            # The internal topic is written in transactions: its end is one past the last
            # commit marker, and the group's position after the last record is that marker's
            # offset (positions are the decided records', not the consumer's): end - 1. Waiting
            # for the end itself ran every drain into the deadline.
            if all(tp in committed and committed[tp].offset >= end - 1
                   for tp, end in ends.items() if end):  # fmt: skip
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    waited = time.perf_counter() - started
    if drain.samples:
        last, done = drain.samples[-1]
        drain.samples.append((last + waited, done))
        drain.seconds = last + waited
    return drain


class Child:
    """``python -m bench.child`` with its JSON lines collected."""

    def __init__(
        self, bootstrap: str, prefix: str, group: str, poll_timeout_ms: int = 200,
        client: str = "aiokafka",
    ) -> None:  # fmt: skip
        self.args = [sys.executable, "-m", "bench.child", "--bootstrap", bootstrap,
                     "--prefix", prefix, "--group", group,
                     "--poll-timeout-ms", str(poll_timeout_ms), "--client", client]  # fmt: skip
        self.lines: dict[str, dict[str, Any]] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            try:
                line = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            self.lines[line["event"]] = line
            self.event(line["event"]).set()

    async def stop(self) -> dict[str, Any]:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader
        return self.lines.get("stopped", {})
