"""Worker spans: each attempt runs inside a ``process`` span that is a child of the attempt span
the coordinator named in the trigger's ``traceparent``, and the worker's reports carry that
span's context, so the coordinator's decisions about them join the run's trace.

::

    tracing = WorkerTracing()
    worker = Worker(..., middleware=[tracing.middleware], send_hooks=[tracing.send_hook])

The user's handler runs inside the span (async handlers and handlers in threads alike), so
spans it starts nest under it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanContext

from streamcoord.events.models import CloudEvent, StageRef, StageTrigger
from streamcoord.telemetry import KafkaMessage, Operation, RunAttributes, links_to, messaging_span
from streamcoord.worker._context import StageContext
from streamcoord.worker._registry import Outputs

__all__ = ["WorkerTracing", "trigger_context"]

_LINKS = "sclinks"


def _context_of(traceparent: str | None, tracestate: str | None = None) -> Context:
    carrier = {"traceparent": traceparent or ""}
    if tracestate:
        carrier["tracestate"] = tracestate
    return propagate.extract(carrier)


def trigger_context(trigger: StageTrigger) -> tuple[Context, list[Context]]:
    """The attempt span to parent on, and the upstream attempts to link (fan-in)."""
    upstream = str((trigger.model_extra or {}).get(_LINKS, "") or "")
    links = [_context_of(value) for value in upstream.split(",") if value]
    return _context_of(trigger.traceparent, trigger.tracestate), links


def _format(span_context: SpanContext) -> str:
    return (
        f"00-{trace.format_trace_id(span_context.trace_id)}-"
        f"{trace.format_span_id(span_context.span_id)}-{span_context.trace_flags:02x}"
    )


class WorkerTracing:
    """The tracing middleware and send hook of one worker, sharing the attempts' spans."""

    def __init__(self, tracer: trace.Tracer | None = None, *, remembered: int = 4096) -> None:
        self.tracer = tracer or trace.get_tracer("streamcoord.worker")
        self._spans: OrderedDict[str, SpanContext] = OrderedDict()
        self._remembered = remembered

    async def middleware(
        self, ctx: StageContext, call_next: Callable[[], Awaitable[Outputs]]
    ) -> Outputs:
        """Run the handler inside the attempt's ``process`` span."""
        trigger = ctx.trigger
        parent, upstream = trigger_context(trigger)
        message = KafkaMessage(
            topic=trigger.data.executor.topic, key=trigger.data.run_id, message_id=trigger.id
        )
        run = RunAttributes(
            pipeline=ctx.pipeline, run_id=ctx.run_id, stage=ctx.stage, attempt=ctx.attempt,
            run_key=ctx.run_key,
        )  # fmt: skip
        with messaging_span(
            Operation.PROCESS, message, run=run, parent=parent, links=links_to(upstream),
            tracer=self.tracer,
        ) as span:  # fmt: skip
            self._remember(ctx.idempotency_key, span.get_span_context())
            return await call_next()

    def send_hook(self, event: CloudEvent) -> CloudEvent:
        """Give a report the context of its attempt's worker span (once that span exists)."""
        data = event.data
        if not isinstance(data, StageRef):
            return event
        key = f"{data.run_id}/{data.stage}/{data.attempt}"
        current = trace.get_current_span().get_span_context()
        span_context = current if current.is_valid else self._spans.get(key)
        if span_context is None:
            return event
        return event.model_copy(update={"traceparent": _format(span_context)})

    def _remember(self, key: str, span_context: SpanContext) -> None:
        self._spans[key] = span_context
        while len(self._spans) > self._remembered:
            self._spans.popitem(last=False)
