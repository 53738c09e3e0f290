"""Coverage-guided fuzzing of the decision path with atheris (libFuzzer):

    python -m tests.fuzz.decision_target [libFuzzer options]     # or: make fuzz

Each input is one events-topic record: byte 0 even means structured mode (the rest is the
value), odd means binary mode (byte 1 picks ``ce_type``, byte 2 the content-type, the rest is
the data). It is decided by a real partition worker, without Kafka, against a state that
already holds runs of the example pipelines. A finding is anything raising out of the path, a
dead letter saying the path itself failed (``decode_failed``, ``decide_failed``,
``encode_failed``), or a committed state that does not load again. The corpus grows in
``.fuzz/corpus`` (seeded with valid events on the first run); crashes land in ``.fuzz/``;
``events.dict`` (JSON tokens, event types, field names) helps mutations stay JSON. Replay a
crash with ``python -m tests.fuzz.decision_target .fuzz/crash-...``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris

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
    from tests.fuzz.path import OfflineWorker, decide_records, example_catalog, record
    from tests.fuzz.strategies import TYPES

CONTENT_TYPES = (b"application/json", b"text/plain", b"application/octet-stream",
                 b"application/cloudevents+json", b"text/x+json; charset=utf-8")
BUGS = frozenset({"decode_failed", "decide_failed", "encode_failed"})
FUZZ_DIR = Path(".fuzz")
SETTINGS = CoordinatorSettings(max_event_bytes=16_384, max_event_string=1024)


def _seed_events() -> list[CloudEvent]:
    landed = ExternalEvent(
        id="l1", source="s3://landing/a", type="dataset.landed", time="2024-05-01T01:00:00Z",
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
    worker = OfflineWorker(example_catalog(), SETTINGS)
    seeds = [record(*encode(e), key=b"k", offset=n) for n, e in enumerate(_seed_events())]
    decide_records(worker, seeds[:2])
    return worker.committed


CATALOG = example_catalog()
COMMITTED = _initial_state()


def to_record(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The record an input stands for (see the module docstring)."""
    if not data or data[0] % 2 == 0:
        return data[1:], [("content-type", b"application/cloudevents+json")]
    kind = TYPES[data[1] % len(TYPES)].encode() if len(data) > 1 else b"x"
    content_type = CONTENT_TYPES[data[2] % len(CONTENT_TYPES)] if len(data) > 2 else None
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"f1"), ("ce_source", b"fuzz"),
               ("ce_type", kind), ("ce_sckey", b"ingest/clicks/2024-05-01T01")]
    if content_type is not None:
        headers.append(("content-type", content_type))
    return data[3:], headers


def test_one_input(data: bytes) -> None:
    value, headers = to_record(data)
    worker = OfflineWorker(CATALOG, SETTINGS)
    worker.state = CoordinatorState.load(0, 1, COMMITTED)
    decided = decide_records(worker, [record(value, headers, key=b"k")])
    bugs = BUGS.intersection(decided.reasons)
    if bugs:
        raise AssertionError(f"the decision path failed: {decided.dead_letters}")
    if CoordinatorState.load(0, 1, worker.committed).dump() != worker.committed:
        raise AssertionError("the committed state does not load again")


def _seed_corpus(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
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
