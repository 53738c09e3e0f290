"""``GET /api/v1/stream``: run and stage changes as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from streamcoord.api._feed import ChangeFeed
from streamcoord.api._problems import problem_responses
from streamcoord.api._read_routes import Viewer

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

_SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of `run` and `stage` events; each `data` is a StreamEvent.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **problem_responses("forbidden"),
}


@router.get("/stream", tags=["runs"], response_class=EventSourceResponse, responses=_SSE_DOC)
async def stream(
    request: Request, _: Viewer,
    pipeline: Annotated[str | None, Query(max_length=1000, description="Only this one's.")] = None,
    run_id: Annotated[str | None, Query(max_length=1000, description="Only this run's.")] = None,
) -> EventSourceResponse:  # fmt: skip
    """Follow runs as they change: one ``run`` event per status change and one ``stage`` event
    per stage status or attempt change, from the moment of connecting."""
    feed: ChangeFeed = request.app.state.feed

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with feed.listen(pipeline, run_id) as queue:
            yield ServerSentEvent(comment="listening")
            while not feed.closed:
                change = await queue.get()
                if change is None:
                    return
                yield ServerSentEvent(data=change.model_dump_json(), event=change.kind)

    return EventSourceResponse(events(), ping=15)
