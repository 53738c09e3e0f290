"""CloudEvents 1.0 over Kafka: bytes and headers to typed events and back.

Both content modes of the CloudEvents Kafka protocol binding are read and written:

* structured: header ``content-type: application/cloudevents+json``, the whole event as JSON in
  the value (binary data as ``data_base64``);
* binary: one ``ce_<attribute>`` header per attribute, ``content-type`` carries
  ``datacontenttype``, the value is the data itself.

W3C trace context (the CloudEvents distributed-tracing extension) also travels as plain
``traceparent``/``tracestate`` headers in both modes, so OpenTelemetry propagators find it without
parsing the value.

Decoding validates through a discriminated union built once: streamcoord's own types by
``type``, :class:`~streamcoord.events.models.ExternalEvent` for every other type. Structured
values take a fast path first (``orjson`` parse, the class looked up by ``type``, one model
validated); anything the fast path does not accept goes through the union, which alone words
the errors, so a bad record gets the same reason and message either way.
Every failure is an :class:`EventDecodeError` with a stable ``reason`` code for dead-letter
headers. :class:`DecodeLimits` bounds a record before anything deeper than a JSON parse looks at
it (size, nesting, string length, attribute count), so no later step meets input that only
fails deep inside a serializer. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any, Final, Literal, Union

import orjson
from pydantic import BaseModel, Discriminator, Tag, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from streamcoord.errors import EventError
from streamcoord.events.models import OWN_EVENT_CLASSES, OWN_EVENT_TYPES, CloudEvent, ExternalEvent

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "STRUCTURED_CONTENT_TYPE",
    "DecodeLimits",
    "DecodeReason",
    "EncodeMode",
    "EventDecodeError",
    "decode",
    "encode",
    "event_adapter",
    "validate_event",
]

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
#: Kafka's default ``message.max.bytes`` is about 1 MiB; an event larger than that is a mistake.
DEFAULT_MAX_BYTES: Final = 1024 * 1024

EncodeMode = Literal["structured", "binary"]
DecodeReason = Literal[
    "oversized",
    "too_deep",
    "string_too_long",
    "too_many_attributes",
    "not_utf8",
    "invalid_header",
    "unsupported_content_type",
    "not_json",
    "not_cloudevent",
    "unsupported_specversion",
    "invalid_attribute",
    "invalid_data",
]

_CE_PREFIX: Final = "ce_"
_CONTENT_TYPE: Final = "content-type"
_TRACE_HEADERS: Final = ("traceparent", "tracestate")
_REQUIRED: Final = ("specversion", "id", "source", "type")
_REQUIRED_SET: Final = frozenset(_REQUIRED)
_EXTERNAL_TAG: Final = "external"
# The same pattern the CloudEvents SDKs use to decide that data is JSON.
_JSON_CONTENT_TYPE: Final = re.compile(r"^(application|text)/([a-zA-Z0-9\-.]+\+)?json(;.*)?$")


@dataclass(frozen=True)
class DecodeLimits:
    """What one record may hold; a record over a limit is refused before it is validated."""

    #: value plus header names and values, in bytes
    max_bytes: int = DEFAULT_MAX_BYTES
    #: how deeply JSON arrays and objects may nest (a structured event's envelope is level 1,
    #: binary-mode data level 1): deeper data would fail later, in a serializer
    max_depth: int = 64
    #: characters in any one string: attribute, header, object key or string in data (binary
    #: data and ``data_base64`` are bounded by ``max_bytes`` only)
    max_string: int = 65_536
    #: attributes of a structured event; headers of a record
    max_attributes: int = 64


DEFAULT_LIMITS: Final = DecodeLimits()


class EventDecodeError(EventError):
    """Kafka record that is not a valid event; ``reason`` is a stable code for dead letters."""

    def __init__(self, reason: DecodeReason, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason: DecodeReason = reason


def _event_tag(value: Any) -> str | None:
    """Discriminate by ``type``; ``None`` (not a CloudEvent) when a required attribute is absent."""
    if isinstance(value, Mapping):
        if not all(name in value for name in _REQUIRED):
            return None
        kind = value["type"]
        # a type that is not a string (a list, an object: unhashable) fails in the fallback
        return kind if isinstance(kind, str) and kind in OWN_EVENT_TYPES else _EXTERNAL_TAG
    if isinstance(value, CloudEvent):
        return value.type if value.type in OWN_EVENT_TYPES else _EXTERNAL_TAG
    return _EXTERNAL_TAG  # not an object: the fallback model reports "should be an object"


def _build_adapter() -> TypeAdapter[CloudEvent]:
    members = tuple(Annotated[cls, Tag(cls.TYPE)] for cls in OWN_EVENT_CLASSES)
    members += (Annotated[ExternalEvent, Tag(_EXTERNAL_TAG)],)
    union = Union[members]  # type: ignore[valid-type]  # noqa: UP007  # built from the registry at run time
    annotated = Annotated[
        union,
        Discriminator(
            _event_tag,
            custom_error_type="not_cloudevent",
            custom_error_message="missing a required CloudEvents attribute",
        ),
    ]
    return TypeAdapter(annotated)


#: Validates any event (a dict or JSON bytes) into its typed model; built once at import.
event_adapter: TypeAdapter[CloudEvent] = _build_adapter()

_CLASS_BY_TYPE: Final[Mapping[str, type[CloudEvent]]] = {cls.TYPE: cls for cls in OWN_EVENT_CLASSES}


# --- decoding ---------------------------------------------------------------------------------


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
        raise _string_too_long("a header", longest, limits)
    for name in header_map:
        if name.startswith(_CE_PREFIX):
            return _decode_binary(value, header_map, limits)
    content_type = header_map.get(_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE)
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


def validate_event(attributes: Mapping[str, Any]) -> CloudEvent:
    """Validate event attributes (``data`` included) already in Python form into a typed event."""
    try:
        return event_adapter.validate_python(attributes)
    except ValidationError as error:
        raise _decode_error(error) from None


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
    if _may_exceed(value, limits):
        _walk(parsed, limits, "data_base64")
    event = _validate_fast(parsed)
    if event is None:
        try:
            event = event_adapter.validate_json(value)
        except ValidationError as error:
            raise _decode_error(error) from None
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
        return _decode_error(failed)
    return EventDecodeError("not_json", f"value is not JSON: {error}")


def _may_exceed(value: bytes, limits: DecodeLimits) -> bool:
    """Whether the JSON ``value`` could nest too deep or hold too long a string: only one with
    enough brackets or bytes can, so most values are never walked."""
    return len(value) > limits.max_string or (
        value.count(b"[") + value.count(b"{") > limits.max_depth
    )


def _walk(parsed: Any, limits: DecodeLimits, skip: str = "") -> None:
    """Refuse ``parsed`` if it nests too deep or holds too long a string."""
    # iterative: a recursive walk would hit Python's recursion limit on the input it refuses
    stack: list[tuple[Any, int]] = [(parsed, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if len(node) > limits.max_string:
                raise _string_too_long("a string", len(node), limits)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > limits.max_depth:
            raise EventDecodeError(
                "too_deep",
                f"JSON nests deeper than the limit of {limits.max_depth} levels",
                hint="flatten the data or send it by reference",
            )
        if isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
            continue
        for key, item in node.items():
            if len(key) > limits.max_string:
                raise _string_too_long("an object key", len(key), limits)
            if not (depth == 1 and key == skip):
                stack.append((item, depth + 1))


def _string_too_long(what: str, length: int, limits: DecodeLimits) -> EventDecodeError:
    return EventDecodeError(
        "string_too_long",
        f"{what} of {length} characters exceeds the limit of {limits.max_string}",
        hint="send large payloads by reference (a URI in data), not inline",
    )


def _validate_fast(parsed: Any) -> CloudEvent | None:
    """The one model a well-formed event's ``type`` names (the union costs 3x more on the hot
    path: its callable discriminator parses the JSON into Python objects before validating).
    ``None`` when anything is off, so the union produces the error."""
    if not isinstance(parsed, dict) or not parsed.keys() >= _REQUIRED_SET:
        return None
    kind = parsed["type"]
    cls = _CLASS_BY_TYPE.get(kind, ExternalEvent) if isinstance(kind, str) else ExternalEvent
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
        for name in _TRACE_HEADERS
        if name in headers and getattr(event, name) is None
    }
    return event.model_copy(update=missing) if missing else event


def _decode_binary(
    value: bytes | None, headers: Mapping[str, str], limits: DecodeLimits
) -> CloudEvent:
    attributes: dict[str, Any] = {
        name[len(_CE_PREFIX) :]: text
        for name, text in headers.items()
        if name.startswith(_CE_PREFIX)
    }
    for name in _TRACE_HEADERS:
        if name in headers:
            attributes.setdefault(name, headers[name])
    content_type = headers.get(_CONTENT_TYPE)
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    attributes["data"] = _binary_data(value, content_type, limits)
    return validate_event(attributes)


def _binary_data(value: bytes | None, content_type: str | None, limits: DecodeLimits) -> Any:
    if not value:
        return None
    if content_type is None or _JSON_CONTENT_TYPE.match(content_type):
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError as error:
            raise _data_not_json(value, error) from None
        if _may_exceed(value, limits):
            _walk(data, limits)
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


def _decode_error(error: ValidationError) -> EventDecodeError:
    details = error.errors(include_url=False)
    first = details[0]
    reason = _reason(first)
    if reason == "not_json":
        return EventDecodeError(reason, f"value is not JSON: {first['msg']}")
    if reason == "not_cloudevent":
        return EventDecodeError(reason, _not_cloudevent(first), hint=_ATTRIBUTES_HINT)
    problems = "; ".join(_describe(detail) for detail in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    hint = "streamcoord reads CloudEvents 1.0" if reason == "unsupported_specversion" else ""
    return EventDecodeError(reason, f"{_subject(first)}: {problems}{more}", hint=hint)


_ATTRIBUTES_HINT: Final = "a CloudEvent needs specversion, id, source and type"


def _not_cloudevent(detail: ErrorDetails) -> str:
    given = detail["input"]
    if isinstance(given, Mapping):
        missing = ", ".join(name for name in _REQUIRED if name not in given)
        return f"not a CloudEvent: missing required attribute(s) {missing}"
    return f"not a CloudEvent: expected a JSON object, got {type(given).__name__}"


def _reason(detail: ErrorDetails) -> DecodeReason:
    kind, loc = detail["type"], detail["loc"]
    if kind == "json_invalid":
        return "not_json"
    if kind in {"not_cloudevent", "model_type"}:
        return "not_cloudevent"
    field = loc[1] if len(loc) > 1 else None
    if field == "specversion":
        return "unsupported_specversion"
    if field == "data":
        return "invalid_data"
    return "invalid_attribute"


def _subject(detail: ErrorDetails) -> str:
    loc = detail["loc"]
    return f"invalid {loc[0]} event" if loc and loc[0] != _EXTERNAL_TAG else "invalid event"


def _describe(detail: ErrorDetails) -> str:
    path = ".".join(str(part) for part in detail["loc"][1:])
    return f"{path}: {detail['msg']}" if path else detail["msg"]


# --- encoding ---------------------------------------------------------------------------------


def encode(
    event: CloudEvent, mode: EncodeMode = "structured"
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Encode an event as a Kafka record value and headers in the given content mode."""
    if mode == "structured":
        value = _structured_fast(event)
        if value is not None:
            return value, _structured_headers(event)
    attributes, json_data = _attributes(event)
    trace: list[tuple[str, bytes]] = [
        (name, str(attributes[name]).encode()) for name in _TRACE_HEADERS if name in attributes
    ]
    if mode == "structured":
        return _encode_structured(event, attributes, json_data), [
            (_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode()),
            *trace,
        ]
    return _encode_binary(event, attributes, trace, json_data)


_STRUCTURED_HEADER: Final = (_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode())
_DATETIME: Final = TypeAdapter(datetime)
_DATETIME_TEXT: dict[tuple[datetime, Any], str] = {}
_DATETIME_TEXT_LIMIT: Final = 256
_last_datetime: tuple[datetime | None, str] = (None, "")
# Per event class: the model its ``data`` field declares, or None when that is not a model.
_DATA_MODEL: dict[type[CloudEvent], type[BaseModel] | None] = {}


def _structured_fast(event: CloudEvent) -> bytes | None:
    """The structured value :func:`_encode_structured` would produce, or None to let it.

    Taken when ``data`` is exactly the model its field declares (every event the core makes)
    and every other attribute is a string (``time`` a datetime): the attributes are put
    together here and ``data`` is serialized by its model's own JSON serializer, which writes
    the bytes orjson writes for the same values (floats and strings included), at half the cost
    of dumping to Python first. Integers beyond 64 bits, which orjson refuses, are the
    exception: they encode here instead of raising.
    """
    cls = type(event)
    model = _DATA_MODEL.get(cls, BaseModel)
    if model is BaseModel:
        model = _DATA_MODEL[cls] = _declared_model(cls)
    data = event.data
    if model is None or type(data) is not model:
        return None
    envelope: dict[str, str] = {}
    for name, value in event.__dict__.items():
        if type(value) is str and name != "data":
            envelope[name] = value
        elif name == "time" and type(value) is datetime:
            envelope[name] = _datetime_text(value)
        elif value is not None and name != "data":
            return None
    extra = event.__pydantic_extra__
    if extra:
        for name, value in extra.items():
            if type(value) is str:
                envelope[name] = value
            elif value is not None:
                return None
    head = orjson.dumps(envelope)
    # the envelope always has specversion, id, source and type: it is never "{}"
    return b'%s,"data":%s}' % (head[:-1], data.__pydantic_serializer__.to_json(data))


def _declared_model(cls: type[CloudEvent]) -> type[BaseModel] | None:
    declared = cls.model_fields["data"].annotation
    return declared if isinstance(declared, type) and issubclass(declared, BaseModel) else None


def _datetime_text(value: datetime) -> str:
    """Pydantic's JSON text of ``value``; the events of one decision share one time, and the
    events of a batch a few, so the last one and a bounded table are kept."""
    global _last_datetime  # noqa: PLW0603  # a one-entry memo
    last = _last_datetime
    if last[0] is value:
        return last[1]
    # Equal instants in different zones are equal keys; the zone keeps their texts apart.
    key = (value, value.tzinfo)
    text = _DATETIME_TEXT.get(key)
    if text is None:
        if len(_DATETIME_TEXT) >= _DATETIME_TEXT_LIMIT:
            _DATETIME_TEXT.clear()
        text = _DATETIME_TEXT[key] = _DATETIME.dump_python(value, mode="json")
    _last_datetime = (value, text)
    return text


def _structured_headers(event: CloudEvent) -> list[tuple[str, bytes]]:
    headers = [_STRUCTURED_HEADER]
    if event.traceparent is not None:
        headers.append(("traceparent", event.traceparent.encode()))
    if event.tracestate is not None:
        headers.append(("tracestate", event.tracestate.encode()))
    return headers


def _attributes(event: CloudEvent) -> tuple[dict[str, Any], Any]:
    """The non-null attributes in JSON form, and ``data`` in JSON form (``None`` for bytes).

    One dump for both: dumping is most of the encode cost. Bytes stay out of it (JSON mode
    would try to read them as UTF-8 text)."""
    binary = isinstance(event.data, bytes | bytearray)
    dumped = event.model_dump(mode="json", exclude={"data"} if binary else None)
    json_data = dumped.pop("data", None)
    return {name: value for name, value in dumped.items() if value is not None}, json_data


def _encode_structured(event: CloudEvent, attributes: dict[str, Any], json_data: Any) -> bytes:
    data = event.data
    if isinstance(data, bytes | bytearray):
        attributes["data_base64"] = base64.b64encode(data).decode()
    elif data is not None:
        attributes["data"] = json_data
    return orjson.dumps(attributes)


def _encode_binary(
    event: CloudEvent, attributes: dict[str, Any], trace: list[tuple[str, bytes]], json_data: Any
) -> tuple[bytes, list[tuple[str, bytes]]]:
    headers: list[tuple[str, bytes]] = []
    for name, attribute in attributes.items():
        if name == "datacontenttype":
            headers.append((_CONTENT_TYPE, str(attribute).encode()))
        elif name not in _TRACE_HEADERS:
            headers.append((_CE_PREFIX + name, _header_text(attribute).encode()))
    headers.extend(trace)
    return _binary_value(event, json_data), headers


def _header_text(attribute: Any) -> str:
    if isinstance(attribute, bool):
        return "true" if attribute else "false"
    return str(attribute)


def _binary_value(event: CloudEvent, json_data: Any) -> bytes:
    data = event.data
    if data is None:
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if isinstance(data, str) and not _is_json(event.datacontenttype):
        return data.encode()
    return orjson.dumps(json_data)


def _is_json(content_type: str | None) -> bool:
    return content_type is None or _JSON_CONTENT_TYPE.match(content_type) is not None
