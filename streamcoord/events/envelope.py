"""The CloudEvents 1.0 envelope: context attributes, and the base of every event's data.

Any CloudEvent whose ``type`` is not one of streamcoord's is an :class:`ExternalEvent` that
pipeline triggers may match.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ClosedData",
    "CloudEvent",
    "ExternalEvent",
    "WireData",
]


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 context attributes; extension attributes are kept as extra fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    TYPE: ClassVar[str] = ""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime | None = None
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    # Distributed-tracing extension: W3C trace context of the producer.
    traceparent: str | None = None
    tracestate: str | None = None
    data: Any = None

    @property
    def dedup_key(self) -> tuple[str, str]:
        """CloudEvents identity: producers guarantee (source, id) is unique per distinct event."""
        return (self.source, self.id)


class WireData(BaseModel):
    """An event's data, also readable as the JSON object it is on the wire (``data["run_id"]``,
    ``data.get("reason", "")``): code that read routed dicts reads the models unchanged."""

    def __getitem__(self, name: str) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dict):  # equal to the JSON object it is on the wire
            return self.model_dump() == other
        return super().__eq__(other)

    __hash__ = BaseModel.__hash__


class ClosedData(WireData):
    """Data of streamcoord's own events: no unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ExternalEvent(CloudEvent):
    """Any CloudEvent from another system (data landed, a check passed, ...)."""
