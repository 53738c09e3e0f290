"""Backfills: one run per partition key of a range (or a listed set), at most N unfinished at
once, hosted by this server; paused, resumed and cancelled as a group, with their progress.

Run ids are ``<pipeline>/<key>`` and each request's event id is derived from its run id, so a
backfill started twice (here, on another server or with the CLI) never runs a key twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response

from streamcoord.api._action_routes import Operator
from streamcoord.api._problems import ApiProblem, problem_responses
from streamcoord.api._read_routes import PipelineName, Services, Viewer, _pipeline
from streamcoord.api._schemas import BackfillBody, BackfillProgress, BackfillView
from streamcoord.api._services import ApiServices
from streamcoord.auth import audit_action
from streamcoord.backfill import (
    Backfill,
    BackfillManager,
    UnknownBackfillError,
    order_keys,
    partition_keys,
)
from streamcoord.errors import ConfigError, StreamcoordError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
BackfillId = Annotated[str, Path(description="A backfill id, as its start answered it.")]
_ON_BACKFILL = problem_responses("forbidden", "unknown-backfill", "backfills-unavailable")


def _manager(services: ApiServices) -> BackfillManager:
    if services.backfills is None:
        raise ApiProblem("backfills-unavailable")
    return services.backfills


def _backfill(services: ApiServices, ident: str) -> Backfill:
    try:
        return _manager(services).get(ident)
    except UnknownBackfillError as error:
        raise ApiProblem("unknown-backfill", error.message) from None


def _view(backfill: Backfill) -> BackfillView:
    p = backfill.progress
    progress = BackfillProgress(
        planned=len(backfill.keys), started=p.started, requested=p.requested, active=p.active,
        succeeded=p.succeeded, failed=p.failed, cancelled=p.cancelled,
        peak_active=p.peak_active, done=p.total > 0 and p.done,
    )  # fmt: skip
    return BackfillView(
        id=backfill.id, pipeline=backfill.pipeline, state=backfill.state,
        message=backfill.message, max_active=backfill.max_active,
        first_key=backfill.keys[0] if backfill.keys else None,
        last_key=backfill.keys[-1] if backfill.keys else None, principal=backfill.principal,
        created_at=backfill.created_at, progress=progress,
        cancelled_runs=backfill.cancelled_runs,
    )  # fmt: skip


def _link(response: Response, backfill: Backfill) -> None:
    response.headers["Location"] = f"/api/v1/backfills/{backfill.id}"


@router.post("/pipelines/{pipeline}/backfills", status_code=202, tags=["backfills"],
             responses=problem_responses("forbidden", "unknown-pipeline", "invalid-backfill",
                                         "backfills-unavailable"))  # fmt: skip
async def start_a_backfill(
    pipeline: PipelineName, principal: Operator, services: Services, response: Response,
    body: Annotated[BackfillBody, Body()],
) -> BackfillView:  # fmt: skip
    """Start a backfill: one run per key, at most ``max_active`` unfinished, lowest or newest
    key first. Keys whose run exists are not requested again (a finished one counts as done,
    an unfinished one is waited for). Starting the same pipeline and keys again answers the
    same backfill (restarted when it was paused or cancelled)."""
    spec = _pipeline(services, pipeline)
    manager = _manager(services)
    if not any(t.kind == "manual" for t in spec.triggers):
        raise ApiProblem("invalid-backfill", f"pipeline {pipeline!r} has no manual trigger")
    try:
        if body.keys is not None:
            keys = body.keys
        else:  # the body's validator saw both ends
            keys = partition_keys(body.from_key or "", body.to_key or "", body.grain)
    except ConfigError as error:
        raise ApiProblem("invalid-backfill", str(error)) from None
    backfill = manager.start(
        pipeline, order_keys(keys, body.order), body.max_active, params=body.params,
        principal=principal.name, now=datetime.now(UTC),
    )  # fmt: skip
    audit_action(principal, "backfill.start", pipeline, backfill.id)
    _link(response, backfill)
    return _view(backfill)


@router.get("/backfills", tags=["backfills"],
            responses=problem_responses("forbidden", "backfills-unavailable"))  # fmt: skip
async def list_backfills(_: Viewer, services: Services) -> list[BackfillView]:
    """The backfills this server hosts, oldest first, with their progress."""
    return [_view(b) for b in _manager(services).all()]


@router.get("/backfills/{backfill_id}", tags=["backfills"], responses=_ON_BACKFILL)
async def get_backfill(backfill_id: BackfillId, _: Viewer, services: Services) -> BackfillView:
    """A backfill's state and progress: planned, started, active, succeeded, failed,
    cancelled."""
    return _view(_backfill(services, backfill_id))


@router.post("/backfills/{backfill_id}/pause", tags=["backfills"], responses=_ON_BACKFILL)
async def pause_a_backfill(
    backfill_id: BackfillId, principal: Operator, services: Services
) -> BackfillView:
    """Request no more runs; the runs already started go on."""
    backfill = _backfill(services, backfill_id)
    _manager(services).pause(backfill.id)
    audit_action(principal, "backfill.pause", backfill.pipeline, backfill.id)
    return _view(backfill)


@router.post("/backfills/{backfill_id}/resume", tags=["backfills"], responses=_ON_BACKFILL)
async def resume_a_backfill(
    backfill_id: BackfillId, principal: Operator, services: Services
) -> BackfillView:
    """Request runs again where the backfill was (after a pause or a cancel)."""
    backfill = _backfill(services, backfill_id)
    _manager(services).resume(backfill.id)
    audit_action(principal, "backfill.resume", backfill.pipeline, backfill.id)
    return _view(backfill)


@router.post("/backfills/{backfill_id}/cancel", tags=["backfills"],
             responses=problem_responses("forbidden", "unknown-backfill", "backfills-unavailable",
                                         "broker-unavailable"))  # fmt: skip
async def cancel_a_backfill(
    backfill_id: BackfillId, principal: Operator, services: Services
) -> BackfillView:
    """Request no more runs and cancel the backfill's unfinished runs."""
    backfill = _backfill(services, backfill_id)
    try:
        await _manager(services).cancel(backfill.id)
    except StreamcoordError as error:  # the cancels could not be sent
        raise ApiProblem("broker-unavailable", str(error), headers={"Retry-After": "1"}) from None
    audit_action(principal, "backfill.cancel", backfill.pipeline, backfill.id)
    return _view(backfill)
