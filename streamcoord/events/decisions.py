"""Decision records: why the coordinator did what it did, chained per partition."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from streamcoord.events.envelope import ClosedData, CloudEvent

__all__ = [
    "ChainLink",
    "Decision",
    "DecisionCause",
    "DecisionRecord",
]


class DecisionCause(ClosedData):
    """The event a decision was made on."""

    type: str
    source: str
    id: str


class ChainLink(ClosedData):
    """A decision record's place in its coordinator partition's hash chain (tamper evidence)."""

    partition: int = Field(ge=0, description="The coordinator partition whose chain this is.")
    seq: int = Field(ge=1, description="1 for the partition's first decision, then +1 each.")
    prev: str = Field(description="The previous record's hash on this chain; empty for seq 1.")
    hash: str = Field(
        "", description="sha256 (hex) of this record's canonical JSON without this field."
    )


class Decision(ClosedData):
    """Why a stage changed state: the rule that held and the events that satisfied it."""

    run_id: str
    stage: str | None = None
    action: str
    reason: str
    caused_by: list[str] = Field(default_factory=list)
    principal: str | None = Field(
        None, description="Who sent the event decided (None: nobody vouched for it)."
    )
    event: DecisionCause | None = None
    chain: ChainLink | None = None


class DecisionRecord(CloudEvent):
    """Why the coordinator did what it did (on ``streamcoord.decisions``)."""

    TYPE: ClassVar[str] = "streamcoord.decision"
    type: Literal["streamcoord.decision"] = "streamcoord.decision"
    data: Decision
