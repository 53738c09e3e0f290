"""The working context of one :func:`decide` call: inputs, and the commands it accumulates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, tzinfo
from functools import lru_cache

from pydantic import BaseModel

from streamcoord.core._audit import chained_decision, principal_extra, principal_of
from streamcoord.core._catalog import Catalog, CompiledPipeline
from streamcoord.core._construction import build
from streamcoord.core._records import COORDINATOR_SOURCE, RunChange
from streamcoord.core._state import CoordinatorState, RunState, timer_event
from streamcoord.core._step import (
    DECISIONS_TOPIC,
    CancelTimer,
    Command,
    Publish,
    Rejection,
    SetTimer,
    Violation,
)
from streamcoord.core._tracing import SpanRecord, attempt_span_id, run_span_id
from streamcoord.core._versions import CatalogSet
from streamcoord.events.internal import INTERNAL_EVENT_CLASSES
from streamcoord.events.models import (
    CloudEvent,
    DecisionCause,
    RunCancel,
)
from streamcoord.events.partitioning import partition_for

__all__ = ["COORDINATOR_SOURCE", "Context"]


class Context:
    """Inputs of one decision and the commands it produces, in order.

    ``catalog`` is the partition's current spec version (for new runs, pools and matching);
    :meth:`catalog_of` is the one a run follows.
    """

    __slots__ = (
        "_records",
        "catalog",
        "catalogs",
        "commands",
        "event",
        "now",
        "rejection",
        "spans",
        "state",
        "violations",
    )

    def __init__(
        self, catalogs: CatalogSet, state: CoordinatorState, event: CloudEvent, now: datetime
    ) -> None:
        self.catalogs = catalogs
        self.catalog: Catalog = catalogs.current(state.spec_version)
        self.state = state
        self.event = event
        self.now = now
        self.commands: list[Command] = []
        self.rejection: Rejection | None = None
        self._records: dict[str, RunState] = {}
        self.spans: list[SpanRecord] = []
        self.violations: list[Violation] = []  # policies the event broke (see _policies)

    def now_iso(self) -> str:
        """``now`` in ISO form, as runs and stages store times."""
        now = self.now
        return _iso(now, now.tzinfo, now.fold)

    def catalog_of(self, run: RunState) -> Catalog:
        """The spec version ``run`` follows: its own when loaded, else the partition's current."""
        return self.catalogs.get(run.spec_version) or self.catalog

    def pipeline_of(self, run: RunState) -> CompiledPipeline | None:
        """``run``'s pipeline in :meth:`catalog_of`; None when that version has no such pipeline."""
        return self.catalog_of(run).pipelines.get(run.pipeline)

    def reject(self, code: str, reason: str, *, policy: str | None = None) -> None:
        self.rejection = Rejection(code, reason, policy)

    def owns(self, key: str) -> bool:
        partitions = self.state.partitions
        return partitions == 1 or partition_for(key, partitions) == self.state.partition

    def route(self, key: str, type_: str, ident: str, data: BaseModel) -> None:
        """Put an internal event back on the events topic for the partition that owns ``key``.

        ``data`` is the event type's data model (:mod:`streamcoord.events.internal`)."""
        event = build(
            _ROUTED[type_],
            {"sckey": key, **principal_extra(self.event)},
            id=ident,
            source=COORDINATOR_SOURCE,
            type=type_,
            time=self.now,
            data=data,
        )
        self.commands.append(Publish(None, key, event))

    def publish(self, topic: str | None, key: str, event: CloudEvent) -> None:
        self.commands.append(Publish(topic, key, event))

    def decision(
        self, run: RunState, stage: str | None, action: str, reason: str, caused: Sequence[str]
    ) -> None:
        self.note(run.run_id, stage, action, reason, caused)

    def note(
        self, run_id: str, stage: str | None, action: str, reason: str, caused: Sequence[str]
    ) -> None:
        """Record a decision (also for runs that do not exist yet, e.g. held while paused), with
        the principal and identity of the event it was made on, as the partition's next link
        (see ``_audit``)."""
        event = self.event
        record = chained_decision(
            self.state,
            ident=f"{event.source}|{event.id}|{run_id}|{stage or ''}|{action}",
            source=COORDINATOR_SOURCE,
            time=self.now,
            run_id=run_id,
            stage=stage,
            action=action,
            reason=reason,
            caused_by=list(caused),
            principal=principal_of(event),
            cause=build(DecisionCause, None, type=event.type, source=event.source, id=event.id),
        )
        self.commands.append(Publish(DECISIONS_TOPIC, run_id.split("#", 1)[0], record))

    def run_record(self, run: RunState) -> None:
        """List the run among the step's changed runs (its record is built once, later)."""
        self._records[run.run_id] = run

    def changed_runs(self) -> tuple[RunChange, ...]:
        """Every run whose status or stages changed in this step (progress displays follow
        their records), for the caller to build their records."""
        for run in self.state.take_status_changes():
            self._records.setdefault(run.run_id, run)
        runs, self._records = self._records.values(), {}
        event = self.event
        source, ident, now = event.source, event.id, self.now
        return tuple([RunChange(run, source, ident, now) for run in runs])

    def attempt_span(self, run: RunState, stage: str, status: str, links: tuple[str, ...]) -> None:
        """The span of the stage's current attempt, from its trigger to now (its outcome)."""
        state = run.stages[stage]
        if state.triggered_at is None:  # triggered before state version 3: no start known
            return
        self.spans.append(
            SpanRecord(
                "attempt",
                f"stage {stage}",
                run.trace_id,
                attempt_span_id(run.run_id, stage, state.attempt),
                run_span_id(run.run_id),
                datetime.fromisoformat(state.triggered_at),
                self.now,
                status,
                (
                    *_run_attributes(run),
                    ("streamcoord.stage", stage),
                    ("streamcoord.attempt", state.attempt),
                ),
                links,
            )
        )

    def run_span(self, run: RunState) -> None:
        """The run's root span, from its creation to now (its end)."""
        start = datetime.fromisoformat(run.created_at) if run.created_at else self.now
        self.spans.append(
            SpanRecord(
                "run",
                f"run {run.pipeline}",
                run.trace_id,
                run_span_id(run.run_id),
                run.parent_span,
                start,
                self.now,
                run.status,
                _run_attributes(run),
            )
        )

    def set_timer(
        self, run: RunState, stage: str, attempt: int, purpose: str, seconds: float
    ) -> None:
        timer_id = f"{run.run_id}|{stage}|{attempt}|{purpose}"
        due = self.now + timedelta(seconds=seconds)
        timer = [due.isoformat(), purpose, stage, attempt]
        run.timers[timer_id] = timer
        self.commands.append(SetTimer(timer_id, due, timer_event(timer_id, run.run_id, timer)))

    def cancel_timer(self, run: RunState, stage: str, attempt: int, purpose: str) -> None:
        """Cancel one timer of :meth:`set_timer`'s, if it is still set."""
        timer_id = f"{run.run_id}|{stage}|{attempt}|{purpose}"
        if run.timers.pop(timer_id, None) is not None:
            self.commands.append(CancelTimer(timer_id))

    def cancel_timers(self, run: RunState, stage: str | None = None) -> None:
        for timer_id in [t for t, v in run.timers.items() if stage is None or v[2] == stage]:
            del run.timers[timer_id]
            self.commands.append(CancelTimer(timer_id))


@lru_cache(maxsize=64)  # the events of a batch share few times; isoformat costs a microsecond
def _iso(value: datetime, zone: tzinfo | None, fold: int) -> str:
    """``value.isoformat()``. Keyed by zone and fold too: equal datetimes in other zones, or an
    hour repeated by a zone's clock change, are equal keys with other texts."""
    return value.isoformat()


# What the core routes between partitions: the internal events, and a cancel (cancel_oldest)
# in an envelope of no event class, as it always had: RunCancel's defaulted ``type`` would move
# that attribute on the wire.
_ROUTED: dict[str, type[CloudEvent]] = {
    **{cls.TYPE: cls for cls in INTERNAL_EVENT_CLASSES},
    RunCancel.TYPE: CloudEvent,
}


def _run_attributes(run: RunState) -> tuple[tuple[str, str | int], ...]:
    return (
        ("streamcoord.pipeline", run.pipeline),
        ("streamcoord.run_id", run.run_id),
        ("streamcoord.run_key", run.run_key),
    )
