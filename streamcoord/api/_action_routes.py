"""Actions: each is one command event on Kafka with the caller as principal, answered 202 with
the command's id and a link that shows whether the coordinator accepted or rejected it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Response

from streamcoord.api._problems import ApiProblem, problem_responses
from streamcoord.api._read_routes import PipelineName, RunId, Services, Viewer, _pipeline
from streamcoord.api._schemas import CancelBody, CommandAccepted, CommandView, RunRequestBody
from streamcoord.api._security import require
from streamcoord.api._services import SOURCE, ApiServices
from streamcoord.auth import Principal, Role, audit_action
from streamcoord.control import (
    CommandState,
    TrackedCommand,
    cancel_run,
    default_run_key,
    pause_pipeline,
    request_run,
    resume_pipeline,
    retry_stage,
)
from streamcoord.emit import EmitError
from streamcoord.events.models import CloudEvent
from streamcoord.readmodel import CommandOutcome

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
Operator = Annotated[Principal, Depends(require(Role.operator))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
_ACTED = problem_responses("forbidden", "broker-unavailable")
_ON_PIPELINE = problem_responses("forbidden", "unknown-pipeline", "broker-unavailable")


async def _send(
    services: ApiServices, event: CloudEvent, principal: Principal, subject: str,
    response: Response,
) -> CommandAccepted:  # fmt: skip
    try:
        command = await services.commands.send(event, principal, subject)
    except EmitError as error:
        raise ApiProblem(
            "broker-unavailable", error.message, headers={"Retry-After": "1"}
        ) from None
    audit_action(principal, event.type, subject, command.id)
    link = f"/api/v1/commands/{command.id}"
    response.headers["Location"] = link
    return CommandAccepted(id=command.id, type=command.type, state=command.state, link=link)


@router.post("/pipelines/{pipeline}/runs", status_code=202, tags=["actions"],
             responses=_ON_PIPELINE)  # fmt: skip
async def request_a_run(
    pipeline: PipelineName, principal: Operator, services: Services, response: Response,
    body: Annotated[RunRequestBody | None, Body()] = None,
) -> CommandAccepted:  # fmt: skip
    """Request a run (the pipeline needs a manual trigger; the coordinator rejects it
    otherwise, with reason ``manual_not_allowed``)."""
    _pipeline(services, pipeline)
    body = body or RunRequestBody()
    key = body.run_key or default_run_key(datetime.now(UTC))
    event = request_run(pipeline, key, body.params, source=SOURCE, principal=principal.name)
    return await _send(services, event, principal, f"{pipeline}/{key}", response)


@router.post("/runs/{run_id:path}/cancel", status_code=202, tags=["actions"], responses=_ACTED)
async def cancel_a_run(
    run_id: RunId, principal: Operator, services: Services, response: Response,
    body: Annotated[CancelBody | None, Body()] = None,
) -> CommandAccepted:  # fmt: skip
    """Cancel a run and its unfinished stages."""
    reason = body.reason if body else ""
    event = cancel_run(run_id, reason, source=SOURCE, principal=principal.name)
    return await _send(services, event, principal, run_id, response)


@router.post("/runs/{run_id:path}/stages/{stage}/retry", status_code=202, tags=["actions"],
             responses=_ACTED)  # fmt: skip
async def retry_a_stage(
    run_id: RunId, stage: Annotated[str, Path(min_length=1)], principal: Operator,
    services: Services, response: Response,
) -> CommandAccepted:  # fmt: skip
    """Retry a failed (or timed out) stage now."""
    event = retry_stage(run_id, stage, source=SOURCE, principal=principal.name)
    return await _send(services, event, principal, f"{run_id} {stage}", response)


@router.post("/pipelines/{pipeline}/pause", status_code=202, tags=["actions"],
             responses=_ON_PIPELINE)  # fmt: skip
async def pause_a_pipeline(
    pipeline: PipelineName, principal: Admin, services: Services, response: Response
) -> CommandAccepted:
    """Start no new runs or stages of the pipeline (matches are held) until it is resumed."""
    _pipeline(services, pipeline)
    event = pause_pipeline(pipeline, source=SOURCE, principal=principal.name)
    return await _send(services, event, principal, pipeline, response)


@router.post("/pipelines/{pipeline}/resume", status_code=202, tags=["actions"],
             responses=_ON_PIPELINE)  # fmt: skip
async def resume_a_pipeline(
    pipeline: PipelineName, principal: Admin, services: Services, response: Response
) -> CommandAccepted:
    """Undo a pause: held matches are admitted in arrival order."""
    _pipeline(services, pipeline)
    event = resume_pipeline(pipeline, source=SOURCE, principal=principal.name)
    return await _send(services, event, principal, pipeline, response)


def _view(command: TrackedCommand, outcome: CommandOutcome) -> CommandView:
    return CommandView(
        id=command.id, type=command.type, principal=command.principal, subject=command.subject,
        state=command.state, reason=command.reason, message=command.message,
        partition=command.partition, offset=command.offset, sent_at=command.sent_at,
        decided_at=command.decided_at, runs=outcome.runs,
    )  # fmt: skip


def _from_store(outcome: CommandOutcome) -> CommandView:
    """A command another server sent (or this one before a restart), as the store knows it."""
    received = outcome.received
    rejection = outcome.rejection
    state: CommandState = "pending"
    if outcome.status == "decided":
        state = "accepted"
    elif outcome.status == "rejected":
        state = "rejected"
    return CommandView(
        id=outcome.event_id, type=received.type if received else "",
        principal=received.actor if received else "", subject="", state=state,
        reason=rejection.reason if rejection else None,
        message=rejection.error if rejection else "",
        sent_at=received.at if received else None, runs=outcome.runs,
    )  # fmt: skip


@router.get("/commands/{command_id}", tags=["actions"],
            responses=problem_responses("forbidden", "unknown-command"))  # fmt: skip
async def get_command(command_id: str, _: Viewer, services: Services) -> CommandView:
    """A command: pending, accepted, or rejected with the reason; and the runs it touched.

    The server that sent it answers from what it saw the coordinator write; any other server
    (one sharing a PostgreSQL store) answers from the read model."""
    outcome = await asyncio.to_thread(services.store.command_outcome, command_id)
    command = services.commands.get(command_id)
    if command is not None:
        return _view(command, outcome)
    if outcome.status == "unseen":
        raise ApiProblem("unknown-command", f"no command {command_id!r} is known here")
    return _from_store(outcome)
