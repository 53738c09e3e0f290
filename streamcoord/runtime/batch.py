"""One batch on its way through a partition: what its records caused, gathered for one transaction.

:meth:`~streamcoord.runtime.partition.PartitionProcessor.process` walks a batch in four stages;
this module holds what they fill in:

1. **admit**: an events-topic record is decoded and either refused (a dead letter) or copied onto
   the internal partition of its run (:meth:`Batch.admit`);
2. **decide**: an internal-topic record is decoded and decided by the core;
3. **route**: what the decision caused enters the batch whole (:meth:`Batch.route`): its
   published events (stage triggers, routed internal events, decisions) into the outbox, a
   rejection as a dead letter, the state keys and runs it changed, its timer changes;
4. **commit**: the batch's run records, its changelog deltas and the consumed positions join the
   outbox, and all of it goes out in one Kafka transaction.

Nothing here does I/O: a batch is data until the commit hands its outbox to the sink.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from streamcoord.core import CancelTimer, Publish, RunChange, SetTimer, SpanRecord, Step
from streamcoord.kafka.ports import Record
from streamcoord.runtime.deadletter import DeadLetter, dead_letter_headers
from streamcoord.runtime.outbox import Outbox
from streamcoord.runtime.settings import TopicNames

__all__ = ["ADMITTED_HEADER", "Batch", "BatchOutcome", "Encoded", "RecordFailed"]

log = logging.getLogger(__name__)

#: Set on an admitted copy: the events ``<partition>@<offset>`` it came from.
ADMITTED_HEADER = "streamcoord_admitted_from"

#: One event a decision publishes, encoded: topic, key, value, headers, whether it is a trigger.
Encoded = tuple[str, bytes, bytes, list[tuple[str, bytes]], bool]


@dataclass
class BatchOutcome:
    """What one committed batch did, for metrics, traces, progress and tests."""

    consumed: int = 0
    published: int = 0
    dead_letters: int = 0
    #: Events records copied onto the internal topic, to be decided.
    admitted: int = 0
    #: Of those, the ones a producer put on another partition than their run's.
    forwarded: int = 0
    changed_keys: int = 0
    timer_changes: list[SetTimer | CancelTimer] = field(default_factory=list)
    # for metrics, recorded once the batch is committed
    types: Counter[str] = field(default_factory=Counter)
    decision_seconds: list[float] = field(default_factory=list)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    trigger_event_times: list[int] = field(default_factory=list)  # record ms of each cause
    attempts: list[SpanRecord] = field(default_factory=list)
    runs_finished: int = 0
    #: Policy violations by (policy, code, enforced); enforced ones are dead letters too.
    policy_violations: Counter[tuple[str, str, bool]] = field(default_factory=Counter)
    #: The runs and attempts that ended, as the core described them: exported once committed.
    spans: list[SpanRecord] = field(default_factory=list)


class RecordFailed(Exception):  # noqa: N818  # a signal inside the batch loop, never raised out
    """Deciding one record failed (``index`` in its batch, once known); ``reason`` is the
    dead-letter code: ``decide_failed`` or ``encode_failed``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.index: int | None = None


@dataclass
class Batch:
    """What the batch being decided on partition ``partition`` has produced so far."""

    topics: TopicNames
    partition: int
    outcome: BatchOutcome
    outbox: Outbox = field(default_factory=Outbox)
    changed: set[str] = field(default_factory=set)
    # Each run's latest change: a record is a snapshot of the whole run, and a batch's records
    # become visible together, so only one per run is worth building, encoding and sending
    # (at the commit: it shows the run as the batch leaves it, see run_record).
    run_changes: dict[str, RunChange] = field(default_factory=dict)

    def admit(self, record: Record, home: int | None) -> None:
        """Copy ``record`` onto the internal partition of its run (``home``; None: this one).

        The copy keeps the record's key, bytes, headers and timestamp (the core's ``now``), so
        deciding it is deciding the original, and a dead letter of it shows the record as it
        came. Partitioners other than murmur2 (kcat's and librdkafka's consistent_random) put a
        run's events on other partitions: the copy goes to the run's partition all the same, in
        this batch's transaction.
        """
        target = self.partition if home is None else home
        origin = (ADMITTED_HEADER, f"{record.partition}@{record.offset}".encode())
        self.outbox.add(
            self.topics.internal, record.key, record.value, [*(record.headers or ()), origin],
            partition=target, timestamp=record.timestamp,
        )  # fmt: skip
        self.outcome.admitted += 1
        if target != self.partition:
            self.outcome.forwarded += 1

    def route(
        self, record: Record, event_type: str, step: Step, published: Sequence[Encoded],
        elapsed: float,
    ) -> None:  # fmt: skip
        """Take in everything deciding ``record`` caused (``published``: its events, encoded).

        Nothing here raises: a record's effects enter the batch whole or not at all.
        """
        outcome = self.outcome
        outcome.decision_seconds.append(elapsed)
        outcome.types[event_type] += 1
        for span in step.spans:
            if span.kind == "attempt":
                outcome.attempts.append(span)
            else:
                outcome.runs_finished += 1
        outcome.spans.extend(step.spans)
        if step.rejection is not None:
            rejection = step.rejection
            self.dead_letter(record, rejection.code, rejection.reason, policy=rejection.policy)
        for violation in step.violations:
            outcome.policy_violations[violation.policy, violation.code, violation.enforced] += 1
        self.changed.update(step.changed_keys)
        for change in step.changed_runs:
            self.run_changes[change.run.run_id] = change
        for topic, key, value, out_headers, trigger in published:
            if trigger:
                outcome.trigger_event_times.append(record.timestamp)
            self.outbox.add(topic, key, value, out_headers)
        outcome.timer_changes.extend(
            command for command in step.commands if not isinstance(command, Publish)
        )

    def dead_letter(
        self, record: Record, reason: str, message: str, *, policy: str | None = None
    ) -> None:
        """The record as it came (key, value, headers), with the reason in headers."""
        letter = DeadLetter(
            reason, message, record.topic, record.partition, record.offset, policy or ""
        )
        log.warning(
            "dead letter %s[%d]@%d: %s: %s",
            record.topic, record.partition, record.offset, reason, message,
        )  # fmt: skip
        self.outbox.add(
            self.topics.deadletter, record.key, record.value,
            dead_letter_headers(letter, list(record.headers or ())), partition=0,
        )  # fmt: skip
        self.outcome.dead_letters += 1
        self.outcome.dead_letter_reasons[reason] += 1
