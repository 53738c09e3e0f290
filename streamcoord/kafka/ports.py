"""What the coordinator runtime needs from Kafka, as protocols (ports).

The runtime (``streamcoord.runtime``) depends on these only. :mod:`streamcoord.kafka.client`
implements them with aiokafka, its workarounds included; :mod:`streamcoord.testing` implements
them in memory, for fast tests without a broker. ``tests/contract`` runs one suite on both.

- :class:`GroupConsumer`: group membership (assignment callbacks) and reading the assigned
  partitions from a position (fetch, seek, pause, resume), ``read_committed`` (the
  coordinator's, and the worker SDK's on its executor topics).
- :class:`TransactionalSink`: one transactional producer (begin, write, commit or abort);
  starting it fences every older producer with the same transactional id and aborts its open
  transaction.
- :class:`ChangelogStore`: the last value of every key of one changelog partition.
- :class:`Producer`: plain (non-transactional) sends, for timer and schedule events.
- :class:`TopicReader`: a whole topic from its beginning, then followed (the specs topic).
- :class:`DeliveryProducer`: many sends in flight at once, each saying where it was stored
  (the emitter, and through it the HTTP ingest, the CLI and the API).
- :class:`PartitionReader`: chosen partitions without a group, from chosen positions (the
  CLI's, the API's, the control plane's and the read model's readers, the lineage follower).
- :class:`Transport`: makes the above; one per process.

Failures of the broker or of the connection leave every port as :class:`TransportError`: the
runtime retries them (decides the batch again from the committed state).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = [
    "AssignmentCallback",
    "BatchWriter",
    "ChangelogContents",
    "ChangelogStore",
    "DeliveryProducer",
    "GroupConsumer",
    "OutRecord",
    "PartitionReader",
    "Producer",
    "Record",
    "StoredAt",
    "TopicPartition",
    "TopicReader",
    "TransactionalSink",
    "Transport",
    "TransportError",
]


class TopicPartition(NamedTuple):
    """One partition of one topic (equal to aiokafka's, which is the same named tuple)."""

    topic: str
    partition: int


class TransportError(Exception):
    """The broker or the connection failed (an outage, a timeout, a fenced producer): the
    runtime decides the batch again from the committed state."""


class Record(Protocol):
    """A consumed record (aiokafka's ``ConsumerRecord`` has this shape)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


@dataclass
class OutRecord:
    """A record to produce onto a partition chosen already."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None  # ms; None: the producer's clock


#: Called with the partitions taken away from (or given to) this member.
AssignmentCallback = Callable[[set[TopicPartition]], Awaitable[None]]


class GroupConsumer(Protocol):
    """One member of a consumer group, reading its assigned partitions ``read_committed``."""

    async def start(self) -> None:
        """Connect; raises :class:`TransportError` (or ``OSError``) if the cluster is not there."""
        ...

    async def stop(self) -> None:
        """Leave the group and close the connections."""
        ...

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has (None: it does not exist)."""
        ...

    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_revoked: AssignmentCallback,
        on_assigned: AssignmentCallback,
    ) -> None:
        """Join the group for ``topics``. Partitions are assigned by range (the same numbers of
        equally sized topics go to one member); the callbacks run before records of newly
        assigned partitions are handed out, revocation before assignment."""
        ...

    async def fetch(
        self, *, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        """Committed records of assigned, unpaused partitions from their positions (empty when
        none arrived within ``timeout_ms``). Cancelling it loses no record: what it took comes
        with a later fetch, unless the partitions were reassigned meanwhile."""
        ...

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` on."""
        ...

    def pause(self, *tps: TopicPartition) -> None: ...

    def resume(self, *tps: TopicPartition) -> None: ...

    async def position(self, tp: TopicPartition) -> int:
        """The next offset :meth:`fetch` reads of ``tp``."""
        ...

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        """The last stable offset last seen of ``tp`` (None: not known yet)."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Record positions as the group's committed offsets (for monitoring)."""
        ...


class BatchWriter(Protocol):
    """Takes records partition by partition (what an outbox is flushed into)."""

    async def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has (what keyed records are placed over)."""
        ...

    async def write(self, records: Mapping[tuple[str, int], Sequence[OutRecord]]) -> None:
        """Add records, per (topic, partition) in order; returns once the broker has them (in
        a transaction: invisible until it commits)."""
        ...


class TransactionalSink(BatchWriter, Protocol):
    """One transactional producer: a batch's records become visible together or not at all."""

    async def start(self) -> None:
        """Connect and fence: older producers of the same transactional id fail from now on,
        and their open transaction is aborted."""
        ...

    async def stop(self) -> None: ...

    async def begin(self) -> None: ...

    async def commit(self) -> None: ...

    async def abort(self) -> None: ...


class Producer(Protocol):
    """Plain sends, each acknowledged by every in-sync replica."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def partition_count(self, topic: str) -> int | None:
        """How many partitions ``topic`` has (None: it does not exist)."""
        ...

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
        *,
        partition: int | None = None,
    ) -> None:
        """Produce one record onto ``partition`` (default: the partition of its key) and wait
        for the acknowledgement (sends awaited together travel together)."""
        ...


@dataclass(frozen=True)
class ChangelogContents:
    """The live keys of one changelog partition: their last values, and records read."""

    items: dict[str, bytes]
    records: int


class ChangelogStore(Protocol):
    """A compacted changelog topic, read partition by partition up to its stable end."""

    async def read(self, partition: int, *, deadline_s: float) -> ChangelogContents:
        """The last value of every live key (a tombstone removes its key); raises
        ``TimeoutError`` after ``deadline_s``."""
        ...


class TopicReader(Protocol):
    """Every partition of one topic, read ``read_committed`` from the beginning and followed."""

    async def start(self) -> None:
        """Connect and take every partition from its beginning; raises ``ConfigError`` if the
        topic does not exist."""
        ...

    async def stop(self) -> None: ...

    async def caught_up(self) -> bool:
        """Whether every partition is read up to where its stable end was at :meth:`start`."""
        ...

    async def fetch(self, *, timeout_ms: int) -> Mapping[TopicPartition, Sequence[Record]]:
        """The next committed records (empty when none arrived within ``timeout_ms``)."""
        ...


class StoredAt(NamedTuple):
    """Where the broker stored a record."""

    partition: int
    offset: int


class DeliveryProducer(Protocol):
    """Sends many records at once, idempotent and acknowledged by every in-sync replica."""

    async def start(self) -> None:
        """Connect; raises :class:`TransportError` if the cluster cannot be reached."""
        ...

    async def stop(self) -> None:
        """Deliver what is pending, then disconnect."""
        ...

    async def submit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> Awaitable[StoredAt]:
        """Hand one record over (keyed: onto its key's partition), waiting while the
        producer's buffer is full. The awaitable returned ends once the broker acknowledged
        the record, with where it stored it (:class:`TransportError` if it did not); records
        submitted before awaiting travel together."""
        ...


class PartitionReader(Protocol):
    """A reader without a group: the partitions it is given, ``read_committed``, from the
    positions it is given."""

    async def start(self) -> None:
        """Connect; raises :class:`TransportError` if the cluster cannot be reached."""
        ...

    async def stop(self) -> None: ...

    async def partitions(self, topic: str) -> list[TopicPartition]:
        """Every partition of ``topic`` in order; raises ``ConfigError`` if it does not exist."""
        ...

    def assign(self, tps: Sequence[TopicPartition]) -> None:
        """Read exactly ``tps`` from now on (each from its beginning until sought)."""
        ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    async def seek_to_beginning(self, *tps: TopicPartition) -> None: ...

    async def seek_to_end(self, *tps: TopicPartition) -> None:
        """Read ``tps`` from their last stable offsets now on: only records committed later."""
        ...

    async def position(self, tp: TopicPartition) -> int:
        """The next offset :meth:`fetch` reads of ``tp`` (past transaction markers)."""
        ...

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        """The last stable offset of each of ``tps`` now."""
        ...

    async def fetch(
        self, *tps: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        """Committed records of ``tps`` (none given: every assigned partition) from their
        positions; empty when none arrived within ``timeout_ms``."""
        ...


class Transport(Protocol):
    """Makes the clients of one process."""

    def prepare(self) -> None:
        """Process-wide client setup, once before the first client is made."""
        ...

    def group_consumer(
        self, group_id: str, *, instance_id: str | None, max_records: int
    ) -> GroupConsumer: ...

    def producer(self) -> Producer: ...

    def transactional_sink(self, transactional_id: str, *, timeout_s: float) -> TransactionalSink:
        """A producer whose transactions the broker aborts after ``2 * timeout_s``."""
        ...

    def changelog(self, topic: str) -> ChangelogStore: ...

    def topic_reader(self, topic: str) -> TopicReader: ...

    def delivery_producer(self, *, linger_ms: int = 5) -> DeliveryProducer: ...

    def partition_reader(self, *, max_records: int | None = None) -> PartitionReader:
        """``max_records``: at most this many records per :meth:`PartitionReader.fetch`."""
        ...

    async def end_offset(self, tp: TopicPartition) -> int:
        """The last stable offset of ``tp`` now."""
        ...

    async def refusal(self) -> Exception | None:
        """Why the cluster refuses this process's credentials (None: it does not refuse)."""
        ...
