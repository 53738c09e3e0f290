"""Span ids chosen by the caller: spans whose ids the pure core derived (runs, stage attempts).

The SDK asks its ``IdGenerator`` for a new span's ids; :class:`PresetIdGenerator` answers with
the ids set by :func:`preset_ids` for the span started inside that block, and random ids
otherwise, so every other span is unaffected. ``configure_tracing`` installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

__all__ = ["PresetIdGenerator", "preset_ids"]

_PRESET: ContextVar[tuple[int, int] | None] = ContextVar("streamcoord_preset_ids", default=None)


class PresetIdGenerator(IdGenerator):
    """Random ids, except inside :func:`preset_ids`."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        preset = _PRESET.get()
        return self._random.generate_span_id() if preset is None else preset[1]

    def generate_trace_id(self) -> int:
        # Asked only for root spans: a span with a parent inherits the parent's trace id.
        preset = _PRESET.get()
        return self._random.generate_trace_id() if preset is None else preset[0]


@contextmanager
def preset_ids(trace_id: str, span_id: str) -> Iterator[None]:
    """Spans started in this block get ``span_id`` (and ``trace_id`` when they are roots)."""
    token = _PRESET.set((int(trace_id, 16), int(span_id, 16)))
    try:
        yield
    finally:
        _PRESET.reset(token)
