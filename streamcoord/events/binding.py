"""Names of the CloudEvents Kafka protocol binding that both directions share.

* structured: header ``content-type: application/cloudevents+json``, the whole event as JSON in
  the value (binary data as ``data_base64``);
* binary: one ``ce_<attribute>`` header per attribute, ``content-type`` carries
  ``datacontenttype``, the value is the data itself.

W3C trace context (the CloudEvents distributed-tracing extension) also travels as plain
``traceparent``/``tracestate`` headers in both modes.
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "CE_PREFIX",
    "CONTENT_TYPE",
    "REQUIRED_ATTRIBUTES",
    "STRUCTURED_CONTENT_TYPE",
    "TRACE_HEADERS",
    "EncodeMode",
    "is_json",
]

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json"
EncodeMode = Literal["structured", "binary"]

CE_PREFIX: Final = "ce_"
CONTENT_TYPE: Final = "content-type"
TRACE_HEADERS: Final = ("traceparent", "tracestate")
#: The attributes every CloudEvent has, in the order error messages name them.
REQUIRED_ATTRIBUTES: Final = ("specversion", "id", "source", "type")
# The same pattern the CloudEvents SDKs use to decide that data is JSON.
_JSON_CONTENT_TYPE: Final = re.compile(r"^(application|text)/([a-zA-Z0-9\-.]+\+)?json(;.*)?$")


def is_json(content_type: str | None) -> bool:
    """Whether data of ``content_type`` is JSON (no content type: JSON, as the SDKs read it)."""
    return content_type is None or _JSON_CONTENT_TYPE.match(content_type) is not None
