"""The events coordinator partitions send each other: matches, arrivals, pool, limit and need
traffic on the internal topic.

Only the coordinator produces them (HTTP ingest rejects their types), but they are JSON on a
topic like any other, so the reader validates them: strictly (no ``"1"`` for 1, no ``true``
for an int), fields beyond these ignored (a newer coordinator may add some during an upgrade).
The decoder leaves their data a dict; the core validates it with these models, and builds
the events it routes from them.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from streamcoord.events.models import CloudEvent, WireData

__all__ = [
    "INTERNAL_EVENT_CLASSES",
    "DataArrival",
    "DataArrivalData",
    "InternalData",
    "InternalEvent",
    "LimitAcquire",
    "LimitAcquireData",
    "LimitDeny",
    "LimitDenyData",
    "LimitGrant",
    "LimitRef",
    "LimitRelease",
    "NeedSubscribe",
    "NeedSubscribeData",
    "PoolAcquire",
    "PoolAcquireData",
    "PoolGrant",
    "PoolRelease",
    "PoolSlot",
    "RunMatch",
    "RunMatchData",
]


class InternalData(WireData):
    """Data of an internal event."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class InternalEvent(CloudEvent):
    """An event partitions route each other.

    Its ``type`` has no default, unlike the public events': the core passes it, so it is
    encoded where it always was (after ``source``), as when these events had no model.
    """


# --- admission ---------------------------------------------------------------------------------


class RunMatchData(InternalData):
    """A trigger matched: the partition that owns the run key admits the run."""

    pipeline: str
    run_key: str
    trigger: dict[str, Any] = Field(description="The matching event as triggers see it (JSON).")
    caused: list[str] = Field(description="event ids")
    params: dict[str, Any]
    rerun: bool = Field(description="Start a new generation even if a run of the key ended.")
    dedup: str = Field(description="Identity of the match: a redelivery admits nothing.")


class RunMatch(InternalEvent):
    """Routed to the owner of ``<pipeline>/<run_key>``: admit a run for a trigger match."""

    TYPE: ClassVar[str] = "streamcoord.run.match"
    type: Literal["streamcoord.run.match"]
    data: RunMatchData


class DataArrivalData(InternalData):
    """One dataset partition arrived for a data trigger of a pipeline."""

    pipeline: str
    trigger: int = Field(description="Index of the data trigger in the pipeline's triggers.")
    run_key: str
    dataset: str
    partition: str
    event: dict[str, Any] = Field(description="The arrival event as triggers see it (JSON).")
    dedup: str


class DataArrival(InternalEvent):
    """Routed to the owner of the run key: count an arrival towards a data trigger."""

    TYPE: ClassVar[str] = "streamcoord.data.arrival"
    type: Literal["streamcoord.data.arrival"]
    data: DataArrivalData


# --- pools -------------------------------------------------------------------------------------


class PoolSlot(InternalData):
    """One attempt's slot (or request for one) in a named pool."""

    pool: str
    run_id: str
    stage: str
    attempt: int


class PoolAcquireData(PoolSlot):
    priority: int = Field(description="Higher is granted first; ties in request order.")
    reply: str = Field(description="Key the grant is routed to (the run's base).")


class PoolAcquire(InternalEvent):
    """Routed to the owner of ``pool/<name>``: ask for a slot."""

    TYPE: ClassVar[str] = "streamcoord.pool.acquire"
    type: Literal["streamcoord.pool.acquire"]
    data: PoolAcquireData


class PoolGrant(InternalEvent):
    """Routed back to the run: the slot is the attempt's."""

    TYPE: ClassVar[str] = "streamcoord.pool.grant"
    type: Literal["streamcoord.pool.grant"]
    data: PoolSlot


class PoolRelease(InternalEvent):
    """Routed to the pool's owner: give the slot back (or withdraw the request)."""

    TYPE: ClassVar[str] = "streamcoord.pool.release"
    type: Literal["streamcoord.pool.release"]
    data: PoolSlot


# --- max_active_runs ---------------------------------------------------------------------------


class LimitRef(InternalData):
    """A run of a pipeline whose ``max_active_runs`` the owner of ``active/<name>`` keeps."""

    pipeline: str
    run_id: str


class LimitAcquireData(LimitRef):
    # A factory, not a plain default: the core's builder then keeps the field after the others
    # (plain defaults go first), where it always was on the wire.
    force: bool = Field(
        default_factory=lambda: False,
        description="Take a slot even above the limit (hand-over); absent: false.",
    )


class LimitAcquire(InternalEvent):
    """Routed to the limit's owner: ask for a slot for a new run."""

    TYPE: ClassVar[str] = "streamcoord.limit.acquire"
    type: Literal["streamcoord.limit.acquire"]
    data: LimitAcquireData


class LimitGrant(InternalEvent):
    """Routed back to the run: it may start."""

    TYPE: ClassVar[str] = "streamcoord.limit.grant"
    type: Literal["streamcoord.limit.grant"]
    data: LimitRef


class LimitDenyData(LimitRef):
    policy: str | None = Field(
        default_factory=lambda: None,
        description="The quota policy that rejected the run; absent: max_active_runs"
        " (over_limit: skip).",
    )


class LimitDeny(InternalEvent):
    """Routed back to the run: over the limit with ``over_limit: skip``, or over a quota with
    ``over_quota: reject``; it is skipped."""

    TYPE: ClassVar[str] = "streamcoord.limit.deny"
    type: Literal["streamcoord.limit.deny"]
    data: LimitDenyData


class LimitRelease(InternalEvent):
    """Routed to the limit's owner: the run ended (or gave up its request)."""

    TYPE: ClassVar[str] = "streamcoord.limit.release"
    type: Literal["streamcoord.limit.release"]
    data: LimitRef


# --- cross-pipeline needs ----------------------------------------------------------------------


class NeedSubscribeData(InternalData):
    """A run needs a stage of another pipeline's run; answered with ``StageOutcome`` events."""

    pipeline: str
    run_key: str
    stage: str
    subscriber: str = Field(description="Run id of the run that needs the stage.")
    reply: str = Field(description="Key the outcomes are routed to (the subscriber's base).")
    need: str = Field(description="The need's name in the subscriber's spec.")


class NeedSubscribe(InternalEvent):
    """Routed to the owner of ``<pipeline>/<run_key>``: subscribe to a stage's outcome."""

    TYPE: ClassVar[str] = "streamcoord.need.subscribe"
    type: Literal["streamcoord.need.subscribe"]
    data: NeedSubscribeData


#: Every internal event class, in a fixed order. The decoder does not type them (their data
#: stays a dict until the core validates it), so they are not in ``OWN_EVENT_CLASSES``.
INTERNAL_EVENT_CLASSES: tuple[type[CloudEvent], ...] = (
    RunMatch,
    DataArrival,
    PoolAcquire,
    PoolGrant,
    PoolRelease,
    LimitAcquire,
    LimitGrant,
    LimitDeny,
    LimitRelease,
    NeedSubscribe,
)
