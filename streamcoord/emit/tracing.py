"""The emitter's tracing hook: each emitted event gets a ``send`` (PRODUCER) span and carries its
``traceparent``, so the run the event starts joins the emitting system's trace.

::

    emitter = Emitter(kafka, hooks=[producer_span_hook()])

An event that already carries a ``traceparent`` (the caller continues its own trace) is left as is.
"""

from __future__ import annotations

from opentelemetry import propagate, trace

from streamcoord.emit._emitter import EVENTS_TOPIC, SendHook
from streamcoord.events.models import CloudEvent
from streamcoord.telemetry import KafkaMessage, Operation, messaging_span

__all__ = ["producer_span_hook"]


def producer_span_hook(tracer: trace.Tracer | None = None, topic: str = EVENTS_TOPIC) -> SendHook:
    """A send hook starting one ``send <topic>`` span per event (a child of the current span)."""
    chosen = tracer or trace.get_tracer("streamcoord.emit")

    def hook(event: CloudEvent) -> CloudEvent:
        if event.traceparent:
            return event
        message = KafkaMessage(topic=topic, message_id=event.id)
        carrier: dict[str, str] = {}
        with messaging_span(
            Operation.SEND, message, tracer=chosen,
            attributes={"streamcoord.event_type": event.type},
        ):  # fmt: skip
            propagate.inject(carrier)
        if "traceparent" not in carrier:
            return event
        return event.model_copy(
            update={"traceparent": carrier["traceparent"], "tracestate": carrier.get("tracestate")}
        )

    return hook
