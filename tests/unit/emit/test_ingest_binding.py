"""HTTP binding parsing, and records as Kafka's console producer or kcat would write them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streamcoord.core import Catalog, Publish, SetTimer
from streamcoord.core.replay import parse_log, replay
from streamcoord.events.codec import decode
from streamcoord.events.models import (
    COORDINATOR_EVENT_TYPES,
    CloudEvent,
    ExternalEvent,
    RunRequested,
)
from streamcoord.ingest import IngestError, events_from_request
from streamcoord.pipelines.loader import load_specs

EVENT = {
    "specversion": "1.0", "id": "e-1", "source": "shop/etl", "type": "shop.orders.landed",
    "data": {"day": "2024-01-01"},
}  # fmt: skip
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_structured_with_trace_context_from_the_http_headers() -> None:
    headers = {"content-type": "application/cloudevents+json", "traceparent": TRACEPARENT}
    (event,) = events_from_request(headers, orjson.dumps(EVENT))
    assert isinstance(event, ExternalEvent)
    assert (event.id, event.data, event.traceparent) == ("e-1", {"day": "2024-01-01"}, TRACEPARENT)


def test_binary_mode_reads_ce_headers_and_the_body_as_data() -> None:
    headers = {
        "ce-specversion": "1.0", "ce-id": "r-1", "ce-source": "cli",
        "ce-type": "streamcoord.run.requested", "content-type": "application/json",
    }  # fmt: skip
    (event,) = events_from_request(headers, b'{"pipeline": "orders", "run_key": "2024-01-01"}')
    assert isinstance(event, RunRequested)
    assert event.data.run_key == "2024-01-01"


def test_a_batch_yields_every_event_in_order() -> None:
    batch = [EVENT, {**EVENT, "id": "e-2"}]
    headers = {"content-type": "application/cloudevents-batch+json; charset=utf-8"}
    assert [e.id for e in events_from_request(headers, orjson.dumps(batch))] == ["e-1", "e-2"]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason", "message"),
    [
        ({"content-type": "application/cloudevents+json"}, b"{oops", 400, "not_json", "not JSON"),
        (
            {"content-type": "application/cloudevents+json"},
            orjson.dumps({"id": "x", "source": "s"}), 400, "not_cloudevent",
            "missing required attribute(s) specversion, type",
        ),
        (
            {"content-type": "application/cloudevents+json"},
            orjson.dumps({**EVENT, "specversion": "0.3"}), 400, "unsupported_specversion",
            "specversion",
        ),
        (
            {"content-type": "application/cloudevents-batch+json"},
            orjson.dumps([EVENT, {**EVENT, "type": ""}]), 400, "invalid_attribute", "batch[1]: ",
        ),
        ({"content-type": "application/cloudevents-batch+json"}, b"[]", 400, "not_cloudevent",
         "non-empty JSON array"),
        ({"content-type": "text/plain"}, b"hello", 415, "unsupported_content_type", "text/plain"),
        (
            {"content-type": "application/cloudevents+json"},
            orjson.dumps({**EVENT, "data": "x" * 2000}), 413, "oversized", "exceeds",
        ),
    ],
)  # fmt: skip
def test_invalid_requests_are_rejected_with_a_precise_reason(
    headers: dict[str, str], body: bytes, status: int, reason: str, message: str
) -> None:
    with pytest.raises(IngestError) as caught:
        events_from_request(headers, body, max_event_bytes=1024)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert message in str(caught.value)


# What `kafka-console-producer` and `kcat` write (the commands are in docs/edges.md).
def test_a_console_producer_record_without_headers_is_read_as_structured() -> None:
    event = decode(orjson.dumps(EVENT), [])
    assert (event.id, event.type) == ("e-1", "shop.orders.landed")


def test_a_console_producer_record_with_the_structured_content_type_header() -> None:
    event = decode(orjson.dumps(EVENT), [("content-type", b"application/cloudevents+json")])
    assert event.data == {"day": "2024-01-01"}


def test_a_kcat_binary_record_with_ce_headers() -> None:
    headers = [
        ("ce_specversion", b"1.0"), ("ce_id", b"k-1"), ("ce_source", b"kcat"),
        ("ce_type", b"shop.orders.landed"), ("content-type", b"application/json"),
    ]  # fmt: skip
    event = decode(b'{"day":"2024-01-01"}', headers)
    assert (event.id, event.data) == ("k-1", {"day": "2024-01-01"})


def _coordinator_events() -> dict[str, CloudEvent]:
    """One event of each type the core produces replaying golden logs over 3 partitions."""
    golden = Path(__file__).parents[2] / "golden" / "core"
    found: dict[str, CloudEvent] = {}
    for case in ("basic", "data_arrival_late", "cross_pipeline_need", "retries_backoff_timeouts"):
        folder = golden / case
        listed = folder / "specs.txt"
        specs = ([ROOT / line for line in listed.read_text().split()] if listed.exists()
                 else [folder / "spec.yaml"])  # fmt: skip
        loaded = load_specs(specs)
        lines = (folder / "log.jsonl").read_text().splitlines()
        catalog = Catalog.build(loaded.pipelines, loaded.pools)
        result = replay(catalog, parse_log(lines), partitions=3)  # so matches are routed
        for record in result.records:
            for command in record.step.commands:
                if isinstance(command, Publish | SetTimer):
                    found.setdefault(command.event.type, command.event)
    return found


ROOT = Path(__file__).parents[3]
PRODUCED = _coordinator_events()


def test_every_type_the_core_produces_is_listed_as_coordinator_only() -> None:
    assert set(PRODUCED) <= COORDINATOR_EVENT_TYPES
    assert {"streamcoord.run.match", "streamcoord.pool.grant", "streamcoord.need.subscribe",
            "streamcoord.data.arrival", "streamcoord.timer.fired"} <= set(PRODUCED)  # fmt: skip


@pytest.mark.parametrize("kind", sorted(PRODUCED))
def test_a_coordinator_only_type_is_rejected_with_its_reason(kind: str) -> None:
    body = PRODUCED[kind].model_dump_json(exclude_none=True).encode()
    with pytest.raises(IngestError) as caught:
        events_from_request({"content-type": "application/cloudevents+json"}, body)
    assert (caught.value.status, caught.value.reason) == (422, "reserved_type")
    assert "produced only by the coordinator" in str(caught.value)


def test_a_batch_with_one_coordinator_only_event_is_rejected_naming_it() -> None:
    forged = orjson.loads(PRODUCED["streamcoord.timer.fired"].model_dump_json())
    headers = {"content-type": "application/cloudevents-batch+json"}
    with pytest.raises(IngestError) as caught:
        events_from_request(headers, orjson.dumps([EVENT, forged]))
    assert (caught.value.status, caught.value.reason) == (422, "reserved_type")
    assert str(caught.value).startswith("batch[1]: ")


def test_commands_an_operator_sends_are_not_coordinator_only() -> None:
    for kind in (
        "streamcoord.run.requested",
        "streamcoord.run.cancel",
        "streamcoord.stage.retry",
        "streamcoord.pipeline.pause",
        "streamcoord.stage.succeeded",
    ):
        assert kind not in COORDINATOR_EVENT_TYPES
