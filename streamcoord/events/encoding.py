"""Typed event to a Kafka record (value and headers), in either content mode of the CloudEvents
Kafka protocol binding (see :mod:`~streamcoord.events.binding`).

Events whose ``data`` is exactly the model their field declares (every event the core makes) take
a fast path: the envelope assembled here, ``data`` serialized by its model's own JSON serializer.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Final

import orjson
from pydantic import BaseModel, TypeAdapter

from streamcoord.events.binding import (
    CE_PREFIX,
    CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    TRACE_HEADERS,
    EncodeMode,
    is_json,
)
from streamcoord.events.envelope import CloudEvent

__all__ = ["encode"]


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
        (name, str(attributes[name]).encode()) for name in TRACE_HEADERS if name in attributes
    ]
    if mode == "structured":
        return _encode_structured(event, attributes, json_data), [
            (CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode()),
            *trace,
        ]
    return _encode_binary(event, attributes, trace, json_data)


_STRUCTURED_HEADER: Final = (CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.encode())
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
            headers.append((CONTENT_TYPE, str(attribute).encode()))
        elif name not in TRACE_HEADERS:
            headers.append((CE_PREFIX + name, _header_text(attribute).encode()))
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
    if isinstance(data, str) and not is_json(event.datacontenttype):
        return data.encode()
    return orjson.dumps(json_data)
