"""Kafka record (value and headers) to a typed event, in either content mode of the CloudEvents
Kafka protocol binding (see :mod:`~streamcoord.events.binding`).

Structured values take a fast path first (``orjson`` parse, the class looked up by ``type``, one
model validated); anything the fast path does not accept goes through the union of
:mod:`~streamcoord.events.validation`, which alone words the errors. Trace context headers fill
in what the event's own attributes lack. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import orjson
from pydantic import ValidationError

from streamcoord.events.binding import (
    CE_PREFIX,
    CONTENT_TYPE,
    REQUIRED_ATTRIBUTES,
    STRUCTURED_CONTENT_TYPE,
    TRACE_HEADERS,
    is_json,
)
from streamcoord.events.decode_errors import EventDecodeError
from streamcoord.events.envelope import CloudEvent, ExternalEvent
from streamcoord.events.limits import (
    DEFAULT_LIMITS,
    DecodeLimits,
    may_exceed,
    string_too_long,
    walk,
)
from streamcoord.events.validation import (
    CLASS_BY_TYPE,
    decode_error,
    event_adapter,
    validate_event,
)

__all__ = ["decode"]

_REQUIRED_SET: Final = frozenset(REQUIRED_ATTRIBUTES)


def decode(
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    *,
    max_bytes: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> CloudEvent:
    """Decode one Kafka record's value and headers into a typed event, in either content mode.

    ``max_bytes`` overrides ``limits.max_bytes``. Raises :class:`EventDecodeError` with a
    ``reason`` code when the record is not a valid event or exceeds a limit.
    """
    if max_bytes is not None:
        limits = replace(limits, max_bytes=max_bytes)
    if len(headers) > limits.max_attributes:
        raise EventDecodeError(
            "too_many_attributes",
            f"record has {len(headers)} headers, more than the limit of {limits.max_attributes}",
        )
    header_map = _header_map(headers)
    size = len(value or b"")
    longest = 0
    for name, text in header_map.items():
        size += len(name) + len(text)
        longest = max(longest, len(text))
    max_bytes = limits.max_bytes
    if size > max_bytes:
        raise EventDecodeError(
            "oversized",
            f"record of {size} bytes exceeds the {max_bytes}-byte limit for events",
            hint="send large payloads by reference (a URI in data), not inline",
        )
    if longest > limits.max_string:
        raise string_too_long("a header", longest, limits)
    for name in header_map:
        if name.startswith(CE_PREFIX):
            return _decode_binary(value, header_map, limits)
    content_type = header_map.get(CONTENT_TYPE, STRUCTURED_CONTENT_TYPE)
    if content_type.startswith("application/cloudevents") and not content_type.startswith(
        STRUCTURED_CONTENT_TYPE
    ):
        raise EventDecodeError(
            "unsupported_content_type",
            f"content-type {content_type!r} is not supported",
            hint=f"send {STRUCTURED_CONTENT_TYPE} (structured) or ce_* headers (binary mode)",
        )
    # Without ce_* headers the record is structured, whatever its content-type (as the SDKs do).
    return _decode_structured(value or b"", header_map, limits)


def _header_map(headers: Sequence[tuple[str, bytes | None]]) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, raw in headers:
        try:
            result[name.lower()] = (raw or b"").decode()
        except UnicodeDecodeError:
            raise EventDecodeError("invalid_header", f"header {name!r} is not UTF-8 text") from None
    return result


def _decode_structured(
    value: bytes, headers: Mapping[str, str], limits: DecodeLimits
) -> CloudEvent:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise _not_json(value, error) from None
    if isinstance(parsed, dict) and len(parsed) > limits.max_attributes:
        raise EventDecodeError(
            "too_many_attributes",
            f"event has {len(parsed)} attributes, more than the limit of {limits.max_attributes}",
        )
    if may_exceed(value, limits):
        walk(parsed, limits, "data_base64")
    event = _validate_fast(parsed)
    if event is None:
        try:
            event = event_adapter.validate_json(value)
        except ValidationError as error:
            raise decode_error(error) from None
    extra = event.__pydantic_extra__
    if extra and "data_base64" in extra:
        event = _with_base64_data(event, extra)
    return _with_trace_headers(event, headers)


def _not_json(value: bytes, error: orjson.JSONDecodeError) -> EventDecodeError:
    """Worded by the union, as before; orjson's word when the union would accept the value
    (NaN, Infinity, out-of-range numbers: not JSON, and not storable)."""
    try:
        event_adapter.validate_json(value)
    except ValidationError as failed:
        return decode_error(failed)
    return EventDecodeError("not_json", f"value is not JSON: {error}")


def _validate_fast(parsed: Any) -> CloudEvent | None:
    """The one model a well-formed event's ``type`` names (the union costs 3x more on the hot
    path: its callable discriminator parses the JSON into Python objects before validating).
    ``None`` when anything is off, so the union produces the error."""
    if not isinstance(parsed, dict) or not parsed.keys() >= _REQUIRED_SET:
        return None
    kind = parsed["type"]
    cls = CLASS_BY_TYPE.get(kind, ExternalEvent) if isinstance(kind, str) else ExternalEvent
    try:
        return cls.model_validate(parsed)
    except ValidationError:
        return None


def _with_base64_data(event: CloudEvent, extra: Mapping[str, Any]) -> CloudEvent:
    encoded = extra["data_base64"]
    try:
        data = base64.b64decode(encoded, validate=True)
    except (TypeError, ValueError):
        raise EventDecodeError("invalid_data", "data_base64: not valid base64") from None
    attributes = event.model_dump(exclude={"data_base64"})
    attributes["data"] = data
    return validate_event(attributes)


def _with_trace_headers(event: CloudEvent, headers: Mapping[str, str]) -> CloudEvent:
    # The event's own extension attributes win; headers fill in what the body lacks.
    if "traceparent" not in headers and "tracestate" not in headers:
        return event  # the common case, without building the dict below
    missing = {
        name: headers[name]
        for name in TRACE_HEADERS
        if name in headers and getattr(event, name) is None
    }
    return event.model_copy(update=missing) if missing else event


def _decode_binary(
    value: bytes | None, headers: Mapping[str, str], limits: DecodeLimits
) -> CloudEvent:
    attributes: dict[str, Any] = {
        name[len(CE_PREFIX) :]: text for name, text in headers.items() if name.startswith(CE_PREFIX)
    }
    for name in TRACE_HEADERS:
        if name in headers:
            attributes.setdefault(name, headers[name])
    content_type = headers.get(CONTENT_TYPE)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    attributes["data"] = _binary_data(value, content_type, limits)
    return validate_event(attributes)


def _binary_data(value: bytes | None, content_type: str | None, limits: DecodeLimits) -> Any:
    if not value:
        return None
    if is_json(content_type):
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise _data_not_json(value, error) from None
        if may_exceed(value, limits):
            walk(data, limits)
        return data
    return value


def _data_not_json(value: bytes, error: orjson.JSONDecodeError) -> EventDecodeError:
    try:
        value.decode()
    except UnicodeDecodeError as bad:
        return EventDecodeError(
            "not_utf8",
            f"data: content-type says JSON but the value is not UTF-8 text (byte {bad.start})",
            hint="send binary data with a non-JSON content-type, e.g. application/octet-stream",
        )
    return EventDecodeError(
        "not_json", f"data: content-type says JSON but the value is not: {error}"
    )
