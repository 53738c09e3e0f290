"""The webhook executor against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from streamcoord.events.codec import decode
from streamcoord.events.models import StageFailed, StageStarted, StageSucceeded, StageTrigger
from streamcoord.worker._attempt import AttemptRunner
from streamcoord.worker.webhook import WebhookExecutor
from tests.unit.worker.helpers import NOW, ListSink, context, make_trigger

REPLIES: dict[str, tuple[int, bytes]] = {
    "/ok": (200, orjson.dumps({"outcome": "succeeded", "outputs": {"model": "v7"}})),
    "/empty": (204, b""),
    "/failed": (200, orjson.dumps({"outcome": "failed", "error": "quota", "retryable": False})),
    "/later": (202, b""),
    "/bad-request": (400, b"missing field 'day'"),
    "/down": (503, b"maintenance"),
    "/not-json": (200, b"<html>"),
    "/slow": (200, b""),
}


class Server:
    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.port = 0

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append((request.url.path, dict(request.headers), body))
        if request.url.path == "/slow":
            await asyncio.sleep(3)  # the server side of a hung call; the client gives up first
        status, reply = REPLIES[request.url.path]
        return Response(reply, status_code=status, media_type="application/json")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = Starlette(routes=[Route("/{path}", state.handle, methods=["POST"])])
    # A socket listening before uvicorn starts: requests queue in its backlog, no start race.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    state.port = sock.getsockname()[1]
    http = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(http.serve(sockets=[sock]))
    yield state
    http.should_exit = True
    await task


async def call(server: Server, path: str, deadline_s: float | None = None) -> ListSink:
    sink = ListSink()
    with ThreadPoolExecutor(1) as threads:
        runner = AttemptRunner(sink, threads, heartbeat_interval_s=60, clock=lambda: NOW)
        trigger = make_trigger(url=f"http://127.0.0.1:{server.port}{path}")
        if deadline_s is not None:  # the webhook reads the wall clock, the runner its own
            deadline = datetime.now(UTC) + timedelta(seconds=deadline_s)
            data = trigger.data.model_copy(
                update={"timeout_seconds": deadline_s, "deadline": deadline}
            )
            trigger = trigger.model_copy(update={"data": data})
        await runner.run(context(trigger, runner), WebhookExecutor())
    return sink


async def test_the_trigger_is_posted_as_a_structured_cloudevent(server: Server) -> None:
    sink = await call(server, "/ok")
    ((_, headers, body),) = server.received
    assert headers["content-type"] == "application/cloudevents+json"
    posted = decode(body, [("content-type", headers["content-type"].encode())])
    assert isinstance(posted, StageTrigger)
    assert posted.data.idempotency_key == "orders/2024-01-01/extract/1"
    outcome = sink.events[-1]
    assert isinstance(outcome, StageSucceeded)
    assert outcome.data.outputs == {"model": "v7"}


@pytest.mark.parametrize(
    ("path", "retryable", "text"),
    [
        ("/failed", False, "quota"),
        ("/bad-request", False, "webhook answered HTTP 400: missing field 'day'"),
        ("/down", True, "webhook answered HTTP 503: maintenance"),
        ("/not-json", False, "webhook reply is not JSON"),
    ],
)
async def test_failures_say_whether_a_retry_may_help(
    server: Server, path: str, retryable: bool, text: str
) -> None:
    outcome = (await call(server, path)).events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is retryable
    assert outcome.data.error.startswith(text)


async def test_an_empty_2xx_succeeds_without_outputs(server: Server) -> None:
    outcome = (await call(server, "/empty")).events[-1]
    assert isinstance(outcome, StageSucceeded)
    assert outcome.data.outputs == {}


async def test_202_leaves_the_outcome_to_a_later_callback(server: Server) -> None:
    sink = await call(server, "/later")
    assert [type(e) for e in sink.events] == [StageStarted]


async def test_an_unreachable_url_fails_retryably() -> None:
    unreachable = Server()
    unreachable.port = 9  # discard port on loopback: nothing listens
    outcome = (await call(unreachable, "/ok")).events[-1]
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is True
    assert "ConnectError" in outcome.data.error


async def test_the_request_ends_at_the_triggers_deadline(server: Server) -> None:
    began = asyncio.get_running_loop().time()
    outcome = (await call(server, "/slow", deadline_s=0.3)).events[-1]
    assert asyncio.get_running_loop().time() - began < 2.5  # not the config's 30 s
    assert isinstance(outcome, StageFailed)
    assert outcome.data.retryable is True
    assert "ReadTimeout" in outcome.data.error
