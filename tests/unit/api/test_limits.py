"""The request body limit, in front of a Starlette app."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from streamcoord.auth import BodyLimit


def app() -> Starlette:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"bytes": len(await request.body())})

    built = Starlette(routes=[Route("/", echo, methods=["POST"])])
    built.add_middleware(BodyLimit, max_bytes=1000)
    return built


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app()), base_url="http://test")


async def test_bodies_up_to_the_limit_pass_and_larger_ones_are_413() -> None:
    async with client() as http:
        assert (await http.post("/", content=b"x" * 1000)).json() == {"bytes": 1000}
        refused = await http.post("/", content=b"x" * 1001)
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "payload-too-large"


async def test_a_streamed_body_is_refused_once_past_the_limit() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"x" * 100

    async with client() as http:
        refused = await http.post("/", content=chunks())
    assert refused.status_code == 413
