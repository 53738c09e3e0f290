"""What the read model answers: runs, their stages and attempts, audit trails, dead letters.

These pydantic models are the read side's contract: the store returns them and the HTTP API
serves them as they are (their JSON Schemas are the API's response schemas). Times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

__all__ = [
    "AuditEntry",
    "CommandOutcome",
    "CommandStatus",
    "DeadLetterEntry",
    "Page",
    "PipelineStats",
    "RecentRun",
    "RunDetail",
    "RunQuery",
    "RunSort",
    "RunSummary",
    "SortOrder",
    "StageAttempt",
    "StageView",
    "StatusChange",
]

T = TypeVar("T")

RunSort = Literal["created_at", "updated_at"]
CommandStatus = Literal["unseen", "received", "decided", "rejected"]
SortOrder = Literal["asc", "desc"]


class _ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Page(_ReadModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next, None on the last page.

    The cursor is opaque: it encodes the position after the last item under the same filters and
    sort, so rows added meanwhile never shift a page (keyset pagination).
    """

    items: list[T]
    next_cursor: str | None = None


class RunQuery(_ReadModel):
    """Filters, sort and page of a run list; every filter given must hold (AND)."""

    pipeline: str | None = None
    status: str | None = Field(None, description="queued, active, succeeded, failed, ...")
    run_key: str | None = None
    requested_by: str | None = Field(None, description="Principal or source of the first cause.")
    since: datetime | None = Field(None, description="Created at or after this time.")
    until: datetime | None = Field(None, description="Created before this time.")
    sort: RunSort = "created_at"
    order: SortOrder = "desc"
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, description="next_cursor of the previous page.")


class RunSummary(_ReadModel):
    """A run as a list shows it."""

    run_id: str
    pipeline: str
    run_key: str
    status: str
    requested_by: str | None = Field(
        None, description="Who or what asked for the run: the first cause's principal or source."
    )
    spec_version: str | None = None
    created_at: datetime = Field(description="Time of the run's first record.")
    updated_at: datetime = Field(description="Time of the run's latest record.")
    finished_at: datetime | None = None
    duration_seconds: float | None = Field(None, description="created_at to finished_at.")


class StatusChange(_ReadModel):
    """The run entered ``status`` at ``at`` (a record coalesces changes within one batch)."""

    status: str
    at: datetime
    caused_by: str | None = Field(None, description="Id of the event that caused the change.")


class StageAttempt(_ReadModel):
    """One attempt of one stage: the coordinator's view joined with the executor's reports."""

    attempt: int = Field(ge=1)
    status: str
    triggered_at: datetime | None = Field(None, description="When the coordinator triggered it.")
    started_at: datetime | None = Field(None, description="When the executor reported a start.")
    ended_at: datetime | None = Field(None, description="When the coordinator decided its end.")
    duration_seconds: float | None = Field(
        None, description="From the start (else the trigger) to the end."
    )
    outputs: dict[str, JsonValue] = Field(default_factory=dict)
    error: str | None = None
    worker: str | None = Field(None, description="Source of the executor's reports.")
    trace_id: str | None = None
    span_id: str | None = Field(None, description="The attempt's span (W3C, 16 hex).")


class StageView(_ReadModel):
    """A stage of a run: its current status and every attempt, oldest first."""

    name: str
    status: str
    attempts: list[StageAttempt] = Field(default_factory=list)


class RunDetail(RunSummary):
    """A run with everything the read model holds about it."""

    partition: int | None = Field(
        None, description="Partition of streamcoord.runs holding the run's records."
    )
    params: dict[str, JsonValue] = Field(default_factory=dict)
    trigger_type: str | None = Field(None, description="Type of the event that created the run.")
    trace_id: str | None = None
    caused_by: list[str] = Field(default_factory=list, description="Ids of causing events.")
    status_changes: list[StatusChange] = Field(default_factory=list)
    stages: list[StageView] = Field(default_factory=list)


class AuditEntry(_ReadModel):
    """One thing that touched a run: an event, a coordinator decision or a status change.

    Entries are ordered by time, then by their position in Kafka (``position``).
    """

    at: datetime
    kind: Literal["event", "decision", "status"]
    type: str = Field(description="Event type, decision action, or the status entered.")
    stage: str | None = None
    actor: str = Field(
        description="Who or what caused it: a principal or source; 'coordinator' for decisions."
    )
    summary: str = Field("", description="Decision reason, error, or a short description.")
    event_id: str | None = None
    causes: list[str] = Field(default_factory=list, description="Ids of the causing events.")
    position: str = Field(description="topic:partition:offset of the record it comes from.")
    data: JsonValue = None


class DeadLetterEntry(_ReadModel):
    """A record the coordinator refused, with the reason it gave."""

    partition: int
    offset: int
    at: datetime | None = Field(None, description="Time the dead letter was written.")
    reason: str = Field(description="Stable code, e.g. not_json or unknown_run.")
    error: str = ""
    origin: str | None = Field(None, description="topic:partition:offset of the refused record.")
    key: str | None = None
    event_type: str | None = None
    event_id: str | None = Field(None, description="Id of the refused event, if it decodes.")
    value_preview: str = Field("", description="The first bytes of the value as text.")


class CommandOutcome(_ReadModel):
    """What became of an event sent to the coordinator (a command, by its CloudEvents id).

    ``unseen``: not (yet) projected from the events topic; ``received``: on the topic, with no
    outcome recorded yet (a pause or resume never has one); ``decided``: decisions or runs
    name it as their cause (``decisions`` say what was done, ``ignored`` included);
    ``rejected``: the coordinator dead-lettered it (``rejection`` says why).
    """

    event_id: str
    status: CommandStatus
    received: AuditEntry | None = None
    rejection: DeadLetterEntry | None = None
    decisions: list[AuditEntry] = Field(default_factory=list)
    runs: list[str] = Field(default_factory=list, description="Runs it created or changed.")


class RecentRun(_ReadModel):
    """A finished run's duration, for charts."""

    run_id: str
    status: str
    finished_at: datetime
    duration_seconds: float


class PipelineStats(_ReadModel):
    """Runs of one pipeline created in a window, counted by status, and its latest durations."""

    pipeline: str
    counts: dict[str, int] = Field(default_factory=dict)
    recent: list[RecentRun] = Field(default_factory=list, description="Latest finished first.")
