"""Events in both CloudEvents Kafka binding modes; records that are not events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamcoord.events import (
    OWN_EVENT_CLASSES,
    CloudEvent,
    EventDecodeError,
    ExternalEvent,
    StageStarted,
    StageTrigger,
    decode,
    encode,
    make_event,
    topology,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
MODES = ("structured", "binary")
WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

# Minimal valid data for every streamcoord type; a new type without an entry fails the test below.
SAMPLE_DATA: dict[str, dict[str, Any]] = {
    "streamcoord.stage.started": {"run_id": "r1", "stage": "load", "attempt": 2},
    "streamcoord.stage.heartbeat": {"run_id": "r1", "stage": "load"},
    "streamcoord.stage.succeeded": {"run_id": "r1", "stage": "load", "outputs": {"rows": 3}},
    "streamcoord.stage.failed": {
        "run_id": "r1",
        "stage": "load",
        "error": "boom",
        "retryable": False,
    },
    "streamcoord.stage.progress": {
        "run_id": "r1",
        "stage": "stream",
        "watermark": "2024-05-01T12:00:00Z",
        "offsets": {"0": 42},
    },
    "streamcoord.run.requested": {
        "pipeline": "daily",
        "run_key": "2024-05-01",
        "params": {"x": [1]},
    },
    "streamcoord.run.cancel": {"run_id": "r1", "reason": "operator"},
    "streamcoord.stage.retry": {"run_id": "r1", "stage": "load"},
    "streamcoord.pipeline.pause": {"pipeline": "daily"},
    "streamcoord.specs.activate": {"version": "sha256:0123456789abcdef"},
    "streamcoord.pipeline.resume": {"pipeline": "daily"},
    "streamcoord.timer.fired": {
        "timer_id": "t1",
        "purpose": "retry",
        "run_id": "r1",
        "due": "2024-05-01T12:00:00Z",
    },
    "streamcoord.schedule.tick": {"pipeline": "daily", "scheduled_time": "2024-05-01T00:00:00Z"},
    "streamcoord.stage.trigger": {
        "run_id": "r1",
        "pipeline": "daily",
        "run_key": "2024-05-01",
        "stage": "load",
        "attempt": 1,
        "params": {"day": "2024-05-01"},
        "idempotency_key": "r1/load/1",
        "executor": {"topic": topology.TRIGGERS, "kind": "batch", "config": {"image": "x"}},
        "caused_by": ["e1"],
    },
    "streamcoord.stage.cancel": {
        "run_id": "r1",
        "pipeline": "daily",
        "stage": "load",
        "attempt": 1,
        "idempotency_key": "r1/load/1",
        "cause": "run_cancelled",
        "reason": "cancelled on request",
    },
    "streamcoord.run.finished": {
        "run_id": "r1",
        "pipeline": "daily",
        "run_key": "2024-05-01",
        "outcome": "succeeded",
    },
    "streamcoord.stage.outcome": {
        "run_id": "r1",
        "pipeline": "daily",
        "run_key": "k",
        "stage": "load",
        "outcome": "succeeded",
    },
    "streamcoord.run.record": {
        "run_id": "r1",
        "pipeline": "daily",
        "run_key": "k",
        "status": "running",
        "stages": {"load": "running"},
    },
    "streamcoord.stage.record": {
        "run_id": "r1",
        "pipeline": "daily",
        "run_key": "k",
        "stage": "load",
        "status": "running",
        "attempt": 1,
    },
    "streamcoord.decision": {
        "run_id": "r1",
        "stage": "load",
        "action": "trigger",
        "reason": "all_success",
        "caused_by": ["e1", "e2"],
    },
}


def sample(event_type: str) -> CloudEvent:
    return make_event(
        event_type,
        "/tests/codec",
        SAMPLE_DATA[event_type],
        id=f"id-{event_type}",
        subject="daily/2024-05-01",
        time=WHEN,
        traceparent=TRACEPARENT,
        tracestate="vendor=1",
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OWN_EVENT_CLASSES, ids=lambda cls: cls.TYPE)
def test_every_own_type_round_trips_as_its_model(cls: type[CloudEvent], mode: str) -> None:
    event = sample(cls.TYPE)
    assert type(event) is cls

    value, headers = encode(event, mode)  # type: ignore[arg-type]  # parametrized literal
    decoded = decode(value, headers)

    assert type(decoded) is cls
    assert decoded == event


@pytest.mark.parametrize("mode", MODES)
def test_trace_context_travels_in_plain_kafka_headers(mode: str) -> None:
    _, headers = encode(sample("streamcoord.stage.started"), mode)  # type: ignore[arg-type]
    assert ("traceparent", TRACEPARENT.encode()) in headers
    assert ("tracestate", b"vendor=1") in headers


def test_structured_mode_takes_trace_context_from_headers_when_the_body_lacks_it() -> None:
    event = make_event("com.example.landed", "/s", {"a": 1}, id="1")
    value, headers = encode(event, "structured")
    decoded = decode(value, [*headers, ("traceparent", TRACEPARENT.encode())])
    assert decoded.traceparent == TRACEPARENT


def test_binary_mode_uses_ce_headers_and_the_data_as_value() -> None:
    event = sample("streamcoord.stage.started")
    value, headers = encode(event, "binary")
    names = dict(headers)
    assert names["ce_type"] == b"streamcoord.stage.started"
    assert names["ce_specversion"] == b"1.0"
    assert names["ce_time"] == b"2024-05-01T12:30:00Z"
    assert names["content-type"] == b"application/json"
    assert value == b'{"run_id":"r1","stage":"load","attempt":2}'


@pytest.mark.parametrize("mode", MODES)
def test_external_events_keep_extensions_and_any_data(mode: str) -> None:
    event = make_event(
        "com.example.dataset.landed",
        "/lake",
        {"dataset": "a", "hour": 3, "tags": None},
        id="x1",
        partitionkey="a",
        sequence="7",
    )
    decoded = decode(*encode(event, mode))  # type: ignore[arg-type]
    assert isinstance(decoded, ExternalEvent)
    assert decoded.data == {"dataset": "a", "hour": 3, "tags": None}
    assert decoded.model_extra == {"partitionkey": "a", "sequence": "7"}


@pytest.mark.parametrize("mode", MODES)
def test_binary_data_round_trips(mode: str) -> None:
    event = make_event(
        "com.example.blob",
        "/b",
        b"\x00\xffraw",
        id="b1",
        datacontenttype="application/octet-stream",
    )
    decoded = decode(*encode(event, mode))  # type: ignore[arg-type]
    assert decoded.data == b"\x00\xffraw"
    assert decoded.datacontenttype == "application/octet-stream"


def test_binary_mode_header_names_are_case_insensitive() -> None:
    headers = [("CE_SpecVersion", b"1.0"), ("ce_ID", b"1"), ("ce_source", b"/s"), ("ce_type", b"t")]
    assert decode(b"", headers).dedup_key == ("/s", "1")


def test_structured_record_without_headers_is_accepted() -> None:
    event = decode(b'{"specversion":"1.0","id":"1","source":"/s","type":"t"}', [])
    assert isinstance(event, ExternalEvent)


def test_a_streamcoord_type_decodes_into_its_typed_data() -> None:
    value, headers = encode(sample("streamcoord.stage.trigger"), "structured")
    decoded = decode(value, headers)
    assert isinstance(decoded, StageTrigger)
    assert decoded.data.executor.topic == topology.TRIGGERS


# --- invalid input: every case has a stable reason and names what is wrong ---------------------

GOOD = b'{"specversion":"1.0","id":"1","source":"/s","type":"t"}'
CE = [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s")]

INVALID: list[tuple[str, bytes | None, list[tuple[str, bytes | None]], str, str]] = [
    ("garbage", b"not json", [], "not_json", "not JSON"),
    ("truncated json", b'{"specversion":"1.0"', [], "not_json", "not JSON"),
    ("empty value", None, [], "not_json", "not JSON"),
    ("json array", b"[1, 2]", [], "not_cloudevent", "expected a JSON object"),
    ("json string", b'"hello"', [], "not_cloudevent", "expected a JSON object"),
    (
        "missing id and type",
        b'{"specversion":"1.0","source":"/s"}',
        [],
        "not_cloudevent",
        "id, type",
    ),
    (
        "missing specversion",
        b'{"id":"1","source":"/s","type":"t"}',
        [],
        "not_cloudevent",
        "specversion",
    ),
    (
        "specversion 0.3",
        b'{"specversion":"0.3","id":"1","source":"/s","type":"t"}',
        [],
        "unsupported_specversion",
        "specversion",
    ),
    (
        "empty id",
        b'{"specversion":"1.0","id":"","source":"/s","type":"t"}',
        [],
        "invalid_attribute",
        "id:",
    ),
    (
        "bad time",
        b'{"specversion":"1.0","id":"1","source":"/s","type":"t","time":"yesterday"}',
        [],
        "invalid_attribute",
        "time:",
    ),
    (
        "own type, data missing a field",
        b'{"specversion":"1.0","id":"1","source":"/s","type":"streamcoord.stage.started",'
        b'"data":{"stage":"load"}}',
        [],
        "invalid_data",
        "data.run_id: Field required",
    ),
    (
        "own type, unknown data field",
        b'{"specversion":"1.0","id":"1","source":"/s","type":"streamcoord.run.cancel",'
        b'"data":{"run_id":"r","whatever":1}}',
        [],
        "invalid_data",
        "data.whatever",
    ),
    (
        "own type, no data",
        b'{"specversion":"1.0","id":"1","source":"/s","type":"streamcoord.pipeline.pause"}',
        [],
        "invalid_data",
        "streamcoord.pipeline.pause",
    ),
    ("bad base64", GOOD[:-1] + b',"data_base64":"***"}', [], "invalid_data", "data_base64"),
    (
        "batch mode",
        b"[]",
        [("content-type", b"application/cloudevents-batch+json")],
        "unsupported_content_type",
        "cloudevents-batch",
    ),
    (
        "avro structured",
        b"\x00",
        [("content-type", b"application/cloudevents+avro")],
        "unsupported_content_type",
        "avro",
    ),
    ("binary without type", b"{}", CE, "not_cloudevent", "type"),
    (
        "binary header not utf-8",
        b"{}",
        [*CE, ("ce_type", b"\xff\xfe")],
        "invalid_header",
        "ce_type",
    ),
    (
        "binary json data that is not json",
        b"{oops",
        [*CE, ("ce_type", b"t"), ("content-type", b"application/json")],
        "not_json",
        "data",
    ),
    (
        "binary own type with wrong data",
        b'{"run_id": 5}',
        [*CE, ("ce_type", b"streamcoord.stage.retry")],
        "invalid_data",
        "data.run_id",
    ),
]


@pytest.mark.parametrize(
    ("value", "headers", "reason", "mentions"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_records_fail_with_a_reason_and_a_precise_message(
    value: bytes | None, headers: list[tuple[str, bytes | None]], reason: str, mentions: str
) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(value, headers)
    assert caught.value.reason == reason
    assert mentions in str(caught.value)


def test_oversized_records_are_refused_before_parsing() -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(b"x" * 2000, [], max_bytes=1000)
    assert caught.value.reason == "oversized"
    assert "2000 bytes" in caught.value.message


def test_decode_errors_are_event_errors_and_not_retryable() -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(b"nope", [])
    assert not caught.value.retryable


@given(st.binary(max_size=200))
def test_arbitrary_bytes_either_decode_or_raise_a_decode_error(value: bytes) -> None:
    reason: str | None = None
    try:
        decode(value, [])
    except EventDecodeError as error:
        reason = error.reason
    assert reason in {None, "not_json", "not_cloudevent", "invalid_attribute", "invalid_data"}


@given(
    run_id=st.text(min_size=1, max_size=30),
    stage=st.text(min_size=1, max_size=30),
    attempt=st.integers(min_value=1, max_value=10_000),
    mode=st.sampled_from(MODES),
)
def test_any_valid_stage_started_round_trips(
    run_id: str, stage: str, attempt: int, mode: str
) -> None:
    event = StageStarted(
        id="1",
        source="/s",
        data={"run_id": run_id, "stage": stage, "attempt": attempt},  # type: ignore[arg-type]  # validated into StageRef
    )
    assert decode(*encode(event, mode)) == event  # type: ignore[arg-type]
