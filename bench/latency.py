"""Event-to-trigger latency: the bench is the executor of many chained runs.

For every trigger of stage ``s{i}`` a ``read_committed`` consumer receives, the executor sends
``started`` and ``succeeded`` for it through an :class:`~streamcoord.emit.Emitter`; the hand-off
latency is from just before that send to the receipt of the trigger of ``s{i+1}``. A pacer
limits the hand-offs sent per second, which sets the load.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.workload import STAGES, completion, run_id
from streamcoord.emit import Emitter
from streamcoord.events.codec import decode
from streamcoord.events.models import StageTrigger


async def measure_latency(
    bootstrap: str,
    events_topic: str,
    triggers_topic: str,
    runs: int,
    *,
    rate: float,
    handoffs: int,
    warmup: int = 300,
    deadline_s: float = 90.0,
    on_progress: Any = None,
    fetch_max_wait_ms: int = 500,
) -> dict[str, Any]:
    """Hand-off latencies at ``rate`` hand-offs/s; the first ``warmup`` ones are left out."""
    ready: collections.deque[tuple[str, int]] = collections.deque(
        (run_id(n), 0) for n in range(runs)
    )
    sent_at: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer(
        triggers_topic, bootstrap_servers=bootstrap, group_id=None,
        auto_offset_reset="earliest", enable_auto_commit=False, isolation_level="read_committed",
        fetch_max_wait_ms=fetch_max_wait_ms,
    )  # fmt: skip
    await consumer.start()
    emitter = Emitter(bootstrap_servers=bootstrap, topic=events_topic, linger_ms=0)
    await emitter.start()
    stop = asyncio.Event()
    pacer = asyncio.create_task(_pace(emitter, ready, sent_at, rate, stop))
    started = time.perf_counter()
    seen = 0
    try:
        while len(latencies) < handoffs and time.perf_counter() - started < deadline_s:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    trigger = decode(record.value, list(record.headers or ()))
                    if not isinstance(trigger, StageTrigger):
                        continue
                    stage = int(trigger.data.stage[1:])
                    t0 = sent_at.pop((trigger.data.run_id, stage - 1), None)
                    if t0 is not None:
                        seen += 1
                        if seen > warmup:
                            latencies.append(now - t0)
                    if stage < STAGES - 1:
                        ready.append((trigger.data.run_id, stage))
            if on_progress is not None:
                on_progress(len(latencies))
        achieved = len(latencies) / (time.perf_counter() - started)
    finally:
        stop.set()
        await pacer
        await emitter.stop()
        await consumer.stop()
    return {"latencies": latencies, "offered_rate": rate, "handoffs_per_s": achieved}


async def _pace(
    emitter: Emitter,
    ready: collections.deque[tuple[str, int]],
    sent_at: dict[tuple[str, int], float],
    rate: float,
    stop: asyncio.Event,
) -> None:
    """Send up to ``rate`` completions a second, in ticks of 5 ms."""
    budget = 0.0
    last = time.perf_counter()
    pending: set[asyncio.Task[Any]] = set()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        budget = min(budget + (now - last) * rate, rate * 0.05 + 1)
        last = now
        events = []
        while ready and budget >= 1:
            run, stage = ready.popleft()
            sent_at[(run, stage)] = now
            events += completion(run, stage)
            budget -= 1
        if events:
            task = asyncio.create_task(emitter.send_many(events))
            pending.add(task)
            task.add_done_callback(pending.discard)
    await asyncio.gather(*pending, return_exceptions=True)
