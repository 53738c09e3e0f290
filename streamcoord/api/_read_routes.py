"""Read endpoints: pipelines, runs, audit trails, explain, dead letters, problem types."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from streamcoord.api._graph import pipeline_graph
from streamcoord.api._problems import PROBLEMS, ApiProblem, problem_responses
from streamcoord.api._schemas import ExplanationView, NeedView, PipelineGraph, PipelineSummary
from streamcoord.api._security import require, services_of
from streamcoord.api._services import ApiServices
from streamcoord.auth import Principal, Role
from streamcoord.pipelines.models import Pipeline
from streamcoord.readmodel import (
    AuditEntry,
    CursorError,
    DeadLetterEntry,
    Page,
    PipelineStats,
    RunDetail,
    RunQuery,
    RunSort,
    RunSummary,
    SortOrder,
)

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Services = Annotated[ApiServices, Depends(services_of)]
PipelineName = Annotated[str, Path(description="A pipeline of the newest spec version.")]
RunId = Annotated[str, Path(description="A run id, e.g. daily/2026-11-28 (# as %23).")]


def _pipeline(services: ApiServices, name: str) -> Pipeline:
    pipeline = services.specs.newest().pipeline(name)
    if pipeline is None:
        raise ApiProblem("unknown-pipeline", f"no pipeline {name!r} in the loaded specs")
    return pipeline


def _summary(services: ApiServices, pipeline: Pipeline) -> PipelineSummary:
    return PipelineSummary(
        name=pipeline.name, description=pipeline.description, owner=pipeline.owner,
        tags=list(pipeline.tags), stages=[s.name for s in pipeline.stages],
        manual=any(t.kind == "manual" for t in pipeline.triggers),
        paused=services.commands.paused(pipeline.name),
        spec_version=services.specs.newest().version,
    )  # fmt: skip


@router.get("/pipelines", tags=["pipelines"], responses=problem_responses("forbidden"))
async def list_pipelines(_: Viewer, services: Services) -> list[PipelineSummary]:
    """Every pipeline of the newest spec version, by name, with whether it is paused."""
    return [_summary(services, p) for p in services.specs.newest().pipelines]


@router.get("/pipelines/{pipeline}", tags=["pipelines"],
            responses=problem_responses("forbidden", "unknown-pipeline"))  # fmt: skip
async def get_pipeline(pipeline: PipelineName, _: Viewer, services: Services) -> PipelineSummary:
    """One pipeline: its stages, whether runs may be requested, whether it is paused."""
    return _summary(services, _pipeline(services, pipeline))


@router.get("/pipelines/{pipeline}/spec", tags=["pipelines"],
            responses=problem_responses("forbidden", "unknown-pipeline"))  # fmt: skip
async def get_pipeline_spec(pipeline: PipelineName, _: Viewer, services: Services) -> Pipeline:
    """The pipeline's spec as loaded (defaults filled in)."""
    return _pipeline(services, pipeline)


@router.get("/pipelines/{pipeline}/graph", tags=["pipelines"],
            responses=problem_responses("forbidden", "unknown-pipeline"))  # fmt: skip
async def get_pipeline_graph(
    pipeline: PipelineName, _: Viewer, services: Services
) -> PipelineGraph:
    """The stage graph, with the stages of other pipelines it needs or that need it."""
    _pipeline(services, pipeline)
    return pipeline_graph(services.specs.newest().pipelines, pipeline)


@router.get("/pipeline-stats", tags=["pipelines"], responses=problem_responses("forbidden"))
async def pipeline_stats(
    _: Viewer, services: Services,
    since: Annotated[datetime, Query(description="Count runs created at or after this time.")],
    recent: Annotated[int, Query(ge=0, le=200, description="Latest finished runs each.")] = 20,
) -> list[PipelineStats]:  # fmt: skip
    """Per pipeline: runs created since ``since`` by status, and the latest finished runs'
    durations (what an overview page charts)."""
    return await asyncio.to_thread(services.store.pipeline_stats, since=since, recent=recent)


@router.get("/runs", tags=["runs"], responses=problem_responses("forbidden", "invalid-cursor"))
async def list_runs(  # noqa: PLR0917 - an endpoint: its parameters are the query's
    _: Viewer, services: Services,
    pipeline: Annotated[str | None, Query(max_length=1000)] = None,
    status: Annotated[str | None, Query(max_length=100)] = None,
    run_key: Annotated[str | None, Query(max_length=1000)] = None,
    requested_by: Annotated[str | None, Query(max_length=1000)] = None,
    since: Annotated[datetime | None, Query(description="Created at or after.")] = None,
    until: Annotated[datetime | None, Query(description="Created before.")] = None,
    sort: RunSort = "created_at",
    order: SortOrder = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> Page[RunSummary]:  # fmt: skip
    """Runs matching every filter given, sorted, one page; pass ``next_cursor`` as ``cursor``
    for the next."""
    query = RunQuery(
        pipeline=pipeline, status=status, run_key=run_key, requested_by=requested_by,
        since=since, until=until, sort=sort, order=order, limit=limit, cursor=cursor,
    )  # fmt: skip
    try:
        return await asyncio.to_thread(services.store.list_runs, query)
    except CursorError as error:
        raise ApiProblem("invalid-cursor", error.message) from None


async def _run(services: ApiServices, run_id: str) -> RunDetail:
    run = await asyncio.to_thread(services.store.get_run, run_id)
    if run is None:
        raise ApiProblem("unknown-run", f"no run {run_id!r} in the read model")
    return run


@router.get("/runs/{run_id:path}/audit", tags=["runs"],
            responses=problem_responses("forbidden", "unknown-run"))  # fmt: skip
async def get_run_audit(run_id: RunId, _: Viewer, services: Services) -> list[AuditEntry]:
    """Every event, decision and status change of the run, in order, with who caused it."""
    await _run(services, run_id)
    return await asyncio.to_thread(services.store.audit_trail, run_id)


@router.get("/runs/{run_id:path}/stages/{stage}/explain", tags=["runs"],
            responses=problem_responses("forbidden", "unknown-run", "unknown-stage"))  # fmt: skip
async def explain_stage(
    run_id: RunId, stage: str, _: Viewer, services: Services
) -> ExplanationView:
    """Why the stage is, or is not yet, ready: the answer of ``streamcoord explain``."""
    await _run(services, run_id)
    found = await services.explainer(run_id, stage)
    if found is None:
        raise ApiProblem(
            "unknown-stage",
            f"the coordinator's state has no stage {stage!r} of run {run_id!r} (finished runs"
            " leave it after the retention period)",
        )
    return ExplanationView(
        run_id=found.run_id, stage=found.stage, status=found.status, attempt=found.attempt,
        rule=found.rule, holds=list(found.holds), caused_by=list(found.caused_by),
        reason=found.reason,
        needs=[NeedView(need=n.need, status=n.status, satisfied=n.satisfied, by_event=n.by_event)
               for n in found.needs],
    )  # fmt: skip


@router.get("/runs/{run_id:path}", tags=["runs"],
            responses=problem_responses("forbidden", "unknown-run"))  # fmt: skip
async def get_run(run_id: RunId, _: Viewer, services: Services) -> RunDetail:
    """One run with its status changes, its stages and every attempt."""
    return await _run(services, run_id)


@router.get("/dead-letters", tags=["dead letters"],
            responses=problem_responses("forbidden", "invalid-cursor"))  # fmt: skip
async def list_dead_letters(
    _: Viewer, services: Services,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=4000)] = None,
) -> Page[DeadLetterEntry]:  # fmt: skip
    """Records the coordinator refused, latest first, with its reason."""
    try:
        return await asyncio.to_thread(services.store.dead_letters, limit=limit, cursor=cursor)
    except CursorError as error:
        raise ApiProblem("invalid-cursor", error.message) from None


@router.get("/whoami", tags=["auth"], responses=problem_responses())
async def whoami(principal: Viewer) -> dict[str, str]:
    """The caller's token name and role (what a UI shows, and which actions it offers)."""
    return {"name": principal.name, "role": principal.role.name}


@router.get("/problems/{code}", tags=["problems"], responses=problem_responses("unknown-problem"))
async def problem_type(code: str) -> dict[str, str | int]:
    """What a problem ``type`` means (no token needed)."""
    kind = PROBLEMS.get(code)
    if kind is None:
        raise ApiProblem("unknown-problem", f"no problem type {code!r}")
    return {"type": kind.uri, "code": kind.code, "status": kind.status, "title": kind.title,
            "description": kind.description}  # fmt: skip
