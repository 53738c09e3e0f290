"""Building events for emitters, tools and tests.

:func:`make_event` draws a random id (uuid4) when none is given. The pure core must never call
it: the core derives every id it emits from its inputs, so that a replay produces the same ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from streamcoord.events.codec import validate_event
from streamcoord.events.models import CloudEvent

__all__ = ["make_event"]


def make_event(
    type: str,  # shadows a builtin on purpose: CloudEvents attribute is called "type"
    source: str,
    data: Any = None,
    *,
    id: str | None = None,  # shadows a builtin on purpose: CloudEvents attribute is called "id"
    subject: str | None = None,
    time: datetime | None = None,
    datacontenttype: str | None = "application/json",
    traceparent: str | None = None,
    tracestate: str | None = None,
    **extensions: Any,
) -> CloudEvent:
    """Build and validate an event of any type; streamcoord's types come back as their model.

    ``data`` may be a dict or a data model. ``id`` defaults to a random uuid4 (never use the
    default inside the core). Raises ``EventDecodeError`` when the event would not validate.
    """
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": id if id is not None else str(uuid.uuid4()),
        "source": source,
        "type": type,
        "subject": subject,
        "time": time,
        "datacontenttype": datacontenttype,
        "traceparent": traceparent,
        "tracestate": tracestate,
        "data": data,
        **extensions,
    }
    return validate_event({name: value for name, value in attributes.items() if value is not None})
