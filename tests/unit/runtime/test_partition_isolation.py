"""One record never stops a partition: whatever deciding it raises, it is dead-lettered with a
reason, nothing it half did is committed, and the records around it are decided as usual."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from streamcoord.core import Catalog, CoordinatorState, Step
from streamcoord.core import decide as real_decide
from streamcoord.events.codec import encode
from streamcoord.events.models import CloudEvent, ExternalEvent, RunRequested, RunRequestedData
from streamcoord.pipelines.loader import load_specs
from streamcoord.runtime import partition
from streamcoord.runtime.deadletter import HEADER_PREFIX
from tests.fuzz.path import EXAMPLES, OfflineProcessor, decide_records, example_catalog, record

CATALOG = example_catalog()
INTERNAL = OfflineProcessor(CATALOG).internal_tp.topic


def _landed(n: int) -> ExternalEvent:
    return ExternalEvent(
        id=f"landed-{n}",
        source="s3://landing/x",
        type="dataset.landed",
        time=datetime(2024, 5, 1, n, tzinfo=UTC),
        data={"dataset": "clicks", "partition": f"2024-05-01T{n:02d}", "date": "2024-05-01"},
    )


def _records(events: list[CloudEvent]) -> list[Any]:
    out = []
    for offset, event in enumerate(events):
        value, headers = encode(event)
        out.append(record(value, headers, key=event.id.encode(), offset=offset))
    return out


def _poisoned_decide(poison: str) -> Any:
    """decide, except that the event ``poison`` changes the state and then raises: a bug."""

    def decide(
        catalog: Catalog, state: CoordinatorState, event: CloudEvent, now: datetime, **kwargs: Any
    ) -> Step:
        step = real_decide(catalog, state, event, now, **kwargs)
        if event.id == poison:
            raise RuntimeError("a bug in the core")
        return step

    return decide


def test_a_failing_decision_is_dead_lettered_and_undone_and_the_rest_is_decided(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[CloudEvent] = [_landed(n) for n in range(5)]
    records = _records(events)
    clean = OfflineProcessor(CATALOG)
    decide_records(clean, records[:2] + records[3:])  # as if the poison never came

    monkeypatch.setattr(partition, "decide", _poisoned_decide("landed-2"))
    worker = OfflineProcessor(CATALOG)
    decided = decide_records(worker, records)

    assert decided.reasons == ["decide_failed"]
    key, value, headers = decided.dead_letters[0]
    assert (key, value) == (b"landed-2", records[2].value)  # the record as it came
    assert headers[: len(records[2].headers)] == list(records[2].headers)
    assert b"RuntimeError: a bug in the core" in dict(headers)[HEADER_PREFIX + "error"]
    assert dict(headers)[HEADER_PREFIX + "offset"] == b"2"
    assert worker.state.dump() == clean.state.dump()  # nothing of the poison is left
    assert worker.state.run("ingest/clicks/2024-05-01T02") is None
    assert clean.state.dump()  # the clean records changed state


def test_the_partition_goes_on_after_a_failing_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(partition, "decide", _poisoned_decide("landed-0"))
    worker = OfflineProcessor(CATALOG)
    first = decide_records(worker, _records([_landed(0)]))
    second = decide_records(worker, _records([_landed(1), _landed(0)]))
    assert first.reasons == ["decide_failed"]
    assert second.reasons == ["decide_failed"]
    assert [r.run_id for r in worker.state.runs()] == ["ingest/clicks/2024-05-01T01"]


def test_a_failure_at_the_end_of_a_batch_is_pinned_on_the_record_that_caused_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_run_record = partition.run_record

    def run_record(change: Any) -> Any:
        if change.run.run_key == "clicks/2024-05-01T03":
            raise ValueError("cannot serialize")
        return real_run_record(change)

    monkeypatch.setattr(partition, "run_record", run_record)
    worker = OfflineProcessor(CATALOG)
    decided = decide_records(worker, _records([_landed(n) for n in range(5)]))
    assert decided.reasons == ["encode_failed"]
    assert decided.dead_letters[0][0] == b"landed-3"
    assert len(worker.state.runs()) == 4


def test_a_decoder_bug_is_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    def decode(*_: Any, **__: Any) -> CloudEvent:
        raise KeyError("oops")

    monkeypatch.setattr(partition, "decode", decode)
    decided = decide_records(OfflineProcessor(CATALOG), _records([_landed(0)]))
    assert decided.reasons == ["decode_failed"]


# The four records of issue 13 that each stopped a partition for good.
def _binary(data: bytes, content_type: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    return data, [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"b1"),
        ("ce_source", b"s3://landing/a"),
        ("ce_type", b"dataset.landed"),
        ("content-type", content_type.encode()),
    ]


def _deep(levels: int) -> bytes:
    inner = b"[" * levels + b"1" + b"]" * levels
    return (
        b'{"specversion":"1.0","id":"deep","source":"s3://landing/a","type":"dataset.landed",'
        b'"data":{"dataset":"clicks","partition":"p","x":' + inner + b"}}"
    )


def _internal(type_: str, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"specversion": "1.0", "id": "i", "source": "x", "type": type_, "data": data}
    )


REPRODUCERS = [
    (
        "binary non-UTF-8 data, JSON content type",
        *_binary(b"\xff\xfe\x00", "application/json"),
        "not_utf8",
    ),
    (
        "binary non-UTF-8 data, octet-stream",
        *_binary(b"\xff\xfe\x00", "application/octet-stream"),
        "arrival_error",
    ),  # decided: the data trigger's dataset expression finds no data.dataset
    ("data nested 300 levels", _deep(300), [], "too_deep"),
]
# A coordinator's own message: refused on the events topic; even on the internal topic (a
# coordinator's bug) it only fails itself.
RUN_MATCH_WITH_A_LIST = _internal(
    "streamcoord.run.match",
    {
        "pipeline": ["ingest"],
        "run_key": "k",
        "trigger": {},
        "caused": [],
        "params": {},
        "rerun": False,
        "dedup": "d",
    },
)


@pytest.mark.parametrize(
    ("value", "headers", "reason"), [r[1:] for r in REPRODUCERS], ids=[r[0] for r in REPRODUCERS]
)
def test_the_issue_13_records_are_rejected_with_a_reason(
    value: bytes,
    headers: list[tuple[str, bytes]],
    reason: str,
) -> None:
    decided = decide_records(OfflineProcessor(CATALOG), [record(value, headers)])
    assert decided.reasons == [reason]


def test_a_run_match_whose_pipeline_is_a_list_is_refused_on_both_topics() -> None:
    worker = OfflineProcessor(CATALOG)
    public = decide_records(worker, [record(RUN_MATCH_WITH_A_LIST)])
    internal = decide_records(worker, [record(RUN_MATCH_WITH_A_LIST, topic=INTERNAL)])
    assert (public.reasons, internal.reasons) == (["reserved_type"], ["invalid_data"])


def test_a_pool_grant_in_a_catalog_without_pools_is_rejected() -> None:
    loaded = load_specs([EXAMPLES / "ml.yaml"])
    catalog = Catalog.build([p for p in loaded.pipelines if p.name == "features"])
    worker = OfflineProcessor(catalog)
    requested = RunRequested(
        id="r", source="cli", data=RunRequestedData(pipeline="features", run_key="online")
    )
    grant = _internal(
        "streamcoord.pool.grant",
        {"pool": "gpu", "run_id": "features/online", "stage": "stream_features", "attempt": 1},
    )
    value, headers = encode(requested)
    decided = decide_records(
        worker, [record(value, headers, topic=INTERNAL), record(grant, offset=1, topic=INTERNAL)]
    )
    assert decided.reasons == ["unknown_pool"]
