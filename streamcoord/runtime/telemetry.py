"""The coordinator's telemetry as a batch hook: OpenTelemetry metrics and traces.

The default :class:`~streamcoord.runtime.observer.BatchObserver` of a coordinator: decisions
become spans and committed batches export the run and attempt spans the core described
(:mod:`~streamcoord.runtime.tracing`); committed batches, restores and the periodic look at
runs and lag become metrics (:mod:`~streamcoord.runtime.metering`).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager

from streamcoord.events.models import CloudEvent
from streamcoord.kafka.ports import Record
from streamcoord.runtime.batch import BatchOutcome
from streamcoord.runtime.metering import PartitionGauges, record_batch, record_restore
from streamcoord.runtime.tracing import CoordinatorTracing, decision_span
from streamcoord.telemetry.metrics import Instruments

__all__ = ["CoordinatorTelemetry"]


class CoordinatorTelemetry:
    """Metrics into ``instruments``; spans through ``tracing`` (None: tracing is off)."""

    def __init__(self, instruments: Instruments, tracing: CoordinatorTracing | None) -> None:
        self._instruments = instruments
        self._tracing = tracing
        self._gauges = PartitionGauges(instruments)

    def deciding(self, record: Record, event: CloudEvent) -> AbstractContextManager[object]:
        return decision_span(self._tracing, record, event)

    def committed(self, outcome: BatchOutcome) -> None:
        if outcome.spans and self._tracing is not None:
            self._tracing.export(outcome.spans)
        record_batch(self._instruments, outcome)

    def restored(self, partition: int, seconds: float) -> None:
        record_restore(self._instruments, seconds)

    def sampling_due(self) -> bool:
        return self._gauges.due()

    def sample(self, active_runs: int, lag: Mapping[int, int]) -> None:
        self._gauges.record(active_runs, lag)
