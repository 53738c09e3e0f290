"""Retry failures are logged when they start, summarised with counts, and once when they stop."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from streamcoord.telemetry import configure_logging
from streamcoord.telemetry._repeats import RepeatSummary

UNREACHABLE = 'Unable connect to "%s:%s": %s'
METADATA = "Unable to update metadata from %s"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(name: str, msg: str, *args: object, level: int = logging.ERROR,
           retrying: bool = False) -> logging.LogRecord:  # fmt: skip
    made = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    if retrying:
        made.retrying = True
    return made


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lines() -> list[logging.LogRecord]:
    return []


@pytest.fixture
def summary(clock: Clock, lines: list[logging.LogRecord]) -> RepeatSummary:
    return RepeatSummary(lines.append, every_s=30, clock=clock, ticker=False)


def feed(
    summary: RepeatSummary, lines: list[logging.LogRecord], *records: logging.LogRecord
) -> None:
    """What a handler with this filter writes: the records it keeps, and what it emits."""
    lines.extend(each for each in records if summary.filter(each))


def test_an_outage_logs_its_start_a_summary_per_period_and_its_end(
    summary: RepeatSummary, clock: Clock, lines: list[logging.LogRecord]
) -> None:
    # 120 s of a broker down: 100 failed connection attempts a second
    for tick in range(12_000):
        clock.now = 1000.0 + tick / 100
        feed(summary, lines, record("aiokafka.client", UNREACHABLE, "127.0.0.1", 9092, tick))
    messages = [line.getMessage() for line in lines]
    assert messages[0] == ('Unable connect to "127.0.0.1:9092": 0 (repeats summarised every 30s)')
    assert len(messages) == 4  # the start, then one line per 30 s
    assert messages[1] == (
        'Unable connect to "127.0.0.1:9092": 3000 (x3000 in the last 30s, 3001 since the first '
        "30s ago)"
    )
    assert sum(getattr(line, "repeats", 1) for line in lines) == 9001
    assert all(line.levelno == logging.ERROR for line in lines)

    # back up: nothing for a period, then the end of the outage, once
    clock.now += 29
    assert summary.tick() == 1
    clock.now += 1
    assert summary.tick() == 0
    (end,) = lines[4:]
    assert end.levelno == logging.INFO
    assert end.getMessage() == (
        "recovered: 'Unable connect to \"%s:%s\": %s' stopped after 12000 failure(s) over 120s; "
        'the last: Unable connect to "127.0.0.1:9092": 11999'
    )
    assert end.repeats_total == 12_000  # type: ignore[attr-defined]
    assert summary.tick() == 0  # said once


def test_kinds_are_counted_apart_and_a_new_outage_starts_over(
    summary: RepeatSummary, clock: Clock, lines: list[logging.LogRecord]
) -> None:
    for _ in range(50):
        feed(summary, lines, record("aiokafka.client", UNREACHABLE, "h", 1, "refused"),
             record("aiokafka.client", METADATA, "[1]"))  # fmt: skip
    assert [line.msg for line in lines] == [
        'Unable connect to "h:1": refused (repeats summarised every 30s)',
        "Unable to update metadata from [1] (repeats summarised every 30s)",
    ]
    clock.now += 31  # quiet: the next failure is a new outage, announced with the old one's end
    feed(summary, lines, record("aiokafka.client", METADATA, "[1]"))
    ended, started = lines[2:]
    assert ended.getMessage().startswith("recovered: 'Unable to update metadata from %s'")
    assert started.getMessage().endswith("(repeats summarised every 30s)")


def test_other_records_pass_untouched(
    summary: RepeatSummary, lines: list[logging.LogRecord]
) -> None:
    ours = record("streamcoord.runtime.coordinator", "restored partition %s", 0, level=logging.INFO)
    info = record("aiokafka.consumer.group_coordinator", "Joined group", level=logging.INFO)
    for _ in range(3):
        feed(summary, lines, ours, info)
    assert [line.getMessage() for line in lines] == ["restored partition 0", "Joined group"] * 3


def test_our_own_retry_loops_are_summarised_when_they_say_so(
    summary: RepeatSummary, lines: list[logging.LogRecord]
) -> None:
    batch = "batch on %s failed (%s); deciding it again"
    for partition in range(100):
        feed(summary, lines, record("streamcoord.runtime.lane", batch, partition, "timeout",
                                    level=logging.WARNING, retrying=True))  # fmt: skip
    assert len(lines) == 1


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        for each in handler.filters:
            if isinstance(each, RepeatSummary):
                each.close()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_configured_logging_writes_one_json_line_for_a_burst_of_client_errors() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    client = logging.getLogger("aiokafka.conn")
    for attempt in range(1000):
        client.error("Unable connect to %s: %s", "127.0.0.1:9092", attempt)
    logging.getLogger("streamcoord.test").info("still here")
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("aiokafka.conn", "ERROR"), ("streamcoord.test", "INFO"),
    ]  # fmt: skip
    assert lines[0]["message"].startswith("Unable connect to 127.0.0.1:9092: 0 (repeats summ")


@pytest.mark.usefixtures("restore_root_logger")
def test_summarising_can_be_turned_off() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out, summarise_repeats_s=None)
    for _ in range(3):
        logging.getLogger("aiokafka.conn").error("refused")
    assert len(out.getvalue().splitlines()) == 3
