"""The health endpoint: liveness, readiness, and requests that are too big or not HTTP at all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from streamcoord.runtime.health import MAX_HEAD_BYTES, HealthServer, respond

STATUS: dict[str, Any] = {"ready": False, "reason": "waiting for the group to assign partitions"}


def _snapshot() -> dict[str, Any]:
    return dict(STATUS)


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n", 200),
        (b"GET /readyz HTTP/1.1\r\n\r\n", 503),
        (b"GET /healthz?verbose=1 HTTP/1.0\r\n\r\n", 503),
        (b"HEAD / HTTP/1.1\r\n\r\n", 503),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"POST /readyz HTTP/1.1\r\n\r\n", 405),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello
        (b"GET\r\n\r\n", 400),
        (b"GET /readyz\r\n\r\n", 400),  # HTTP/0.9
        (b"GET /ready z HTTP/1.1\r\n\r\n", 400),
    ],
)  # fmt: skip
def test_requests_are_answered_by_path_and_method(head: bytes, code: int) -> None:
    assert respond(head, _snapshot)[0] == code


def test_readiness_is_the_snapshots_and_says_why_not() -> None:
    assert respond(b"GET /readyz HTTP/1.1\r\n\r\n", _snapshot) == (503, STATUS)
    ready = {"ready": True, "reason": None}
    assert respond(b"GET /readyz HTTP/1.1\r\n\r\n", lambda: ready) == (200, ready)


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    health = HealthServer(_snapshot, "127.0.0.1", 0)
    await health.start()
    yield health
    await health.stop()


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def test_liveness_answers_while_not_ready(server: HealthServer) -> None:
    live = await _exchange(server.port, b"GET /livez HTTP/1.1\r\n\r\n")
    ready = await _exchange(server.port, b"GET /readyz HTTP/1.1\r\n\r\n")
    assert (_status(live), _status(ready)) == (200, 503)
    assert orjson.loads(ready.split(b"\r\n\r\n", 1)[1])["reason"] == STATUS["reason"]


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n\r\n", 431),  # an endless request line
        (b"GET /readyz HTTP/1.1\r\nX: " + b"a" * 200_000 + b"\r\n\r\n", 431),
        (b"GET /readyz HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 4) + b"\r\n", 431),
        (bytes(range(256)) * 4 + b"\r\n\r\n", 400),
        (b"garbage without an end", 400),
    ],
    ids=["long-line", "long-header", "many-headers", "binary", "unterminated"],
)
async def test_oversized_or_garbage_requests_get_an_answer_and_no_traceback(
    server: HealthServer, request_bytes: bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await _exchange(server.port, request_bytes)
    assert _status(response) == code
    assert b"Connection: close" in response
    # the server is still serving, and nothing was logged above debug (asyncio logs an
    # unhandled exception in a connection callback as an error with its traceback)
    assert _status(await _exchange(server.port, b"GET /livez HTTP/1.1\r\n\r\n")) == 200
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []


async def test_a_client_that_disconnects_at_once_is_no_error(
    server: HealthServer, caplog: pytest.LogCaptureFixture
) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.close()
    await writer.wait_closed()
    assert _status(await _exchange(server.port, b"GET /livez HTTP/1.1\r\n\r\n")) == 200
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
