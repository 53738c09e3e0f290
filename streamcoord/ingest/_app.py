"""The ingest HTTP app: ``POST /events`` answers 202 only after the broker acknowledged.

Accepted events go through one :class:`~streamcoord.emit.Emitter` (idempotent producer,
``acks="all"``), so an event the endpoint answered 202 for is on the topic; when the broker does
not acknowledge, the answer is 503 and the client sends again (event ids make resends safe).

With ``tokens``, ``POST /events`` needs a bearer token of role ``operator`` or ``admin`` (401
without one, 403 for a viewer, both audited) and every accepted event carries the token's name
in its ``principal`` extension attribute, whatever the sender put there. Without ``tokens`` the
endpoint is open (``streamcoord ingest`` allows that on loopback only). Errors are
problem+json (RFC 9457) that keep the ``error`` (a stable reason) and ``message`` members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streamcoord.auth import (
    PRINCIPAL_ATTRIBUTE,
    BodyLimit,
    Principal,
    Refusal,
    Role,
    TokenRegistry,
    audit_refusal,
)
from streamcoord.emit import EmitError
from streamcoord.events.codec import DEFAULT_MAX_BYTES
from streamcoord.events.models import CloudEvent
from streamcoord.ingest._binding import IngestError, events_from_request

__all__ = ["EventWriter", "create_app"]

#: A batch may hold many events, but a request body is read into memory: cap it.
MAX_REQUEST_BYTES: Final = 16 * 1024 * 1024


class EventWriter(Protocol):
    """Writes events durably; :class:`streamcoord.emit.Emitter` is the Kafka one."""

    async def send_many(self, events: Sequence[CloudEvent]) -> list[CloudEvent]:
        """Return once every event is acknowledged."""
        ...


def create_app(
    writer: EventWriter, *, max_event_bytes: int = DEFAULT_MAX_BYTES,
    tokens: TokenRegistry | None = None, max_body_bytes: int = MAX_REQUEST_BYTES,
) -> Starlette:  # fmt: skip
    """The Starlette app: ``POST /events`` and ``GET /healthz``."""

    async def post_events(request: Request) -> JSONResponse:
        caller = _caller(tokens, request)
        if isinstance(caller, Refusal):
            response = _problem(caller.status, caller.code, caller.message)
            if caller.status == 401:
                response.headers["www-authenticate"] = 'Bearer realm="streamcoord"'
            return response
        try:
            body = await _body(request, max_body_bytes)
            events = events_from_request(request.headers, body, max_event_bytes=max_event_bytes)
        except IngestError as error:
            return _problem(error.status, error.reason, str(error))
        if caller is not None:
            events = [e.model_copy(update={PRINCIPAL_ATTRIBUTE: caller.name}) for e in events]
        try:
            sent = await writer.send_many(events)
        except EmitError as error:
            response = _problem(503, "not_acknowledged", str(error))
            response.headers["retry-after"] = "1"
            return response
        return JSONResponse({"accepted": len(sent), "ids": [e.id for e in sent]}, 202)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        reason = "oversized" if exc.status_code == 413 else "http_error"
        return _problem(exc.status_code, reason, str(exc.detail))

    app = Starlette(
        routes=[
            Route("/events", post_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def _caller(tokens: TokenRegistry | None, request: Request) -> Principal | Refusal | None:
    """The authenticated caller, why it is refused, or None when the endpoint is open."""
    if tokens is None:
        return None
    found = tokens.check(request.headers.get("authorization"), Role.operator)
    if isinstance(found, Refusal):
        client = request.client.host if request.client else None
        audit_refusal(found, request.method, request.url.path, client)
    return found


async def _body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise IngestError(
                413, "oversized", f"request body exceeds {limit} bytes",
                hint="send smaller batches",
            )  # fmt: skip
    return bytes(body)


def _problem(status: int, reason: str, message: str) -> JSONResponse:
    body = {
        "type": f"urn:streamcoord:problem:{reason}", "title": reason.replace("_", " "),
        "status": status, "detail": message, "error": reason, "message": message,
    }  # fmt: skip
    return JSONResponse(body, status, media_type="application/problem+json")
