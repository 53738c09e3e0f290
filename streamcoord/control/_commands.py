"""The command events an operator sends: request, cancel, retry, pause, resume.

Each carries who sent it in the ``scprincipal`` extension attribute (the API's authenticated
caller, the CLI's ``user@host``), so the audit trail says who, not only which tool.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import JsonValue

from streamcoord.auth import PRINCIPAL_ATTRIBUTE
from streamcoord.events.factory import make_event
from streamcoord.events.models import (
    CloudEvent,
    PipelinePause,
    PipelineResume,
    RunCancel,
    RunRequested,
    StageRetry,
)
from streamcoord.events.principal import with_principal

__all__ = [
    "PRINCIPAL_ATTRIBUTE",
    "cancel_run",
    "default_run_key",
    "pause_pipeline",
    "principal_of",
    "request_run",
    "resume_pipeline",
    "retry_stage",
]


def default_run_key(now: datetime) -> str:
    """A manual run's key when none is given: the UTC time to the second."""
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def principal_of(event: CloudEvent) -> str | None:
    """Who sent ``event``, when it says."""
    extra = event.__pydantic_extra__ or {}
    value = extra.get(PRINCIPAL_ATTRIBUTE)
    return value if isinstance(value, str) else None


def _command(type_: str, source: str, principal: str | None, data: object) -> CloudEvent:
    if principal:
        return with_principal(make_event(type_, source, data), principal)
    return make_event(type_, source, data)


def request_run(
    pipeline: str, run_key: str, params: dict[str, JsonValue], *, source: str,
    principal: str | None = None,
) -> CloudEvent:  # fmt: skip
    """Start a run of ``pipeline`` for ``run_key`` (it needs a manual trigger)."""
    data = {"pipeline": pipeline, "run_key": run_key, "params": params}
    return _command(RunRequested.TYPE, source, principal, data)


def cancel_run(
    run_id: str, reason: str, *, source: str, principal: str | None = None
) -> CloudEvent:
    """Cancel a run and its unfinished stages."""
    return _command(RunCancel.TYPE, source, principal, {"run_id": run_id, "reason": reason})


def retry_stage(
    run_id: str, stage: str, *, source: str, principal: str | None = None
) -> CloudEvent:
    """Retry a failed (or timed out) stage now."""
    return _command(StageRetry.TYPE, source, principal, {"run_id": run_id, "stage": stage})


def pause_pipeline(pipeline: str, *, source: str, principal: str | None = None) -> CloudEvent:
    """Hold new runs and stages of ``pipeline``."""
    return _command(PipelinePause.TYPE, source, principal, {"pipeline": pipeline})


def resume_pipeline(pipeline: str, *, source: str, principal: str | None = None) -> CloudEvent:
    """Undo a pause."""
    return _command(PipelineResume.TYPE, source, principal, {"pipeline": pipeline})
