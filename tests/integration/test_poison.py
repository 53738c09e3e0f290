"""No record stops a partition (issue 13): ten thousand hostile records, the four that once
made the coordinator exit among them, interleaved with valid runs. The coordinator never
stops, every run succeeds, and every hostile record is in the dead-letter topic with the
reason its kind calls for."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from streamcoord.runtime import TopicNames
from tests.integration.coordination import (
    Harness,
    create_topics,
    in_process,
    until_runs_succeeded,
)
from tests.integration.test_resilience import assert_each_trigger_once, tick

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]

Headers = list[tuple[str, bytes]]
Hostile = tuple[bytes, Headers, bytes, str]  # value, headers, key, expected dead-letter reason
BINARY = [("ce_specversion", b"1.0"), ("ce_source", b"fuzz"), ("ce_type", b"steady.tick")]
MAX_BYTES, MAX_STRING = 16 * 1024, 1024


def _event(event_id: str, type_: str, data: object, **extra: object) -> bytes:
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "fuzz",
            "type": type_,
            "data": data,
            **extra,
        }
    )


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"1" + b"]" * levels


def _deep(i: int) -> bytes:
    return _event(f"d{i}", "steady.tick", None)[:-5] + b'{"n":' + _nested(300) + b"}}"


def _match(i: int, **changes: object) -> bytes:
    data = {
        "pipeline": "steady",
        "run_key": "k",
        "trigger": {},
        "caused": [],
        "params": {},
        "rerun": False,
        "dedup": f"m{i}",
        **changes,
    }
    return _event(f"m{i}", "streamcoord.run.match", data)


# (kind, make(i, latest run number) -> (value, headers, key), reason)
KINDS: list[tuple[str, Callable[[int, int], tuple[bytes, Headers, bytes]], str]] = [
    # the four records of issue 13
    (
        "non-UTF-8 binary data, JSON content type",
        lambda i, _: (
            b"\xff\xfe\x00" + bytes([i % 256]),
            [*BINARY, ("ce_id", f"u{i}".encode()), ("content-type", b"application/json")],
            b"fuzz",
        ),
        "not_utf8",
    ),
    (
        "non-UTF-8 binary data, octet-stream",
        lambda i, _: (
            b"\xff\xfe\x00" + bytes([i % 256]),
            [*BINARY, ("ce_id", f"o{i}".encode()), ("content-type", b"application/octet-stream")],
            b"fuzz",
        ),
        "run_key_error",
    ),  # decided: the run key needs data.n, binary data has none
    ("data nested 300 levels", lambda i, _: (_deep(i), [], b"fuzz"), "too_deep"),
    # coordinator messages: only coordinators may send them, on the internal topic
    (
        "run.match whose pipeline is a list",
        lambda i, _: (_match(i, pipeline=["steady"]), [], b"steady/k"),
        "reserved_type",
    ),
    (
        "pool grant for an existing run, no pools in the spec",
        lambda i, n: (
            _event(
                f"g{i}",
                "streamcoord.pool.grant",
                {"pool": "gpu", "run_id": f"steady/{n}", "stage": "first", "attempt": 1},
            ),
            [],
            f"steady/{n}".encode(),
        ),
        "reserved_type",
    ),
    # and more of the same family
    ("not JSON", lambda i, _: (b"\x00\xff not json " + bytes([i % 256]), [], b"fuzz"), "not_json"),
    (
        "no specversion or source",
        lambda i, _: (orjson.dumps({"id": f"x{i}", "type": "t"}), [], b"fuzz"),
        "not_cloudevent",
    ),
    (
        "type is an object",
        lambda i, _: (_event(f"t{i}", "", {}, type={"a": 1}), [], b"fuzz"),
        "invalid_attribute",
    ),
    (
        "wrong data types",
        lambda i, _: (_event(f"w{i}", "streamcoord.stage.succeeded", {"run_id": 7}), [], b"fuzz"),
        "invalid_data",
    ),
    (
        "unknown run",
        lambda i, _: (
            _event(f"r{i}", "streamcoord.stage.started", {"run_id": f"nope/{i}", "stage": "first"}),
            [],
            b"nope",
        ),
        "unknown_run",
    ),
    (
        "oversized",
        lambda i, _: (_event(f"h{i}", "steady.tick", "x" * MAX_BYTES), [], b"fuzz"),
        "oversized",
    ),
    (
        "long string",
        lambda i, _: (_event(f"s{i}", "steady.tick", {"n": "x" * 2000}), [], b"fuzz"),
        "string_too_long",
    ),
    (
        "too many headers",
        lambda i, _: (
            _event(f"c{i}", "steady.tick", {"n": 1}),
            [(f"h{k}", b"v") for k in range(80)],
            b"fuzz",
        ),
        "too_many_attributes",
    ),
    (
        "NaN",
        lambda i, _: (_event(f"n{i}", "steady.tick", None)[:-5] + b'{"n":NaN}}', [], b"fuzz"),
        "not_json",
    ),
    (
        "header not UTF-8",
        lambda i, _: (b"{}", [("ce_specversion", b"\xff\xfe")], b"fuzz"),
        "invalid_header",
    ),
    (
        "match with causes that are not ids",
        lambda i, _: (_match(i, caused=[1, 2]), [], b"steady/k"),
        "reserved_type",
    ),
    (
        "specversion 0.3",
        lambda i, _: (_event(f"v{i}", "steady.tick", {}, specversion="0.3"), [], b"fuzz"),
        "unsupported_specversion",
    ),
]


def hostile(count: int, runs: int, seed: int) -> list[Hostile]:
    """Every kind at least ten times, the rest at random, in a shuffled order."""
    chooser = random.Random(seed)
    picks = [k for k in KINDS for _ in range(10)]
    picks += [chooser.choice(KINDS) for _ in range(count - len(picks))]
    chooser.shuffle(picks)
    out = []
    for i, (_, make, reason) in enumerate(picks):
        value, headers, key = make(i, min(runs - 1, i * runs // count))
        out.append((value, headers, key, reason))
    return out


async def test_ten_thousand_hostile_records_never_stop_the_coordinator(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('poison')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    runs, bad = 100, 10_000
    records = hostile(bad, runs, seed=13)
    per_run = bad // runs
    async with in_process(
        kafka_bootstrap,
        topics,
        unique_name("group"),
        max_event_bytes=MAX_BYTES,
        max_event_string=MAX_STRING,
    ) as harness:
        for n in range(runs):
            await harness.emit_event(tick(n))  # before the grants that name its run
            sends = [
                await harness.producer.send(topics.events, key=key, value=value, headers=headers)
                for value, headers, key, _ in records[n * per_run : (n + 1) * per_run]
            ]
            await asyncio.gather(*sends)
        await asyncio.wait_for(until_runs_succeeded(harness, runs), 120)
        assert harness.coordinator is not None
        assert harness.coordinator.status.consuming
        letters = await asyncio.wait_for(_dead_letters(harness, bad), 60)
    assert Counter(reason for reason, _ in letters) == Counter(r[3] for r in records)
    assert all(error for _, error in letters)
    await assert_each_trigger_once(harness, runs)


async def _dead_letters(harness: Harness, count: int) -> list[tuple[str, bytes]]:
    """(reason, error) of the first ``count`` committed dead letters, as they arrive."""
    letters: list[tuple[str, bytes]] = []
    consumer = harness.reader(harness.topics.deadletter)
    await consumer.start()
    try:
        async for message in consumer:
            headers = dict(message.headers)
            letters.append(
                (headers["streamcoord.dlq.reason"].decode(), headers["streamcoord.dlq.error"])
            )
            if len(letters) == count:
                return letters
    finally:
        await consumer.stop()
    raise AssertionError("the dead-letter topic ended")
