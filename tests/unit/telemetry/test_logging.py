"""Log lines carry the trace they were written in: JSON for machines, text on a terminal."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.trace import Tracer

from streamcoord.telemetry import configure_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_carry_the_current_trace_and_span(tracer: Tracer) -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    log = logging.getLogger("streamcoord.test")
    with tracer.start_as_current_span("stage") as span:
        log.info("started %s", "load", extra={"run_id": "r-1"})
    log.warning("outside")
    inside, outside = _lines(out)
    context = span.get_span_context()
    assert inside["message"] == "started load"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "streamcoord.test"
    assert inside["trace_id"] == trace.format_trace_id(context.trace_id)
    assert inside["span_id"] == trace.format_span_id(context.span_id)
    assert inside["run_id"] == "r-1"
    assert "trace_id" not in outside


class _Stage:
    def __str__(self) -> str:
        return "stage load"


def _fail() -> None:
    raise ValueError("bad value")


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_keep_exceptions_and_unserialisable_extras() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    try:
        _fail()
    except ValueError:
        logging.getLogger("t").exception("failed", extra={"where": _Stage()})
    (line,) = _lines(out)
    assert "ValueError: bad value" in str(line["exception"])
    assert line["where"] == "stage load"


@pytest.mark.usefixtures("restore_root_logger")
def test_pipes_get_json_and_configuring_again_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    logging.getLogger("t").info("once")
    assert first.getvalue() == ""
    assert _lines(second)[0]["message"] == "once"


@pytest.mark.usefixtures("restore_root_logger")
def test_readable_logs_show_the_message_and_a_short_trace_id(tracer: Tracer) -> None:
    out = io.StringIO()
    configure_logging(json=False, stream=out)
    with tracer.start_as_current_span("stage") as span:
        logging.getLogger("t").info("stage [load] started")
    text = out.getvalue()
    assert "stage [load] started" in text
    assert f"trace={trace.format_trace_id(span.get_span_context().trace_id)[:8]}" in text
    assert not text.lstrip().startswith("{")
