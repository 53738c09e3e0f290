"""The ingest HTTP app: ``POST /events`` answers 202 only after the broker acknowledged.

Accepted events go through one :class:`~streamcoord.emit.Emitter` (idempotent producer,
``acks="all"``), so an event the endpoint answered 202 for is on the topic; when the broker does
not acknowledge, the answer is 503 and the client sends again (event ids make resends safe).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streamcoord.emit import EmitError
from streamcoord.events.codec import DEFAULT_MAX_BYTES
from streamcoord.events.models import CloudEvent
from streamcoord.events.principal import with_principal
from streamcoord.ingest._binding import IngestError, events_from_request

__all__ = ["Authenticate", "EventWriter", "create_app"]

#: A batch may hold many events, but a request body is read into memory: cap it.
MAX_REQUEST_BYTES: Final = 16 * 1024 * 1024


class EventWriter(Protocol):
    """Writes events durably; :class:`streamcoord.emit.Emitter` is the Kafka one."""

    async def send_many(self, events: Sequence[CloudEvent]) -> list[CloudEvent]:
        """Return once every event is acknowledged."""
        ...


#: Who sent a request, as the app's authentication established it (None: nobody vouched).
Authenticate = Callable[[Request], str | None]


def create_app(
    writer: EventWriter, *, max_event_bytes: int = DEFAULT_MAX_BYTES,
    authenticate: Authenticate | None = None,
) -> Starlette:
    """The Starlette app: ``POST /events`` and ``GET /healthz``.

    Every accepted event is stamped with the caller ``authenticate`` names (the ``scprincipal``
    extension the audit trail shows); a principal the event itself claimed is never kept.
    """

    async def post_events(request: Request) -> JSONResponse:
        try:
            body = await _body(request)
            events = events_from_request(request.headers, body, max_event_bytes=max_event_bytes)
        except IngestError as error:
            return _problem(error.status, error.reason, str(error))
        caller = None if authenticate is None else authenticate(request)
        events = [with_principal(event, caller) for event in events]
        try:
            sent = await writer.send_many(events)
        except EmitError as error:
            response = _problem(503, "not_acknowledged", str(error))
            response.headers["retry-after"] = "1"
            return response
        return JSONResponse({"accepted": len(sent), "ids": [e.id for e in sent]}, 202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/events", post_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


async def _body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise IngestError(
                413, "oversized", f"request body exceeds {MAX_REQUEST_BYTES} bytes",
                hint="send smaller batches",
            )  # fmt: skip
    return bytes(body)


def _problem(status: int, reason: str, message: str) -> JSONResponse:
    return JSONResponse({"error": reason, "message": message}, status)
