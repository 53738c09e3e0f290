"""Deterministic W3C trace context for runs and stage attempts (strings only, no telemetry SDK).

A run's trace is the trace of the event that created it (its ``traceparent``), or, when that
event carried none, a trace id hashed from the run id. The run's root span and each stage
attempt's span have ids hashed from the run id (and stage and attempt), so a replay or a
redelivery names the same spans, and a worker can parent its spans on an attempt it only knows
from the trigger's ``traceparent``. The core describes finished spans as :class:`SpanRecord`
values in :attr:`Step.spans`; the runtime exports them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

__all__ = [
    "LINKS_ATTRIBUTE",
    "SpanRecord",
    "attempt_span_id",
    "format_traceparent",
    "parse_traceparent",
    "run_span_id",
    "run_trace_id",
]

#: CloudEvents extension attribute of a trigger: the upstream attempts' ``traceparent`` values
#: (comma-separated) that the attempt's span links to.
LINKS_ATTRIBUTE = "sclinks"
_HEX = frozenset("0123456789abcdef")


def _hex(text: str, length: int) -> str:
    digest = hashlib.sha256(text.encode()).hexdigest()[:length]
    # All-zero ids are invalid in W3C trace context; a hash hitting one is kept valid.
    return digest if digest.strip("0") else digest[:-1] + "1"


def _valid(part: str, length: int) -> bool:
    return len(part) == length and set(part) <= _HEX and part.strip("0") != ""


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a version-00 W3C ``traceparent``; None when absent or invalid."""
    if not value:
        return None
    parts = value.strip().lower().split("-")
    if len(parts) < 4 or parts[0] == "ff" or not _valid(parts[1], 32) or not _valid(parts[2], 16):
        return None
    return parts[1], parts[2]


def format_traceparent(trace_id: str, span_id: str) -> str:
    """A sampled version-00 ``traceparent``."""
    return f"00-{trace_id}-{span_id}-01"


def run_trace_id(run_id: str, traceparent: str | None) -> str:
    """The trace of the run ``run_id`` created by an event carrying ``traceparent``."""
    parsed = parse_traceparent(traceparent)
    return parsed[0] if parsed is not None else _hex(f"trace|{run_id}", 32)


# Memoized (pure functions): a decision asks for the same ids several times (the trigger's
# traceparent, the attempt's span, its downstream's links); a bounded table keeps them.
@lru_cache(maxsize=1024)
def run_span_id(run_id: str) -> str:
    """The root span of the run."""
    return _hex(f"run|{run_id}", 16)


@lru_cache(maxsize=1024)
def attempt_span_id(run_id: str, stage: str, attempt: int) -> str:
    """The span of one attempt of one stage, from trigger to outcome."""
    return _hex(f"attempt|{run_id}|{stage}|{attempt}", 16)


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span the core describes; the runtime exports it with exactly these ids.

    ``kind`` is ``"run"`` or ``"attempt"``; ``links`` are span ids in the same trace;
    ``status`` is the run's or attempt's outcome; ``attributes`` are ``streamcoord.*`` values.
    """

    kind: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: datetime
    end: datetime
    status: str
    attributes: tuple[tuple[str, str | int], ...]
    links: tuple[str, ...] = ()
