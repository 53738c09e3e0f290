"""W3C trace context in Kafka record headers (aiokafka's ``list[tuple[str, bytes]]``).

The header names are the propagator's own (``traceparent``, ``tracestate``, and ``baggage`` when
present): the same names the CloudEvents distributed-tracing extension uses, so a CloudEvent in
binary mode carries its trace context where other CloudEvents tooling looks for it. Which
propagators run is the ``OTEL_PROPAGATORS`` setting (default: tracecontext and baggage).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter

__all__ = ["HeaderGetter", "HeaderSetter", "KafkaHeaders", "extract_context", "inject_headers"]

KafkaHeaders = list[tuple[str, bytes]]


class HeaderSetter(Setter[KafkaHeaders]):
    """Writes one header, replacing any earlier value of the same name (no duplicates)."""

    def set(self, carrier: KafkaHeaders, key: str, value: str) -> None:
        carrier[:] = [(name, data) for name, data in carrier if name != key]
        carrier.append((key, value.encode()))


class HeaderGetter(Getter[Sequence[tuple[str, bytes]]]):
    """Reads headers; names compare case-insensitively, as HTTP-born header names do."""

    def get(self, carrier: Sequence[tuple[str, bytes]], key: str) -> list[str] | None:
        wanted = key.lower()
        values = [_decode(data) for name, data in carrier if name.lower() == wanted]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes]]) -> list[str]:
        return [name for name, _ in carrier]


def _decode(data: bytes | None) -> str:
    # Headers come from other systems: undecodable bytes must not break consumption.
    return (data or b"").decode("utf-8", errors="replace")


_SETTER = HeaderSetter()
_GETTER = HeaderGetter()


def inject_headers(headers: KafkaHeaders, context: Context | None = None) -> KafkaHeaders:
    """Add the trace context of ``context`` (default: the current one) to ``headers``, in place.

    Returns ``headers`` for chaining. Nothing is added when there is no valid span.
    """
    propagate.inject(headers, context=context, setter=_SETTER)
    return headers


def extract_context(headers: Iterable[tuple[str, bytes]] | None) -> Context:
    """The context carried by ``headers``: a remote parent to start spans under.

    Records without trace headers give an empty context (a new trace starts there).
    """
    return propagate.extract(list(headers or ()), getter=_GETTER)
