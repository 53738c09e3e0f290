"""The event contract: CloudEvents 1.0 models, their Kafka encoding, and topic declarations.

Pure (no I/O, no clock, no asyncio) except :func:`make_event`, whose default id is random: it is
for emitters and tests, never for the core.
"""

from streamcoord.events.codec import (
    DEFAULT_MAX_BYTES,
    STRUCTURED_CONTENT_TYPE,
    DecodeReason,
    EncodeMode,
    EventDecodeError,
    decode,
    encode,
    event_adapter,
    validate_event,
)
from streamcoord.events.factory import make_event
from streamcoord.events.models import *  # noqa: F403  # re-exported as listed in models.__all__
from streamcoord.events.models import __all__ as _models_all

__all__ = [  # noqa: PLE0604  # models' names are spliced in so the list has one source
    "DEFAULT_MAX_BYTES",
    "STRUCTURED_CONTENT_TYPE",
    "DecodeReason",
    "EncodeMode",
    "EventDecodeError",
    "decode",
    "encode",
    "event_adapter",
    "make_event",
    "validate_event",
    *_models_all,
]
