"""HTTP ingest stamps the caller its authentication names, and never keeps a claimed principal."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import orjson
from starlette.requests import Request

from streamcoord.events.models import CloudEvent
from streamcoord.events.principal import stamped_principal
from streamcoord.ingest import create_app
from streamcoord.ingest._app import Authenticate


class Kept:
    def __init__(self) -> None:
        self.events: list[CloudEvent] = []

    async def send_many(self, events: Sequence[CloudEvent]) -> list[CloudEvent]:
        self.events.extend(events)
        return list(events)


def _body(ident: str) -> bytes:
    return orjson.dumps({"specversion": "1.0", "id": ident, "source": "app", "type": "x.landed",
                         "scprincipal": "admin", "data": {}})


async def _post(authenticate: Authenticate | None, token: str | None) -> Kept:
    kept = Kept()
    app = create_app(kept, authenticate=authenticate)
    headers = {"content-type": "application/cloudevents+json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        response = await client.post("/events", content=_body("e1"), headers=headers)
    assert response.status_code == 202
    return kept


def _caller(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") or None


async def test_the_authenticated_caller_replaces_the_principal_the_event_claimed() -> None:
    (event,) = (await _post(_caller, "svc-orders")).events
    assert stamped_principal(event) == "svc-orders"


async def test_without_authentication_a_claimed_principal_is_dropped() -> None:
    (event,) = (await _post(None, None)).events
    assert stamped_principal(event) is None
    (event,) = (await _post(_caller, None)).events
    assert stamped_principal(event) is None
