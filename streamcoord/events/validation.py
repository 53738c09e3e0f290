"""Validating an event into its typed model, and the wording of every validation failure.

One discriminated union, built once from the registry: streamcoord's own types by ``type``,
:class:`~streamcoord.events.envelope.ExternalEvent` for every other type. It alone words the
errors, so a bad record gets the same reason and message whichever path found it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Union

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from streamcoord.events.binding import REQUIRED_ATTRIBUTES
from streamcoord.events.decode_errors import DecodeReason, EventDecodeError
from streamcoord.events.envelope import CloudEvent, ExternalEvent
from streamcoord.events.registry import OWN_EVENT_CLASSES, OWN_EVENT_TYPES

__all__ = ["CLASS_BY_TYPE", "decode_error", "event_adapter", "validate_event"]

_EXTERNAL_TAG: Final = "external"


def _event_tag(value: Any) -> str | None:
    """Discriminate by ``type``; ``None`` (not a CloudEvent) when a required attribute is absent."""
    if isinstance(value, Mapping):
        if not all(name in value for name in REQUIRED_ATTRIBUTES):
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

#: The model of each of streamcoord's own ``type`` names.
CLASS_BY_TYPE: Final[Mapping[str, type[CloudEvent]]] = {cls.TYPE: cls for cls in OWN_EVENT_CLASSES}


def validate_event(attributes: Mapping[str, Any]) -> CloudEvent:
    """Validate event attributes (``data`` included) already in Python form into a typed event."""
    try:
        return event_adapter.validate_python(attributes)
    except ValidationError as error:
        raise decode_error(error) from None


def decode_error(error: ValidationError) -> EventDecodeError:
    """The union's validation failure as an :class:`EventDecodeError` with its reason code."""
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
        missing = ", ".join(name for name in REQUIRED_ATTRIBUTES if name not in given)
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
