"""One owned partition: its state, its timers and its transactional producer.

A partition has two inputs with the same number. The public events topic is what other systems
write (anyone the ACLs let in); the internal topic is written only by coordinators. An events
record is *admitted*: decoded within the documented limits, refused if it is one of the
coordinators' own message types (``reserved_type``) or activates a spec version that was never
published, and otherwise copied, bytes and headers unchanged, onto the internal partition of its
run (whatever partitioner the producer used). Only internal records are *decided*, so the
internal topic holds everything the core decided, in the order it decided it: replaying it gives
the same decisions.

A batch walks four stages (:meth:`PartitionProcessor.process`; :mod:`~streamcoord.runtime.batch`
holds what they fill in): **admit** each events record (:meth:`~PartitionProcessor._admit`),
**decide** each internal record with the core (:meth:`~PartitionProcessor._decide`), **route**
what a decision caused into the batch (:meth:`~PartitionProcessor._route`), and **commit** the
batch (:meth:`~PartitionProcessor._commit`). Telemetry observes it through a
:class:`~streamcoord.runtime.observer.BatchObserver`.

A batch of records becomes one Kafka transaction: every command the core returned, the admitted
copies, the changelog deltas of the keys it changed, dead letters, and the consumed positions of
both inputs (a changelog record too, so a commit is AddPartitionsToTxn, Produce and EndTxn: no
round trips to the group coordinator). If the transaction fails, the state is reloaded from the
changelog (which holds exactly what was committed) and the consumer is rewound to the batch's
first offsets, so the batch is decided again from the same state: nothing is lost or doubled.

A record is never a reason to stop: whatever decoding, deciding or encoding one record raises
is that record's failure. It is dead-lettered with a reason code (``decode_failed``,
``decide_failed``, ``encode_failed``), the committed state is reloaded, and the batch is decided
again without it, so nothing it half did is committed. The retry checks each record's state
and run records as it goes, which also pins a failure that only shows at the end of a batch
on the record that caused it. Only failures of the environment (broker, fencing, transactions)
leave :meth:`PartitionProcessor.process`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from streamcoord.core import (
    CancelTimer,
    Catalog,
    CatalogSet,
    CoordinatorState,
    Publish,
    SetTimer,
    Step,
    decide,
    home_partition,
    run_record,
)
from streamcoord.errors import EventError
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    COORDINATOR_EVENT_TYPES,
    CloudEvent,
    SpecsActivate,
    StageTrigger,
    TimerFired,
)
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import Record, TopicPartition, TransactionalSink, Transport
from streamcoord.runtime.batch import ADMITTED_HEADER, Batch, BatchOutcome, Encoded, RecordFailed
from streamcoord.runtime.changelog import POSITION_KEY, Positions, read_changelog
from streamcoord.runtime.observer import NO_OBSERVER, BatchObserver
from streamcoord.runtime.settings import CoordinatorSettings
from streamcoord.runtime.specs import SpecSource, SpecsUnavailable, StaticSpecs, activated_versions
from streamcoord.runtime.timers import TimerQueue

__all__ = [
    "ADMITTED_HEADER",
    "BatchOutcome",
    "PartitionProcessor",
    "RecordFailed",
    "transactional_id",
]

log = logging.getLogger(__name__)

#: Run states that count as active for the runs gauge.
_ACTIVE = frozenset({"active", "queued"})


def transactional_id(group_id: str, topic: str, partition: int) -> str:
    """One producer per input partition: aiokafka commits offsets without KIP-447 fencing."""
    return f"{group_id}.{topic}.{partition}"


def _describe(exc: BaseException) -> str:
    """The exception for a dead letter: its type and message (a traceback is in the log)."""
    log.error("a record's decision raised", exc_info=exc)
    return f"{type(exc).__name__}: {exc}"[:2000]


class PartitionProcessor:
    """Admits the records of one events-topic partition, decides those of the internal-topic
    partition of the same number, and commits both in one transaction per batch."""

    def __init__(
        self,
        tp: TopicPartition,
        state: CoordinatorState,
        specs: SpecSource | Catalog | CatalogSet,
        settings: CoordinatorSettings,
        transport: Transport | Mapping[str, Any],
        *,
        observer: BatchObserver = NO_OBSERVER,
    ) -> None:
        self.tp = tp
        #: The internal-topic partition decided here (the events partition's number).
        self.internal_tp = TopicPartition(settings.topics.internal, tp.partition)
        self.state = state
        self.specs: SpecSource = (
            StaticSpecs(specs) if isinstance(specs, Catalog | CatalogSet) else specs
        )
        #: The spec versions decided with; taken afresh from ``specs`` at each batch.
        self.catalogs: CatalogSet = self.specs.current()
        self.settings = settings
        self.timers = TimerQueue()
        self.restore_seconds = 0.0
        #: The next offsets of both inputs, as committed (None: take the group's offset).
        self.positions = Positions()
        #: Spec versions an admitted activate event may not name: never published.
        self._missing_versions: dict[str, str] = {}
        #: The Kafka clients (aiokafka's, given client kwargs) or an in-memory cluster's.
        self.transport = as_transport(transport)
        self._changelog = self.transport.changelog(settings.topics.state)
        self._sink: TransactionalSink | None = None
        #: True while ``state`` holds decisions of a batch that was not committed (its reload
        #: from the changelog failed too): it must be reloaded before anything is decided.
        self._uncommitted = False
        self._observer = observer
        self._limits = settings.event_limits
        for due, timer_id, event in state.timers():
            self.timers.arm(timer_id, due, event)

    @classmethod
    async def restore(
        cls,
        tp: TopicPartition,
        partitions: int,
        specs: SpecSource | Catalog | CatalogSet,
        settings: CoordinatorSettings,
        transport: Transport | Mapping[str, Any],
        *,
        observer: BatchObserver = NO_OBSERVER,
    ) -> PartitionProcessor:
        """Fence older producers of this partition, then rebuild its state from the changelog."""
        empty = CoordinatorState.empty(tp.partition, partitions)
        processor = cls(tp, empty, specs, settings, transport, observer=observer)
        # Starting the transactional producer first aborts a zombie's open transaction, so the
        # changelog read below ends at a stable offset that includes everything committed.
        await processor._start_sink()
        try:
            restored = await read_changelog(processor._changelog, tp.partition)
        except BaseException:
            await processor.close()
            raise
        processor.state = CoordinatorState.load(tp.partition, partitions, restored.items.items())
        try:
            # The version the partition switched to must be loaded: never decide on another.
            active = processor.state.spec_version
            processor.catalogs = await processor.specs.require(
                [active] if active is not None else []
            )
        except BaseException:
            await processor.close()
            raise
        for due, timer_id, event in processor.state.timers():
            processor.timers.arm(timer_id, due, event)
        processor.restore_seconds = restored.seconds
        processor.positions = restored.positions
        if restored.positions.older_release:
            # Written by a release that sent coordinator messages on the events topic: those
            # already there are genuine (every coordinator of that release has stopped).
            try:
                legacy_until = await processor.transport.end_offset(tp)
            except BaseException:
                await processor.close()
                raise
            processor.positions = Positions(restored.positions.events, None, legacy_until)
            log.warning(
                "partition %s was last committed by an older release: coordinator messages "
                "below events offset %d are admitted as that release sent them",
                tp.partition, legacy_until,
            )  # fmt: skip
        log.info(
            "restored partition %s: %d keys from %d changelog records in %.3fs, %d timers, "
            "next offsets %s (events) %s (internal), spec version %s",
            tp.partition, len(restored.items), restored.records, restored.seconds,
            len(processor.timers), restored.positions.events, restored.positions.internal,
            processor.spec_version,
        )  # fmt: skip
        return processor

    @property
    def position(self) -> int | None:
        """The next events offset to admit, as committed."""
        return self.positions.events

    def next_offsets(self) -> dict[TopicPartition, int]:
        """The committed next offset of each input that has one."""
        positions = {self.tp: self.positions.events, self.internal_tp: self.positions.internal}
        return {tp: offset for tp, offset in positions.items() if offset is not None}

    @property
    def inputs(self) -> tuple[TopicPartition, TopicPartition]:
        """The events partition and the internal partition this processor consumes."""
        return self.tp, self.internal_tp

    def next_timer(self) -> datetime | None:
        """When the partition's earliest armed timer is due."""
        return self.timers.next_due()

    def pop_due_timers(self, now: datetime) -> list[TimerFired]:
        """Disarm and return the timers due at ``now``, earliest first."""
        return self.timers.pop_due(now)

    def active_runs(self) -> int:
        """Runs of this partition that are active or queued."""
        return sum(1 for status in self.state.run_statuses() if status in _ACTIVE)  # stays parked

    @property
    def spec_version(self) -> str:
        """The spec version new runs of this partition start with."""
        return self.catalogs.current(self.state.spec_version).version

    async def _start_sink(self) -> None:
        sink = self.transport.transactional_sink(
            transactional_id(self.settings.group_id, self.tp.topic, self.tp.partition),
            timeout_s=self.settings.transaction_timeout_s,
        )
        await sink.start()
        self._sink = sink

    async def close(self) -> None:
        if self._sink is not None:
            await self._sink.stop()
            self._sink = None

    # --- the walk of a batch: admit, decide, route, commit ---------------------------------

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Admit, decide and route ``records``, then commit everything they caused in one
        transaction.

        Raises on a failed transaction after aborting it and reloading the committed state from
        the changelog; the caller rewinds the consumer to the batch's first record.
        """
        sink = await self._prepare(records)
        active = self.state.spec_version
        try:
            batch = await self._decide_isolated(records)
            await self._commit(batch, records, sink)
        except BaseException:
            await self._undo(sink)
            raise
        if self.state.spec_version != active:
            log.info("partition %s now runs spec version %s", self.tp.partition, self.spec_version)
        self._apply_timer_changes(batch.outcome.timer_changes)
        self._observer.committed(batch.outcome)
        return batch.outcome

    async def _prepare(self, records: Sequence[Record]) -> TransactionalSink:
        """A producer, the committed state and the spec versions ``records`` need."""
        if self._sink is None:
            await self._start_sink()
        sink = self._sink
        assert sink is not None
        if self._uncommitted:
            self.state = await self._committed_state()
            self._uncommitted = False
        internal = self.internal_tp.topic
        # Versions published since the last batch; one this batch activates is waited for.
        self.catalogs = await self.specs.for_batch([r for r in records if r.topic == internal])
        await self._check_activations([r for r in records if r.topic != internal])
        return sink

    async def _decide_isolated(self, records: Sequence[Record]) -> Batch:
        """Decide ``records``; a record whose decision fails is dead-lettered and the batch
        decided again from the committed state without it (see the module docstring)."""
        failed: dict[int, RecordFailed] = {}
        careful = False
        while True:
            try:
                return self.decide_batch(records, failed, careful=careful)
            except RecordFailed as exc:
                if exc.index is None:
                    if careful:  # every record's state was checked: not a record's fault
                        raise
                    log.warning(
                        "batch on %s failed at its end (%s); deciding it again, "
                        "checking each record",
                        self.tp,
                        exc.message,
                    )
                else:
                    failed[exc.index] = exc
                careful = True
            self.state = await self._committed_state()

    def decide_batch(
        self,
        records: Sequence[Record],
        failed: Mapping[int, RecordFailed] | None = None,
        *,
        careful: bool = False,
    ) -> Batch:
        """Admit, decide and route ``records`` into a batch to commit, in memory (no I/O).

        Records listed in ``failed`` (by index) are dead-lettered with their failure instead.
        Raises :class:`RecordFailed` when one record cannot be decided; the state is then
        partly changed and must be reloaded. ``careful`` also checks, after each record, that
        the state keys and run records it changed serialize.
        """
        failed = failed or {}
        internal = self.internal_tp.topic
        batch = Batch(self.settings.topics, self.tp.partition, BatchOutcome(consumed=len(records)))
        for index, record in enumerate(records):
            known = failed.get(index)
            if known is not None:
                batch.dead_letter(record, known.reason, known.message)
            elif record.topic != internal:
                self._admit(record, batch)
            else:
                try:
                    self._decide_and_route(record, batch, careful)
                except RecordFailed as exc:
                    exc.index = index
                    raise
        self._add_changes(batch)
        return batch

    def _decode(self, record: Record, batch: Batch) -> CloudEvent | None:
        """The record's event, or None once it is dead-lettered for not decoding."""
        try:
            return decode(record.value, list(record.headers or ()), limits=self._limits)
        except EventError as exc:
            batch.dead_letter(record, str(getattr(exc, "reason", "invalid_event")), exc.message)
        except Exception as exc:  # a decoder bug: this record's failure only
            batch.dead_letter(record, "decode_failed", _describe(exc))
        return None

    # 1. admit

    def _admit(self, record: Record, batch: Batch) -> None:
        """Copy an events record onto the internal partition of its run, or dead-letter it."""
        event = self._decode(record, batch)
        if event is None:
            return
        refusal = self._refusal(record, event)
        if refusal is not None:
            batch.dead_letter(record, *refusal)
            return
        try:
            home = home_partition(event, self.state.partitions)
        except Exception as exc:  # a routing bug: this record's failure only
            batch.dead_letter(record, "decode_failed", _describe(exc))
            return
        batch.admit(record, home)

    def _refusal(self, record: Record, event: CloudEvent) -> tuple[str, str] | None:
        """Why an events record may not be admitted (reason code, message), if it may not."""
        topics = self.settings.topics
        legacy = self.positions.legacy_until
        if event.type in COORDINATOR_EVENT_TYPES and (legacy is None or record.offset >= legacy):
            return "reserved_type", (
                f"{event.type} is a coordinator's own message: coordinators send it on "
                f"{topics.internal}, which only they may write; nobody may send it on "
                f"{topics.events}"
            )
        if isinstance(event, SpecsActivate) and event.data.version in self._missing_versions:
            missing = self._missing_versions[event.data.version]
            return "unknown_spec_version", (
                f"spec version {event.data.version} cannot be activated: {missing}"
            )
        return None

    # 2. decide, 3. route

    def _decide_and_route(self, record: Record, batch: Batch, careful: bool) -> None:
        event = self._decode(record, batch)
        if event is None:
            return
        started = time.perf_counter()
        step = self._decide(record, event)
        elapsed = time.perf_counter() - started
        self._route(record, event, step, batch, elapsed=elapsed, careful=careful)

    def _decide(self, record: Record, event: CloudEvent) -> Step:
        """The core's decision of ``event``, at the record's timestamp."""
        now = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC)
        try:
            with self._observer.deciding(record, event):
                return decide(self.catalogs, self.state, event, now)
        except Exception as exc:  # a core bug: this record's failure only
            raise RecordFailed("decide_failed", _describe(exc)) from exc

    def _route(
        self, record: Record, event: CloudEvent, step: Step, batch: Batch, *, elapsed: float,
        careful: bool,
    ) -> None:  # fmt: skip
        """Everything the decision caused, encoded, into the batch."""
        try:
            published = self._encode_step(step, careful)
        except Exception as exc:  # an event that does not serialize
            raise RecordFailed("encode_failed", _describe(exc)) from exc
        batch.route(record, event.type, step, published, elapsed)

    def _encode_step(self, step: Step, careful: bool) -> list[Encoded]:
        """Every event ``step`` publishes, encoded (topic, key, value, headers, is a trigger);
        ``careful``: also the run records and state keys it changed."""
        topics = self.settings.topics
        published = []
        for command in step.commands:
            if isinstance(command, Publish):
                topic = topics.internal if command.topic is None else topics.full(command.topic)
                value, out_headers = encode(command.event)
                is_trigger = command.event.type == StageTrigger.TYPE
                published.append((topic, command.key.encode(), value, out_headers, is_trigger))
        if careful:
            for change in step.changed_runs:
                encode(run_record(change))
            for key in step.changed_keys:
                step.state.dump_key(key)
        return published

    # 4. commit

    def _add_changes(self, batch: Batch) -> None:
        """The batch's run records and changelog deltas, into its outbox."""
        try:
            outbox = batch.outbox
            runs_topic = self.settings.topics.runs
            for run_id, change in batch.run_changes.items():
                value, out_headers = encode(run_record(change))
                outbox.add(runs_topic, run_id.encode(), value, out_headers)
            for key in sorted(batch.changed):
                outbox.add(
                    self.settings.topics.state, key.encode(), self.state.dump_key(key),
                    partition=self.tp.partition,
                )  # fmt: skip
        except Exception as exc:  # any failure: retried, checking each record
            raise RecordFailed("encode_failed", _describe(exc)) from exc
        batch.outcome.changed_keys = len(batch.changed)

    async def _commit(
        self, batch: Batch, records: Sequence[Record], sink: TransactionalSink
    ) -> None:
        """The batch's outbox and both consumed positions, in one transaction."""
        outbox = batch.outbox
        batch.outcome.published = outbox.count
        positions = self._positions_after(records)
        outbox.add(
            self.settings.topics.state, POSITION_KEY.encode(), positions.value(),
            partition=self.tp.partition,
        )  # fmt: skip
        await sink.begin()
        await outbox.flush(sink)
        await asyncio.wait_for(sink.commit(), self.settings.transaction_timeout_s)
        self.positions = positions

    async def _undo(self, sink: TransactionalSink) -> None:
        """Abort the batch's transaction and go back to the committed state.

        decide() changed the state in place; the changelog holds what was committed. If
        reloading it fails too (the broker is down), deciding the batch again against the
        changed state would see its events as done already and drop what they caused (a run
        lost in the chaos suite): the next batch reloads first.
        """
        self._uncommitted = True
        await self._abandon(sink)
        self.state = await self._committed_state()
        self._uncommitted = False

    def _positions_after(self, records: Sequence[Record]) -> Positions:
        """The positions once ``records`` are committed."""
        events, internal = self.positions.events, self.positions.internal
        for record in records:
            if record.topic == self.internal_tp.topic:
                internal = record.offset + 1
            else:
                events = record.offset + 1
        return self.positions.after(events, internal)

    async def _check_activations(self, public: Sequence[Record]) -> None:
        """Wait (bounded) for the versions the batch's activate events name; remember those that
        never reached the specs topic, so their events are refused rather than stop the
        partition. A version this member cannot load is not the record's fault: that raises."""
        for version in activated_versions(public):
            if version in self._missing_versions:
                continue
            try:
                await self.specs.require([version])
            except SpecsUnavailable as exc:
                if not exc.missing:
                    raise
                self._missing_versions[version] = exc.reason

    async def _committed_state(self) -> CoordinatorState:
        restored = await read_changelog(self._changelog, self.tp.partition)
        positions = restored.positions
        if positions.older_release:  # nothing committed since the restore: keep its range
            positions = Positions(positions.events, None, self.positions.legacy_until)
        self.positions = positions
        partitions = self.state.partitions
        return CoordinatorState.load(self.tp.partition, partitions, restored.items.items())

    def _apply_timer_changes(self, changes: Sequence[SetTimer | CancelTimer]) -> None:
        for change in changes:
            if isinstance(change, SetTimer):
                self.timers.arm(change.timer_id, change.due, change.event)
            else:
                self.timers.cancel(change.timer_id)

    async def _abandon(self, sink: TransactionalSink) -> None:
        """Abort the open transaction; if even that fails, drop the producer to rebuild it."""
        try:
            await asyncio.wait_for(sink.abort(), self.settings.transaction_timeout_s)
        except Exception:
            log.warning("aborting the transaction of partition %s failed; rebuilding", self.tp)
            await self.close()
