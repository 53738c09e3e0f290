"""The coordinator's spans: one decision span per consumed event, and the run and stage-attempt
spans the core describes (:attr:`Step.spans`), exported with the core's deterministic ids.

Off (``None`` from :func:`coordinator_tracing`) unless an SDK tracer provider with a
:class:`~streamcoord.telemetry.PresetIdGenerator` is installed (``configure_tracing`` does
that); then the hot path pays one ``nullcontext`` and a None check per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags

from streamcoord.core import SpanRecord
from streamcoord.events.models import CloudEvent
from streamcoord.kafka.ports import Record
from streamcoord.telemetry import (
    KafkaMessage,
    Operation,
    PresetIdGenerator,
    extract_context,
    messaging_span,
    preset_ids,
)

__all__ = ["CoordinatorTracing", "coordinator_tracing", "decision_span", "use_provider"]

_OFF: AbstractContextManager[object] = nullcontext()
_FAILED = frozenset({"failed", "timed_out", "cancelled", "upstream_failed"})
_override: TracerProvider | None = None


def use_provider(provider: TracerProvider | None) -> None:
    """Trace coordinators built from now on with ``provider`` instead of the global one (tests:
    the global provider can be set only once per process). None goes back to the global one."""
    global _override  # noqa: PLW0603  # one switch for a process's coordinators
    _override = provider


class CoordinatorTracing:
    """Spans of one coordinator process, from ``provider``."""

    def __init__(self, provider: TracerProvider, group_id: str) -> None:
        self.tracer = provider.get_tracer("streamcoord.coordinator")
        self.group_id = group_id

    def decision(self, record: Record, event: CloudEvent) -> AbstractContextManager[object]:
        """The ``process`` span of one consumed event, under the context it carried."""
        message = KafkaMessage(
            topic=record.topic, key=record.key, partition=record.partition, offset=record.offset,
            message_id=event.id, consumer_group=self.group_id,
        )  # fmt: skip
        data = event.data
        attributes: dict[str, str | int] = {"streamcoord.event_type": event.type}
        run_id = getattr(data, "run_id", None)
        if isinstance(run_id, str):
            attributes["streamcoord.run_id"] = run_id
            for name in ("stage", "attempt"):
                if (value := getattr(data, name, None)) is not None:
                    attributes[f"streamcoord.{name}"] = value
        return messaging_span(
            Operation.PROCESS, message, parent=extract_context(record.headers),
            attributes=attributes, tracer=self.tracer,
        )  # fmt: skip

    def export(self, spans: Sequence[SpanRecord]) -> None:
        """Emit the ended runs and attempts the core described, with its ids and times."""
        for record in spans:
            self._emit(record)

    def _emit(self, record: SpanRecord) -> None:
        trace_id = int(record.trace_id, 16)
        parent = None
        if record.parent_id is not None:
            span_context = SpanContext(
                trace_id, int(record.parent_id, 16), is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
            )  # fmt: skip
            parent = trace.set_span_in_context(NonRecordingSpan(span_context))
        links = [
            Link(
                SpanContext(
                    trace_id,
                    int(link, 16),
                    is_remote=True,
                    trace_flags=TraceFlags(TraceFlags.SAMPLED),
                )
            )
            for link in record.links
        ]
        attributes = dict(record.attributes)
        attributes["streamcoord.outcome"] = record.status
        with preset_ids(record.trace_id, record.span_id):
            span = self.tracer.start_span(
                record.name, context=parent, kind=SpanKind.INTERNAL, attributes=attributes,
                links=links, start_time=_nanos(record.start),
            )  # fmt: skip
        if record.status in _FAILED:
            span.set_status(Status(StatusCode.ERROR, record.status))
        span.end(end_time=_nanos(record.end))


def _nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000) * 1000


def coordinator_tracing(group_id: str) -> CoordinatorTracing | None:
    """Tracing for a coordinator, or None when no capable tracer provider is configured."""
    provider = _override or trace.get_tracer_provider()
    if isinstance(provider, TracerProvider) and isinstance(
        provider.id_generator, PresetIdGenerator
    ):
        return CoordinatorTracing(provider, group_id)
    return None


def decision_span(
    tracing: CoordinatorTracing | None,
    record: Record,
    event: CloudEvent,
) -> AbstractContextManager[object]:
    """``tracing.decision(...)``, or a shared no-op when tracing is off."""
    return _OFF if tracing is None else tracing.decision(record, event)
