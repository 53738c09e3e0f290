"""Why a Kafka record is not a valid event: :class:`EventDecodeError` and its stable reason codes
(written into dead-letter headers)."""

from __future__ import annotations

from typing import Literal

from streamcoord.errors import EventError

__all__ = ["DecodeReason", "EventDecodeError"]

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


class EventDecodeError(EventError):
    """Kafka record that is not a valid event; ``reason`` is a stable code for dead letters."""

    def __init__(self, reason: DecodeReason, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason: DecodeReason = reason
