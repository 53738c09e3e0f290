"""Coverage-guided fuzzing of the decision path with atheris (libFuzzer):

    python -m tests.fuzz.decision_target [libFuzzer options]     # or: make fuzz

Each input is one events-topic record, by byte 0: 2 mod 4 builds a structured event from the
rest (a known type, data from the field names and values the example runs use), otherwise
even is structured mode (the rest is the value) and odd binary mode (byte 1 picks ``ce_type``,
byte 2 the content-type, the rest is the data). It is decided by a real partition processor,
without Kafka, against a state that already holds runs of the example pipelines. A finding is
anything raising out of the path, a dead letter saying the path itself failed
(``decode_failed``, ``decide_failed``, ``encode_failed``), or a committed state that does not
load again. The corpus grows in
``.fuzz/corpus`` (seeded with valid events on the first run); crashes land in ``.fuzz/``;
``events.dict`` (JSON tokens, event types, field names) helps mutations stay JSON. Replay a
crash with ``python -m tests.fuzz.decision_target .fuzz/crash-...``.
"""

from __future__ import annotations

import logging
import random
import sys
from pathlib import Path
from typing import Any

import atheris
import orjson

with atheris.instrument_imports(include=["streamcoord"]):
    from streamcoord.core import CoordinatorState
    from streamcoord.events.codec import encode
    from streamcoord.events.models import (
        CloudEvent,
        ExternalEvent,
        RunRequested,
        RunRequestedData,
        StageStarted,
        StageSucceeded,
    )
    from streamcoord.runtime import CoordinatorSettings
    from tests.fuzz.path import OfflineProcessor, decide_records, example_catalog, record
    from tests.fuzz.strategies import FIELDS, PIPELINES, RUN_IDS, RUN_KEYS, STAGES, TYPES

CONTENT_TYPES = (
    b"application/json",
    b"text/plain",
    b"application/octet-stream",
    b"application/cloudevents+json",
    b"text/x+json; charset=utf-8",
)
BUGS = frozenset({"decode_failed", "decide_failed", "encode_failed"})
FUZZ_DIR = Path(".fuzz")
SETTINGS = CoordinatorSettings(max_event_bytes=16_384, max_event_string=1024)


def _seed_events() -> list[CloudEvent]:
    landed = ExternalEvent(
        id="l1",
        source="s3://landing/a",
        type="dataset.landed",
        time="2024-05-01T01:00:00Z",
        data={"dataset": "clicks", "partition": "2024-05-01T01", "date": "2024-05-01"},
    )
    ref = {"run_id": "ingest/clicks/2024-05-01T01", "stage": "check_raw", "attempt": 1}
    return [
        landed,
        RunRequested(id="r1", source="cli", data=RunRequestedData(pipeline="ml", run_key="k")),
        StageStarted(id="s1", source="w", data=ref),
        StageSucceeded(id="s2", source="w", data={**ref, "outputs": {"rows": 1}}),
    ]


def _initial_state() -> list[tuple[str, bytes]]:
    worker = OfflineProcessor(example_catalog(), SETTINGS)
    seeds = [record(*encode(e), key=b"k", offset=n) for n, e in enumerate(_seed_events())]
    decide_records(worker, seeds[:2])
    return worker.committed


CATALOG = example_catalog()
COMMITTED = _initial_state()


def _value(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> Any:
    """A JSON value from the pools of names the example runs use, or a random one."""
    pick = fdp.ConsumeIntInRange(0, 9)
    if pick < 4:
        pool = (RUN_IDS, STAGES, PIPELINES, RUN_KEYS)[pick]
        return pool[fdp.ConsumeIntInRange(0, len(pool) - 1)]
    if pick == 4:
        return fdp.ConsumeIntInRange(-2, 4)
    if pick == 5:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 12))
    if pick == 6 and depth < 3:
        return [_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    if pick == 7 and depth < 3:
        return _fields(fdp, depth + 1)
    return (None, True, False, 0.5, "2024-05-01T01:00:00Z")[fdp.ConsumeIntInRange(0, 4)]


def _fields(fdp: atheris.FuzzedDataProvider, depth: int = 0) -> dict[str, Any]:
    return {
        FIELDS[fdp.ConsumeIntInRange(0, len(FIELDS) - 1)]: _value(fdp, depth)
        for _ in range(fdp.ConsumeIntInRange(0, 8))
    }


def _built(data: bytes) -> bytes:
    """A structured event assembled from the input: a known type, data from known field names
    (mutations of raw JSON rarely stay JSON long enough to reach the core)."""
    fdp = atheris.FuzzedDataProvider(data)
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"f{fdp.ConsumeIntInRange(0, 9)}",
        "source": "fuzz",
        "type": TYPES[fdp.ConsumeIntInRange(0, len(TYPES) - 1)],
    }
    if fdp.ConsumeBool():
        event["time"] = f"2024-05-01T0{fdp.ConsumeIntInRange(0, 9)}:00:00Z"
    if fdp.ConsumeBool():
        event["sckey"] = RUN_IDS[fdp.ConsumeIntInRange(0, len(RUN_IDS) - 1)]
    if fdp.ConsumeBool():
        event["sctarget"] = RUN_IDS[fdp.ConsumeIntInRange(0, len(RUN_IDS) - 1)]
        event["scneed"] = STAGES[fdp.ConsumeIntInRange(0, len(STAGES) - 1)]
    event["data"] = _fields(fdp)
    return orjson.dumps(event)


def to_record(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record an input stands for (see the module docstring)."""
    if data and data[0] % 4 == 2:
        return _built(data[1:]), []
    if not data or data[0] % 2 == 0:
        return data[1:], [("content-type", b"application/cloudevents+json")]
    kind = TYPES[data[1] % len(TYPES)].encode() if len(data) > 1 else b"x"
    content_type = CONTENT_TYPES[data[2] % len(CONTENT_TYPES)] if len(data) > 2 else None
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"f1"),
        ("ce_source", b"fuzz"),
        ("ce_type", kind),
        ("ce_sckey", b"ingest/clicks/2024-05-01T01"),
    ]
    if content_type is not None:
        headers.append(("content-type", content_type))
    return data[3:], headers


def test_one_input(data: bytes) -> None:
    value, headers = to_record(data)
    worker = OfflineProcessor(CATALOG, SETTINGS)
    worker.state = CoordinatorState.load(0, 1, COMMITTED)
    decided = decide_records(worker, [record(value, headers, key=b"k")])
    bugs = BUGS.intersection(decided.reasons)
    if bugs:
        raise AssertionError(f"the decision path failed: {decided.dead_letters}")
    if CoordinatorState.load(0, 1, worker.committed).dump() != worker.committed:
        raise AssertionError("the committed state does not load again")


def _seed_corpus(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    chooser = random.Random(13)
    wanted = set(TYPES)
    while wanted:  # one built event of each type to start from
        data = bytes([2, *chooser.randbytes(chooser.randint(8, 80))])
        kind = orjson.loads(_built(data[1:]))["type"]
        if kind in wanted:
            wanted.discard(kind)
            (corpus / f"seed-built-{TYPES.index(kind)}").write_bytes(data)
    for n, event in enumerate(_seed_events()):
        value, _ = encode(event)
        (corpus / f"seed-structured-{n}").write_bytes(b"\x00" + value)
        kind = TYPES.index(event.type) if event.type in TYPES else 0
        data, _ = encode(event, "binary")
        (corpus / f"seed-binary-{n}").write_bytes(bytes([1, kind, 0]) + data)


def main() -> None:
    logging.disable(logging.ERROR)  # a dead letter per input: logging would be most of the time
    corpus = FUZZ_DIR / "corpus"
    _seed_corpus(corpus)
    args = [sys.argv[0], *sys.argv[1:]]
    if not any(a.startswith("-dict") for a in args):
        args.append(f"-dict={Path(__file__).with_name('events.dict')}")
    if not any(not a.startswith("-") for a in sys.argv[1:]):
        args.append(str(corpus))
    if not any(a.startswith("-artifact_prefix") for a in args):
        args.append(f"-artifact_prefix={FUZZ_DIR}/")
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
