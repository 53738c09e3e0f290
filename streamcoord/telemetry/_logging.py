"""Logs that carry the current trace: JSON lines for machines, rich text on a terminal.

Every record gets ``trace_id`` and ``span_id`` (hex, as Jaeger and the W3C header show them)
from the span current when it was logged, so a log line leads to its trace and back. Repeated
retry failures (aiokafka's, and records logged with ``extra={"retrying": True}``) are collapsed
by :class:`~streamcoord.telemetry._repeats.RepeatSummary`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from opentelemetry import trace
from rich.console import Console
from rich.logging import RichHandler

from streamcoord.telemetry._repeats import RepeatSummary

__all__ = ["JsonFormatter", "TraceContextFilter", "configure_logging"]

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_TRACE_FIELDS = frozenset({"trace_id", "span_id"})


class TraceContextFilter(logging.Filter):
    """Sets ``record.trace_id`` and ``record.span_id`` ("" outside any span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        valid = span_context.is_valid
        record.trace_id = trace.format_trace_id(span_context.trace_id) if valid else ""
        record.span_id = trace.format_span_id(span_context.span_id) if valid else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", "")
        if trace_id:
            entry["trace_id"] = trace_id
            entry["span_id"] = getattr(record, "span_id", "")
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD and key not in _TRACE_FIELDS
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: an extra that JSON cannot hold is logged as its text, never dropped.
        return orjson.dumps(entry, default=str).decode()


class _ShortTraceFormatter(logging.Formatter):
    """Rich shows time and level itself; the message gets the trace id's first 8 characters."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        return f"{message}  trace={trace_id[:8]}" if trace_id else message


def configure_logging(
    json: bool | None = None,
    *,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    summarise_repeats_s: float | None = 30.0,
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (default stderr); returns the handler.

    ``json=None`` picks JSON lines unless ``stream`` is a terminal, where rich text is easier to
    read. A retry failure that repeats is logged when it starts, at most once per
    ``summarise_repeats_s`` after that with counts, and once when it stops (None: every time).
    Calling it again replaces the handler it installed before.
    """
    out = stream or sys.stderr
    as_json = not out.isatty() if json is None else json
    handler: logging.Handler
    if as_json:
        handler = logging.StreamHandler(out)
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(console=Console(file=out), show_path=False)
        handler.setFormatter(_ShortTraceFormatter("%(message)s"))
    handler.addFilter(TraceContextFilter())
    if summarise_repeats_s is not None:
        handler.addFilter(RepeatSummary(handler.handle, every_s=summarise_repeats_s))
    handler.set_name("streamcoord")
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == "streamcoord"]:
        root.removeHandler(previous)
        for summary in [f for f in previous.filters if isinstance(f, RepeatSummary)]:
            summary.close()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
