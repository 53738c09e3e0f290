"""The coordinator's decision path without Kafka: a real :class:`PartitionProcessor` admitting
events records and deciding their admitted copies in memory, the committed state kept as a
snapshot instead of a changelog."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from streamcoord.core import Catalog, CoordinatorState
from streamcoord.events import topology
from streamcoord.pipelines.loader import load_specs
from streamcoord.runtime import CoordinatorSettings
from streamcoord.runtime.deadletter import HEADER_PREFIX
from streamcoord.runtime.partition import ADMITTED_HEADER, PartitionProcessor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EVENTS_TOPIC = topology.EVENTS
Headers = list[tuple[str, bytes]]
T = TypeVar("T")


def example_catalog() -> Catalog:
    """Every pipeline and pool of examples/*.yaml: a realistic catalog."""
    loaded = load_specs(sorted(EXAMPLES.glob("*.yaml")))
    assert not loaded.problems, loaded.problems
    return Catalog.build(loaded.pipelines, loaded.pools)


def record(
    value: bytes | None,
    headers: Headers = (),
    key: bytes | None = b"k",
    offset: int = 0,
    timestamp: int = 1_767_225_600_000,
    *,
    topic: str = EVENTS_TOPIC,
) -> ConsumerRecord[bytes, bytes]:
    """A consumed events-topic record, as aiokafka hands it over."""
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=timestamp,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=tuple(headers),
    )


class OfflineProcessor(PartitionProcessor):
    """A partition processor whose committed state is a snapshot taken by :meth:`commit`."""

    def __init__(self, catalog: Catalog, settings: CoordinatorSettings | None = None) -> None:
        super().__init__(
            TopicPartition(EVENTS_TOPIC, 0),
            CoordinatorState.empty(),
            catalog,
            settings or CoordinatorSettings(),
            {},
        )
        self.committed: list[tuple[str, bytes]] = []

    async def _committed_state(self) -> CoordinatorState:
        return CoordinatorState.load(0, 1, self.committed)

    def commit(self) -> None:
        self.committed = self.state.dump()


@dataclass
class Decided:
    """What one batch did: records decided and dead letters with their reasons."""

    consumed: int
    decided: int
    dead_letters: list[tuple[bytes | None, bytes | None, Headers]]

    @property
    def reasons(self) -> list[str]:
        return [dict(h)[HEADER_PREFIX + "reason"].decode() for _, _, h in self.dead_letters]

    @property
    def dead_lettered(self) -> set[int]:
        """Offsets of the records with a dead letter (decided and rejected, or not decided)."""
        return {int(dict(h)[HEADER_PREFIX + "offset"]) for _, _, h in self.dead_letters}


def decide_records(
    worker: OfflineProcessor, records: Sequence[ConsumerRecord[bytes, bytes]]
) -> Decided:
    """Admit events ``records`` as one batch and decide their admitted copies as the next, the
    way :meth:`PartitionProcessor.process` does (failed records dead-lettered, the batch decided
    again), then take the state as committed. A copy keeps its original's offset, so a dead
    letter names the offset of the record it came from."""
    admitted = _finished(worker._decide_isolated(records))  # the seam under test
    copies = admitted_copies(worker, admitted.outbox)
    decided = _finished(worker._decide_isolated(copies))
    worker.commit()
    deadletter = worker.settings.topics.deadletter
    letters = [
        *admitted.outbox.by_topic().get(deadletter, []),
        *decided.outbox.by_topic().get(deadletter, []),
    ]
    return Decided(len(records), sum(decided.outcome.types.values()), letters)


def admitted_copies(worker: OfflineProcessor, outbox: Any) -> list[ConsumerRecord[bytes, bytes]]:
    """The internal-topic records an admitting batch wrote, as the consumer would hand them
    over (the offset of each is its original's)."""
    internal = worker.internal_tp.topic
    copies = []
    for (topic, _), written in outbox._records.items():
        if topic != internal:
            continue
        for one in written:
            origin = dict(one.headers)[ADMITTED_HEADER].decode()
            offset = int(origin.rsplit("@", 1)[1])
            copies.append(
                record(one.value, one.headers, one.key, offset, one.timestamp, topic=internal)
            )
    return sorted(copies, key=lambda copy: copy.offset)


def _finished(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (nothing here awaits I/O) without an event loop:
    a loop per batch would cost more than the batch."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the offline decision path suspended")
