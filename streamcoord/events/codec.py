"""CloudEvents 1.0 over Kafka: bytes and headers to typed events and back, in one namespace.

Both content modes of the CloudEvents Kafka protocol binding are read and written (structured:
the whole event as JSON in the value; binary: ``ce_*`` headers and the data as the value). The
parts live along their seams: the binding's names (:mod:`~streamcoord.events.binding`), the
limits a record must keep (:mod:`~streamcoord.events.limits`), validation and error wording
(:mod:`~streamcoord.events.validation`, :mod:`~streamcoord.events.decode_errors`), and the two
directions (:mod:`~streamcoord.events.decoding`, :mod:`~streamcoord.events.encoding`); this
module re-exports their public names.

Every decoding failure is an :class:`EventDecodeError` with a stable ``reason`` code for
dead-letter headers. Pure: no I/O, no clock.
"""

from __future__ import annotations

from streamcoord.events.binding import STRUCTURED_CONTENT_TYPE, EncodeMode
from streamcoord.events.decode_errors import DecodeReason, EventDecodeError
from streamcoord.events.decoding import decode
from streamcoord.events.encoding import encode
from streamcoord.events.limits import DEFAULT_LIMITS, DEFAULT_MAX_BYTES, DecodeLimits
from streamcoord.events.validation import event_adapter, validate_event

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
