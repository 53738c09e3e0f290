"""A record on another partition than its run's is forwarded home once, never twice (issue 13).

Without a broker: one partition worker decides hand-made records into its batch's outbox. The
end-to-end behaviour on a real broker is in tests/integration/test_forwarding.py.
"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streamcoord.core import Catalog, CoordinatorState, partition_for
from streamcoord.events.codec import encode
from streamcoord.events.models import StageSucceeded
from streamcoord.runtime import CoordinatorSettings
from streamcoord.runtime.partition import (
    FORWARDED_HEADER,
    BatchOutcome,
    PartitionWorker,
    _Batch,
)
from streamcoord.runtime.specs import StaticSpecs
from streamcoord.spec.models import Pipeline

PARTITIONS = 4
HERE = 1
SETTINGS = CoordinatorSettings(topic_prefix="t.")
EVENTS = SETTINGS.topics.events


def _worker() -> PartitionWorker:
    pipeline = Pipeline.model_validate({"name": "p", "triggers": [{"kind": "manual"}],
                                        "stages": [{"name": "a"}]})
    return PartitionWorker(
        TopicPartition(EVENTS, HERE), CoordinatorState.empty(HERE, PARTITIONS),
        StaticSpecs(Catalog.build([pipeline])), SETTINGS, {},
    )


def _elsewhere() -> str:
    """A run key whose run lives on another partition than ``HERE``."""
    return next(f"p/k{i}" for i in range(100) if partition_for(f"p/k{i}", PARTITIONS) != HERE)


def _record(run_id: str, extra: list[tuple[str, bytes]]) -> ConsumerRecord[bytes, bytes]:
    event = StageSucceeded(id="ok-1", source="worker",
                           data={"run_id": run_id, "stage": "a", "attempt": 1})
    value, headers = encode(event)
    return ConsumerRecord(
        topic=EVENTS, partition=HERE, offset=41, timestamp=1_700_000_000_000, timestamp_type=0,
        key=b"crc32-keyed", value=value, checksum=None, serialized_key_size=11,
        serialized_value_size=len(value), headers=[*headers, *extra],
    )


def _decide(record: ConsumerRecord[bytes, bytes]) -> _Batch:
    worker = _worker()
    batch = _Batch(BatchOutcome(consumed=1))
    worker._decide_one(record, worker.state, batch)
    return batch


def test_a_misplaced_record_goes_home_whole_with_the_run_s_key_and_a_marker() -> None:
    run_id = _elsewhere()
    record = _record(run_id, [("origin", b"kcat")])
    batch = _decide(record)
    assert batch.outcome.forwarded == 1
    assert batch.outcome.dead_letters == 0
    assert batch.outcome.types == {}  # counted by type where it is decided
    home = partition_for(run_id, PARTITIONS)
    [(place, [sent])] = batch.outbox._records.items()
    assert place == (EVENTS, home)
    assert sent.key == run_id.encode()
    assert sent.value == record.value
    assert sent.headers == [*record.headers, (FORWARDED_HEADER, f"{HERE}@41".encode())]


def test_a_forwarded_record_misplaced_again_is_decided_here_not_forwarded_twice() -> None:
    batch = _decide(_record(_elsewhere(), [(FORWARDED_HEADER, b"3@7")]))
    assert batch.outcome.forwarded == 0
    # decided here, where its run is not: dead-lettered, so nothing circles between partitions
    assert batch.outcome.dead_letter_reasons == {"unknown_run": 1}
    assert list(batch.outbox._records) == [(SETTINGS.topics.deadletter, 0)]


def test_a_record_on_its_home_partition_is_decided() -> None:
    here = next(f"p/k{i}" for i in range(100) if partition_for(f"p/k{i}", PARTITIONS) == HERE)
    batch = _decide(_record(here, []))
    assert batch.outcome.forwarded == 0
    assert batch.outcome.types == {StageSucceeded.TYPE: 1}
