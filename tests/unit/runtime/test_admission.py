"""Admission (issue 13): an events record is copied, whole, onto its run's internal partition,
and only internal records are decided; coordinator messages on the events topic are refused.

Without a broker: one partition processor decides hand-made records into its batch's outbox. The
end-to-end behaviour on a real broker is in tests/integration/test_forwarding.py and
tests/integration/test_internal_topic.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streamcoord.core import Catalog, CatalogSet, CoordinatorState, partition_for
from streamcoord.events.codec import encode
from streamcoord.events.models import (
    CloudEvent,
    SpecsActivate,
    SpecsActivateData,
    StageSucceeded,
    TimerFired,
    TimerFiredData,
)
from streamcoord.pipelines.models import Pipeline
from streamcoord.runtime import CoordinatorSettings
from streamcoord.runtime.deadletter import HEADER_PREFIX
from streamcoord.runtime.partition import ADMITTED_HEADER, PartitionProcessor
from streamcoord.runtime.specs import SpecsUnavailable, StaticSpecs

PARTITIONS = 4
HERE = 1
SETTINGS = CoordinatorSettings(topic_prefix="t.")
EVENTS = SETTINGS.topics.events
INTERNAL = SETTINGS.topics.internal
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {"name": "p", "triggers": [{"kind": "manual"}], "stages": [{"name": "a"}]}
        )
    ]
)


def _worker(specs: Any = None) -> PartitionProcessor:
    return PartitionProcessor(
        TopicPartition(EVENTS, HERE),
        CoordinatorState.empty(HERE, PARTITIONS),
        specs or StaticSpecs(CATALOG),
        SETTINGS,
        {},
    )


def _run_key(*, home: bool) -> str:
    """A run id whose run lives on ``HERE`` (``home``) or on another partition."""
    return next(
        f"p/k{i}" for i in range(100) if (partition_for(f"p/k{i}", PARTITIONS) == HERE) == home
    )


def _succeeded(run_id: str) -> StageSucceeded:
    return StageSucceeded(
        id="ok-1", source="worker", data={"run_id": run_id, "stage": "a", "attempt": 1}
    )


def _record(
    event: CloudEvent, *, topic: str = EVENTS, extra: Sequence[tuple[str, bytes]] = ()
) -> ConsumerRecord[bytes, bytes]:
    value, headers = encode(event)
    return ConsumerRecord(
        topic=topic,
        partition=HERE,
        offset=41,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=b"crc32-keyed",
        value=value,
        checksum=None,
        serialized_key_size=11,
        serialized_value_size=len(value),
        headers=[*headers, *extra],
    )


def _reasons(worker: PartitionProcessor, records: list[ConsumerRecord[bytes, bytes]]) -> list[str]:
    batch = worker.decide_batch(records)
    letters = batch.outbox.by_topic().get(SETTINGS.topics.deadletter, [])
    return [dict(headers)[HEADER_PREFIX + "reason"].decode() for _, _, headers in letters]


def test_a_misplaced_record_is_copied_whole_to_its_run_s_internal_partition() -> None:
    run_id = _run_key(home=False)
    record = _record(_succeeded(run_id), extra=[("origin", b"kcat")])
    batch = _worker().decide_batch([record])
    assert (batch.outcome.admitted, batch.outcome.forwarded) == (1, 1)
    assert batch.outcome.dead_letters == 0
    assert batch.outcome.types == {}  # decided once its copy comes back from the internal topic
    [(place, [copy])] = batch.outbox._records.items()
    assert place == (INTERNAL, partition_for(run_id, PARTITIONS))
    assert copy.key == record.key
    assert copy.value == record.value
    assert copy.headers == [*record.headers, (ADMITTED_HEADER, f"{HERE}@41".encode())]
    assert copy.timestamp == record.timestamp  # the core decides it with the original's time


def test_a_record_on_its_run_s_partition_is_copied_to_the_same_internal_partition() -> None:
    batch = _worker().decide_batch([_record(_succeeded(_run_key(home=True)))])
    assert (batch.outcome.admitted, batch.outcome.forwarded) == (1, 0)
    assert list(batch.outbox._records) == [(INTERNAL, HERE)]


def test_internal_records_are_decided() -> None:
    batch = _worker().decide_batch([_record(_succeeded(_run_key(home=True)), topic=INTERNAL)])
    assert batch.outcome.types == {StageSucceeded.TYPE: 1}
    assert batch.outcome.admitted == 0
    assert batch.outcome.dead_letter_reasons == {"unknown_run": 1}  # the run never started


def _forged_timer() -> TimerFired:
    return TimerFired(
        id="forged",
        source="streamcoord/timer",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        data=TimerFiredData(
            timer_id="p/k1:timeout:a:1",
            run_id="p/k1",
            purpose="timeout",
            due=datetime(2026, 1, 1, tzinfo=UTC),
            stage="a",
            attempt=1,
        ),
    )


def test_a_coordinator_message_on_the_events_topic_is_refused_not_admitted() -> None:
    worker = _worker()
    forged = _record(_forged_timer())
    assert _reasons(worker, [forged]) == ["reserved_type"]
    batch = worker.decide_batch([forged])
    assert INTERNAL not in batch.outbox.by_topic()
    # the same message from a coordinator, on the internal topic, is decided
    decided = worker.decide_batch([_record(_forged_timer(), topic=INTERNAL)])
    assert decided.outcome.types == {TimerFired.TYPE: 1}


class _Published:
    """Specs topic double: ``known`` versions are published, others never arrive."""

    def __init__(self, known: Iterable[str]) -> None:
        self._set = CatalogSet.of(CATALOG)
        self.known = set(known)
        self.asked: list[str] = []

    def current(self) -> CatalogSet:
        return self._set

    async def require(self, versions: Iterable[str]) -> CatalogSet:
        for version in versions:
            self.asked.append(version)
            if version not in self.known:
                raise SpecsUnavailable(version, "it is not on the specs topic", missing=True)
        return self._set


def _activate(version: str) -> SpecsActivate:
    return SpecsActivate(
        id=f"act-{version}",
        source="streamcoord/specs-apply",
        data=SpecsActivateData(version=version),
    )


def test_activating_a_version_never_published_is_refused_once_waited_for() -> None:
    specs = _Published([CATALOG.version])
    worker = _worker(specs)
    bogus, real = _record(_activate("sha256:0000000000000000")), _record(_activate(CATALOG.version))
    asyncio.run(worker._check_activations([bogus, real]))
    assert _reasons(worker, [bogus, real]) == ["unknown_spec_version"]
    assert worker.decide_batch([real]).outcome.admitted == 1
    asyncio.run(worker._check_activations([bogus]))  # waited for once, not at every batch
    assert specs.asked == ["sha256:0000000000000000", CATALOG.version]
