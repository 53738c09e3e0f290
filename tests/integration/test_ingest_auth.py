"""Ingest with tokens: who may send events, and the principal stamped on what they send."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest
import uvicorn

from streamcoord.auth import Role, TokenRegistry, hash_token, new_token
from streamcoord.emit import Emitter
from streamcoord.events.codec import decode
from streamcoord.ingest import create_app
from streamcoord.kafka.settings import KafkaSettings
from tests.integration.test_ingest import EVENT, EVENTS, read
from tests.kafka_fixtures import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


@dataclass
class Secured:
    url: str
    topic: str
    bootstrap: str
    tokens: dict[str, str]


@pytest.fixture
async def secured(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Secured]:
    prefix = unique_name("ingest-auth") + "."
    await create_topics(kafka_bootstrap, [prefix + EVENTS], partitions=1)
    plain = {role.name: new_token() for role in Role}
    tokens = TokenRegistry((f"{n}-token", hash_token(t), Role[n]) for n, t in plain.items())
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only then (else each response waits ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    async with Emitter(settings) as emitter:
        app = create_app(emitter, tokens=tokens, max_body_bytes=4096)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        yield Secured(url, prefix + EVENTS, kafka_bootstrap, plain)
        server.should_exit = True
        await task


async def post(secured: Secured, role: str | None, body: dict[str, object]) -> httpx.Response:
    headers = {"content-type": "application/cloudevents+json"}
    if role:
        headers["authorization"] = f"Bearer {secured.tokens[role]}"
    async with httpx.AsyncClient(base_url=secured.url) as client:
        return await client.post("/events", content=orjson.dumps(body), headers=headers)


async def test_no_token_401_viewer_403_operator_202_with_its_principal_stamped(
    secured: Secured,
) -> None:
    missing = await post(secured, None, {**EVENT, "id": "a"})
    viewer = await post(secured, "viewer", {**EVENT, "id": "b"})
    spoofed = {**EVENT, "id": "c", "scprincipal": "someone-else"}
    operator = await post(secured, "operator", spoofed)
    big = await post(secured, "operator", {**EVENT, "id": "d", "data": {"x": "y" * 5000}})

    assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.headers["content-type"] == "application/problem+json"
    assert (viewer.status_code, viewer.json()["error"]) == (403, "forbidden")
    assert operator.status_code == 202
    assert (big.status_code, big.json()["error"]) == (413, "oversized")
    (record,) = await read(secured.bootstrap, secured.topic, 1)
    event = decode(record.value, record.headers)
    assert event.id == "c"
    assert (event.__pydantic_extra__ or {})["scprincipal"] == "operator-token"
