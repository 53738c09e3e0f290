"""What :func:`~streamcoord.core.decide` returns: a step (the new state, the commands to carry
out, the rejection and the policy violations)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from streamcoord.core._tracing import SpanRecord
from streamcoord.events import topology
from streamcoord.events.models import CloudEvent, TimerFired

if TYPE_CHECKING:
    from streamcoord.core._records import RunChange
    from streamcoord.core._state import CoordinatorState

__all__ = ["CancelTimer", "Command", "Publish", "Rejection", "SetTimer", "Step", "Violation"]

RUNS_TOPIC = topology.RUNS
DECISIONS_TOPIC = topology.DECISIONS


@dataclass(frozen=True, slots=True)
class Publish:
    """Produce ``event`` keyed by ``key``; ``topic`` None means back onto the events topic."""

    topic: str | None
    key: str
    event: CloudEvent


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Produce ``event`` onto the events topic when ``due``; a second SetTimer with the same
    ``timer_id`` replaces the first."""

    timer_id: str
    due: datetime
    event: TimerFired


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget the timer ``timer_id`` (firing it anyway is harmless: the core ignores it)."""

    timer_id: str


Command = Publish | SetTimer | CancelTimer


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event was not accepted; the runtime sends the event to the dead-letter topic."""

    code: str
    reason: str
    policy: str | None = None  # the policy that rejected it, if one did


@dataclass(frozen=True, slots=True)
class Violation:
    """A policy the event broke; ``enforced`` False: a dry run, the event was decided anyway."""

    policy: str
    code: str
    reason: str
    enforced: bool


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one event: new state, commands in order, rejection, changed state keys,
    the spans of the attempts and runs that ended (for the runtime to export), and the runs
    whose status or stages changed, whose records the caller builds (see ``run_record``)."""

    state: CoordinatorState
    commands: tuple[Command, ...]
    rejection: Rejection | None
    changed_keys: tuple[str, ...]
    spans: tuple[SpanRecord, ...] = ()
    changed_runs: tuple[RunChange, ...] = ()
    violations: tuple[Violation, ...] = ()
