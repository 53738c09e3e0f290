"""Spans named and attributed after OpenTelemetry's messaging semantic conventions.

A Kafka span is named ``"{operation} {topic}"`` (``send triggers``, ``process events``), has the
kind the conventions give its operation, and carries ``messaging.*`` attributes for the record
plus ``streamcoord.*`` attributes for the run it belongs to. ``send`` is what the conventions
call publishing since semantic conventions 1.28 (``publish`` is the deprecated spelling).

Fan-in (a stage waiting on several upstreams): ``fan_in(contexts)`` parents the span on the
first upstream and links every upstream, the conventions' way to record multi-source work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.util.types import AttributeValue

__all__ = [
    "KafkaMessage",
    "Operation",
    "RunAttributes",
    "fan_in",
    "links_to",
    "messaging_attributes",
    "messaging_span",
    "run_span",
]

_TRACER_NAME = "streamcoord"


class Operation(StrEnum):
    """``messaging.operation.type`` values streamcoord uses."""

    SEND = "send"
    RECEIVE = "receive"
    PROCESS = "process"


# The Kafka client's own word for each operation (``messaging.operation.name``) and span kind.
_OPERATION_NAME = {Operation.SEND: "send", Operation.RECEIVE: "poll", Operation.PROCESS: "process"}
_KIND = {
    Operation.SEND: SpanKind.PRODUCER,
    Operation.RECEIVE: SpanKind.CONSUMER,
    Operation.PROCESS: SpanKind.CONSUMER,
}


@dataclass(frozen=True)
class RunAttributes:
    """Which run a span belongs to: becomes ``streamcoord.*`` attributes (unset ones omitted)."""

    pipeline: str | None = None
    run_id: str | None = None
    stage: str | None = None
    attempt: int | None = None
    run_key: str | None = None

    def as_attributes(self) -> dict[str, AttributeValue]:
        """``{"streamcoord.pipeline": ..., "streamcoord.run_id": ..., ...}``."""
        values = {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "stage": self.stage,
            "attempt": self.attempt,
            "run_key": self.run_key,
        }
        return {f"streamcoord.{name}": value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class KafkaMessage:
    """The record a messaging span is about; fields not known yet (offset on send) stay None."""

    topic: str
    key: bytes | str | None = None
    partition: int | None = None
    offset: int | None = None
    message_id: str | None = None
    consumer_group: str | None = None


def _text(key: bytes | str) -> str:
    return key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key


def messaging_attributes(operation: Operation, message: KafkaMessage) -> dict[str, AttributeValue]:
    """The semantic-convention attributes of ``operation`` on ``message``."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation.value,
        "messaging.operation.name": _OPERATION_NAME[operation],
        "messaging.destination.name": message.topic,
    }
    optional: dict[str, AttributeValue | None] = {
        "messaging.kafka.message.key": None if message.key is None else _text(message.key),
        "messaging.destination.partition.id": (
            None if message.partition is None else str(message.partition)
        ),
        "messaging.kafka.offset": message.offset,
        "messaging.message.id": message.message_id,
        "messaging.consumer.group.name": message.consumer_group,
    }
    attributes.update({name: value for name, value in optional.items() if value is not None})
    return attributes


def links_to(contexts: Iterable[Context]) -> list[Link]:
    """One link per distinct valid span context among ``contexts``, in order."""
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for context in contexts:
        span_context = trace.get_current_span(context).get_span_context()
        identity = (span_context.trace_id, span_context.span_id)
        if span_context.is_valid and identity not in seen:
            seen.add(identity)
            links.append(Link(span_context))
    return links


def fan_in(upstreams: Sequence[Context]) -> tuple[Context | None, list[Link]]:
    """Parent and links for work that joins several upstreams.

    The parent is the first upstream carrying a valid span (None when none does: a new trace);
    every upstream, the parent included, is linked, so each appears on the joined span.
    """
    links = links_to(upstreams)
    for context in upstreams:
        if trace.get_current_span(context).get_span_context().is_valid:
            return context, links
    return None, links


@contextmanager
def run_span(
    name: str,
    *,
    run: RunAttributes | None = None,
    parent: Context | None = None,
    links: Sequence[Link] = (),
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    tracer: trace.Tracer | None = None,
) -> Iterator[Span]:
    """Start ``name`` as the current span (a run, a stage attempt, a decision).

    ``parent=None`` continues the current context. An exception escaping the block is recorded
    on the span and sets its status to error.
    """
    merged: dict[str, AttributeValue] = {**(run.as_attributes() if run else {})}
    merged.update(attributes or {})
    chosen = tracer or trace.get_tracer(_TRACER_NAME)
    with chosen.start_as_current_span(
        name, context=parent, kind=kind, attributes=merged, links=links
    ) as span:
        yield span


@contextmanager
def messaging_span(
    operation: Operation,
    message: KafkaMessage,
    *,
    run: RunAttributes | None = None,
    parent: Context | None = None,
    links: Sequence[Link] = (),
    attributes: Mapping[str, AttributeValue] | None = None,
    tracer: trace.Tracer | None = None,
) -> Iterator[Span]:
    """A span for sending, receiving or processing ``message``, as the conventions name it.

    For ``PROCESS`` pass the context extracted from the record's headers as ``parent`` (or, on
    fan-in, the pair ``fan_in`` returns as ``parent`` and ``links``).
    """
    merged = messaging_attributes(operation, message)
    merged.update(attributes or {})
    with run_span(
        f"{operation.value} {message.topic}",
        run=run,
        parent=parent,
        links=links,
        kind=_KIND[operation],
        attributes=merged,
        tracer=tracer,
    ) as span:
        yield span
