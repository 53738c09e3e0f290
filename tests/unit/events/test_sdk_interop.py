"""Interoperability with the official CloudEvents Python SDK's Kafka binding, both modes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from streamcoord.events import ExternalEvent, StageSucceeded, decode, encode, make_event

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def _to_sdk_message(value: bytes, headers: list[tuple[str, bytes]]) -> sdk_kafka.KafkaMessage:
    return sdk_kafka.KafkaMessage(headers=dict(headers), key=None, value=value)


def _sdk_event(event_type: str, data: dict[str, object]) -> SdkEvent:
    return SdkEvent(
        attributes={
            "id": "sdk-1",
            "source": "/sdk",
            "type": event_type,
            "specversion": "1.0",
            "subject": "daily/2024-05-01",
            "time": WHEN,
            "datacontenttype": "application/json",
            "traceparent": TRACEPARENT,
        },
        data=data,
    )


@pytest.mark.parametrize("mode", ["structured", "binary"])
def test_the_sdk_reads_our_encoding(mode: str) -> None:
    ours = make_event(
        "streamcoord.stage.succeeded",
        "/executor",
        {"run_id": "r1", "stage": "load", "outputs": {"rows": 3}},
        id="e1",
        subject="daily",
        time=WHEN,
        traceparent=TRACEPARENT,
    )
    value, headers = encode(ours, mode)  # type: ignore[arg-type]  # parametrized literal

    theirs = sdk_kafka.from_kafka_event(_to_sdk_message(value, headers))

    assert theirs.get_type() == "streamcoord.stage.succeeded"
    assert theirs.get_id() == "e1"
    assert theirs.get_source() == "/executor"
    assert theirs.get_subject() == "daily"
    assert theirs.get_time() == WHEN
    assert theirs.get_data() == {
        "run_id": "r1",
        "stage": "load",
        "attempt": 1,
        "outputs": {"rows": 3},
    }
    if (
        mode == "structured"
    ):  # binary carries trace context in the W3C header, not as ce_traceparent
        assert theirs.get_extension("traceparent") == TRACEPARENT


@pytest.mark.parametrize(
    ("encoder", "event_type"),
    [
        (sdk_kafka.to_structured_event, "streamcoord.stage.succeeded"),
        (sdk_kafka.to_binary_event, "streamcoord.stage.succeeded"),
        (sdk_kafka.to_structured_event, "com.example.dataset.landed"),
        (sdk_kafka.to_binary_event, "com.example.dataset.landed"),
    ],
)
def test_we_read_the_sdks_encoding(encoder: object, event_type: str) -> None:
    data: dict[str, object] = {"run_id": "r1", "stage": "load", "outputs": {"rows": 3}}
    message = encoder(_sdk_event(event_type, data))  # type: ignore[operator]  # SDK function

    ours = decode(message.value, list(message.headers.items()))

    expected_type = StageSucceeded if event_type.startswith("streamcoord.") else ExternalEvent
    assert type(ours) is expected_type
    assert ours.id == "sdk-1"
    assert ours.time == WHEN
    assert ours.subject == "daily/2024-05-01"
    assert ours.traceparent == TRACEPARENT
    assert ours.model_dump(mode="json")["data"]["outputs"] == {"rows": 3}


def test_we_read_the_sdks_binary_data_in_structured_mode() -> None:
    sdk = SdkEvent(
        attributes={"id": "b", "source": "/s", "type": "com.example.blob", "specversion": "1.0"},
        data=b"\x00\x01",
    )
    message = sdk_kafka.to_structured_event(sdk)
    assert decode(message.value, list(message.headers.items())).data == b"\x00\x01"
