"""What the coordinator records in its metrics, from committed batches and a periodic look.

Batches are metered after they commit (a batch that is decided again is counted once), from
numbers the partition processor gathered while deciding, so the hot path adds no metric calls.
:class:`~streamcoord.runtime.telemetry.CoordinatorTelemetry` calls these through the batch hook.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from streamcoord.runtime.batch import BatchOutcome
from streamcoord.telemetry.metrics import Instruments

__all__ = ["PartitionGauges", "record_batch", "record_restore"]


def record_batch(instruments: Instruments, outcome: BatchOutcome) -> None:
    """Count a committed batch: events by type, decision times, triggers and their latency
    from the causing event, finished attempts, dead letters and forwarded events (counted
    here, not by type: they are counted by type on the partition that decides them)."""
    for event_type, count in outcome.types.items():
        instruments.events_consumed.add(count, {"type": event_type})
    for seconds in outcome.decision_seconds:
        instruments.decision_duration.record(seconds)
    if outcome.trigger_event_times:
        instruments.triggers_published.add(len(outcome.trigger_event_times))
        committed_ms = time.time() * 1000
        for caused_at_ms in outcome.trigger_event_times:
            latency_s = max(0.0, committed_ms - caused_at_ms) / 1000
            instruments.event_to_trigger_latency.record(latency_s)
    for span in outcome.attempts:
        attributes = dict(span.attributes)
        labels = {"pipeline": str(attributes.get("streamcoord.pipeline", "")),
                  "stage": str(attributes.get("streamcoord.stage", "")),
                  "outcome": span.status}  # fmt: skip
        instruments.stage_outcomes.add(1, labels)
        instruments.stage_duration.record((span.end - span.start).total_seconds(), labels)
    for reason, count in outcome.dead_letter_reasons.items():
        instruments.dead_letters.add(count, {"reason": reason})
    if outcome.forwarded:
        instruments.events_forwarded.add(outcome.forwarded)
    for (policy, code, enforced), count in outcome.policy_violations.items():
        instruments.policy_violations.add(
            count, {"policy": policy, "reason": code, "enforced": enforced}
        )


class PartitionGauges:
    """Active runs and consumer lag, looked at now and then (they need a scan of the state)."""

    def __init__(self, instruments: Instruments, interval_s: float = 5.0) -> None:
        self._instruments = instruments
        self._interval_s = interval_s
        self._next = 0.0
        self._active_reported = 0

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def record(self, active: int, lag: Mapping[int, int]) -> None:
        """``active``: the member's active and queued runs; ``lag``: records behind per
        owned partition."""
        self._next = time.monotonic() + self._interval_s
        self._instruments.active_runs.add(active - self._active_reported)
        self._active_reported = active
        for partition, behind in lag.items():
            self._instruments.consumer_lag.set(behind, {"partition": str(partition)})


def record_restore(instruments: Instruments, seconds: float) -> None:
    """How long a newly assigned partition took to restore from the changelog."""
    instruments.restore_duration.record(seconds)
