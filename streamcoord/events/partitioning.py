"""Which partition owns what: Kafka's default partitioner, reproduced bit for bit.

It lives beside the event models, not in the core, so that an emitter can key its events
without loading the core (its catalog, CEL and the spec models).

The runtime keys every inbound event with :func:`partition_key_for`; the core uses
:func:`partition_for` to tell work it owns from work it must route to another partition.
"""

from __future__ import annotations

from streamcoord.events.models import (
    CloudEvent,
    RunCancel,
    StageFailed,
    StageHeartbeat,
    StageProgress,
    StageRetry,
    StageStarted,
    StageSucceeded,
    TimerFired,
)

__all__ = [
    "anchor_key",
    "home_partition",
    "murmur2",
    "partition_for",
    "partition_key_for",
    "run_base",
]

# Events whose handler looks the run up in this partition's state by ``data.run_id``.
_RUN_EVENTS = frozenset(
    {
        StageStarted.TYPE,
        StageHeartbeat.TYPE,
        StageSucceeded.TYPE,
        StageFailed.TYPE,
        StageProgress.TYPE,
        TimerFired.TYPE,
        RunCancel.TYPE,
        StageRetry.TYPE,
    }
)

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``Utils.murmur2`` in the Java client) as an unsigned 32-bit int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length & ~3
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra == 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's DefaultPartitioner picks for a keyed record."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def run_base(run_id: str) -> str:
    """A run id without its generation suffix: every generation of a run shares one partition."""
    return run_id.split("#", 1)[0]


def anchor_key(name: str, partition: int, partitions: int) -> str:
    """A deterministic key starting with ``name`` that lands on ``partition`` (for broadcasts)."""
    n = 0
    while True:
        key = f"{name}~{n}"
        if partition_for(key, partitions) == partition:
            return key
        n += 1


def _data_field(event: CloudEvent, field: str) -> str | None:
    data = event.data
    value = data.get(field) if isinstance(data, dict) else getattr(data, field, None)
    return value if isinstance(value, str) and value else None


def partition_key_for(event: CloudEvent) -> str:
    """The Kafka key an inbound event should carry so one run's events share a partition.

    Events naming a run (executor events, cancel, retry, timers) key by the run id without its
    generation; run requests by ``pipeline/run_key`` (the run id they create); pipeline controls
    and schedule ticks by the pipeline; routed internal events carry their key in ``sckey``;
    anything else by its CloudEvents ``source`` (the core routes matches it owns elsewhere).
    """
    extra = event.model_extra or {}
    routed = extra.get("sckey")
    if isinstance(routed, str) and routed:
        return routed
    run_id = _data_field(event, "run_id")
    if run_id is not None:
        return run_base(run_id)
    pipeline = _data_field(event, "pipeline")
    run_key = _data_field(event, "run_key")
    if pipeline is not None and run_key is not None and event.type == "streamcoord.run.requested":
        return f"{pipeline}/{run_key}"
    if pipeline is not None:
        return f"pipeline/{pipeline}"
    return event.source


def home_partition(event: CloudEvent, partitions: int) -> int | None:
    """The one partition that can decide ``event``; None when any partition can.

    A routed internal event (extension ``sckey``: matches, arrivals, pool and limit traffic,
    subscriptions, outcomes, broadcast copies, retention sweeps) belongs where its key hashes.
    Events whose handler looks a run up in the state (stage reports, timers, run.cancel,
    stage.retry) belong to the run's partition: elsewhere they would be ``unknown_run``.
    Everything else is decidable anywhere, because the core routes what it makes of it:
    ``run.requested``, schedule ticks, ``run.finished`` and trigger matches become a routed
    ``streamcoord.run.match`` (or arrival) for the run's partition, and pause, resume and
    ``specs.activate`` are applied here and forwarded once to every other partition.
    """
    extra = event.model_extra or {}
    routed = extra.get("sckey")
    if isinstance(routed, str) and routed:
        return partition_for(routed, partitions)
    if event.type not in _RUN_EVENTS:
        return None
    run_id = _data_field(event, "run_id")
    # no run id (a malformed report, a timer naming no run): the core rejects it anywhere
    return None if run_id is None else partition_for(run_base(run_id), partitions)
