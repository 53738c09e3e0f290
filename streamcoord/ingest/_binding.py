"""The CloudEvents HTTP binding: a request's headers and body to validated events.

Structured (``application/cloudevents+json``), binary (``ce-*`` headers, the body is the data)
and batch (``application/cloudevents-batch+json``, a JSON array of structured events). A batch
is all or nothing: one invalid event rejects it, naming the index. Validation is the Kafka
codec's, so the reasons (``not_json``, ``not_cloudevent``, ...) are the same codes the
coordinator writes on dead letters. A JSON body without ``ce-*`` headers is read as structured,
as the codec does for Kafka records. Types only the coordinator produces
(:data:`~streamcoord.events.models.COORDINATOR_EVENT_TYPES`) are rejected with 422
``reserved_type``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import orjson

from streamcoord.errors import EventError
from streamcoord.events.codec import DEFAULT_MAX_BYTES, EventDecodeError, decode
from streamcoord.events.models import COORDINATOR_EVENT_TYPES, CloudEvent

__all__ = ["BATCH_CONTENT_TYPE", "IngestError", "events_from_request"]

BATCH_CONTENT_TYPE: Final = "application/cloudevents-batch+json"
_STRUCTURED: Final = "application/cloudevents+json"
_TRACE: Final = ("traceparent", "tracestate")


class IngestError(EventError):
    """A request the endpoint rejects; ``status`` is the HTTP status, ``reason`` a stable code."""

    def __init__(self, status: int, reason: str, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


def events_from_request(
    headers: Mapping[str, str], body: bytes, *, max_event_bytes: int = DEFAULT_MAX_BYTES
) -> list[CloudEvent]:
    """Every event in one request (header names lower-case); raises :class:`IngestError`."""
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == BATCH_CONTENT_TYPE:
        return _batch(headers, body, max_event_bytes)
    if any(name.startswith("ce-") for name in headers):
        return [_decode(body, _binary_headers(headers), max_event_bytes)]
    if media in {_STRUCTURED, "application/json", ""}:
        return [_decode(body, _structured_headers(headers), max_event_bytes)]
    raise IngestError(
        415, "unsupported_content_type",
        f"content-type {content_type!r} without ce-* headers is not a CloudEvent",
        hint=f"send {_STRUCTURED}, {BATCH_CONTENT_TYPE} or binary mode with ce-* headers",
    )  # fmt: skip


def _binary_headers(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    # HTTP's ce-<attr> is Kafka's ce_<attr>; the codec reads the rest the same way.
    kafka = [
        ("ce_" + name[3:], value.encode()) for name, value in headers.items()
        if name.startswith("ce-")
    ]  # fmt: skip
    kafka += [
        (name, headers[name].encode()) for name in ("content-type", *_TRACE) if name in headers
    ]
    return kafka


def _structured_headers(headers: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(name, headers[name].encode()) for name in _TRACE if name in headers]


def _decode(body: bytes, headers: list[tuple[str, bytes]], max_bytes: int) -> CloudEvent:
    try:
        event = decode(body, headers, max_bytes=max_bytes)
    except EventDecodeError as error:
        raise _rejection(error) from None
    if event.type in COORDINATOR_EVENT_TYPES:
        raise IngestError(
            422, "reserved_type",
            f"type {event.type!r} is produced only by the coordinator, never sent to it",
            hint="send your own event types, or the streamcoord.stage.*, run.requested, "
            "run.cancel, stage.retry and pipeline.pause/resume commands",
        )  # fmt: skip
    return event


def _batch(headers: Mapping[str, str], body: bytes, max_bytes: int) -> list[CloudEvent]:
    try:
        items = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise IngestError(400, "not_json", f"batch is not JSON: {error}") from None
    if not isinstance(items, list) or not items:
        raise IngestError(400, "not_cloudevent", "a batch must be a non-empty JSON array of events")
    trace = _structured_headers(headers)
    events = []
    for index, item in enumerate(items):
        try:
            events.append(_decode(orjson.dumps(item), trace, max_bytes))
        except IngestError as rejection:
            raise IngestError(
                rejection.status, rejection.reason, f"batch[{index}]: {rejection.message}",
                hint="nothing in this batch was accepted; fix the event and send the batch again",
            ) from None  # fmt: skip
    return events


def _rejection(error: EventDecodeError) -> IngestError:
    status = {"oversized": 413, "unsupported_content_type": 415}.get(error.reason, 400)
    return IngestError(status, error.reason, error.message, hint=error.hint)
