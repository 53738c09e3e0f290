"""The ingest endpoint over HTTP on 127.0.0.1, writing to a real broker."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from streamcoord.emit import Emitter
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.ingest import create_app
from streamcoord.kafka.settings import KafkaSettings
from tests.kafka_fixtures import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

EVENTS = topology.EVENTS
EVENT = {"specversion": "1.0", "source": "shop/etl", "type": "shop.orders.landed",
         "data": {"day": "2024-01-01"}}  # fmt: skip
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def read(bootstrap: str, topic: str, count: int) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
        enable_auto_commit=False, isolation_level="read_committed",
    )  # fmt: skip
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(30):
            async for record in consumer:
                records.append(record)
                if len(records) == count:
                    return records
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


class Endpoint:
    def __init__(self, url: str, topic: str, bootstrap: str) -> None:
        self.url, self.topic, self.bootstrap = url, topic, bootstrap


@pytest.fixture
async def endpoint(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> AsyncIterator[Endpoint]:
    prefix = unique_name("ingest") + "."
    await create_topics(kafka_bootstrap, [prefix + EVENTS], partitions=2)
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # requests wait in the backlog until uvicorn accepts: no start race
    async with Emitter(settings) as emitter:
        server = uvicorn.Server(
            uvicorn.Config(create_app(emitter), log_level="warning", lifespan="off")
        )
        task = asyncio.create_task(server.serve(sockets=[sock]))
        port = sock.getsockname()[1]
        yield Endpoint(f"http://127.0.0.1:{port}", prefix + EVENTS, kafka_bootstrap)
        server.should_exit = True
        await task


async def test_structured_binary_and_batch_land_on_the_topic(endpoint: Endpoint) -> None:
    async with httpx.AsyncClient(base_url=endpoint.url) as client:
        structured = await client.post(
            "/events", content=orjson.dumps({**EVENT, "id": "s-1"}),
            headers={"content-type": "application/cloudevents+json", "traceparent": TRACEPARENT},
        )  # fmt: skip
        binary = await client.post(
            "/events", content=b'{"day": "2024-01-02"}',
            headers={"ce-specversion": "1.0", "ce-id": "b-1", "ce-source": "shop/etl",
                     "ce-type": "shop.orders.landed", "content-type": "application/json"},
        )  # fmt: skip
        batch = await client.post(
            "/events", content=orjson.dumps([{**EVENT, "id": "m-1"}, {**EVENT, "id": "m-2"}]),
            headers={"content-type": "application/cloudevents-batch+json"},
        )  # fmt: skip
        health = await client.get("/healthz")
    assert [r.status_code for r in (structured, binary, batch)] == [202, 202, 202]
    assert structured.json() == {"accepted": 1, "ids": ["s-1"]}
    assert batch.json()["ids"] == ["m-1", "m-2"]
    assert health.status_code == 200
    records = await read(endpoint.bootstrap, endpoint.topic, 4)
    events = {decode(r.value, r.headers).id: decode(r.value, r.headers) for r in records}
    assert set(events) == {"s-1", "b-1", "m-1", "m-2"}
    assert events["s-1"].traceparent == TRACEPARENT
    assert events["b-1"].data == {"day": "2024-01-02"}
    assert {r.key for r in records} == {b"shop/etl"}


async def test_invalid_events_get_a_4xx_with_the_reason_and_nothing_is_written(
    endpoint: Endpoint,
) -> None:
    async with httpx.AsyncClient(base_url=endpoint.url) as client:
        missing = await client.post(
            "/events", content=orjson.dumps({"source": "x", "type": "t"}),
            headers={"content-type": "application/cloudevents+json"},
        )  # fmt: skip
        half_bad_batch = await client.post(
            "/events", content=orjson.dumps([{**EVENT, "id": "ok"}, {"id": "bad"}]),
            headers={"content-type": "application/cloudevents-batch+json"},
        )  # fmt: skip
        plain = await client.post("/events", content=b"hi", headers={"content-type": "text/plain"})
        accepted = await client.post(
            "/events", content=orjson.dumps({**EVENT, "id": "after"}),
            headers={"content-type": "application/cloudevents+json"},
        )  # fmt: skip
    assert missing.status_code == 400
    assert missing.json()["error"] == "not_cloudevent"
    assert "specversion, id" in missing.json()["message"]
    assert half_bad_batch.status_code == 400
    assert half_bad_batch.json()["message"].startswith("batch[1]:")
    assert plain.status_code == 415
    assert accepted.status_code == 202
    # Only the valid event is on the topic: the half-bad batch was rejected as a whole.
    (record,) = await read(endpoint.bootstrap, endpoint.topic, 1)
    assert decode(record.value, record.headers).id == "after"


async def _open_ingest(bootstrap: str, prefix: str) -> tuple[asyncio.subprocess.Process, int]:
    """`streamcoord ingest` as a child process on a free port, once it listens."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "ingest", "--port", "0",
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    async with asyncio.timeout(30):
        async for line in process.stderr:
            if found := re.search(rb"running on http://127\.0\.0\.1:(\d+)", line):
                return process, int(found[1])
    raise AssertionError("ingest never said where it listens")


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head.lower())[1])  # type: ignore[index]
    return int(head.split(b" ", 2)[1]), await reader.readexactly(length)


async def test_sigterm_finishes_the_request_in_flight_and_exits_0(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("ingest-stop") + "."
    await create_topics(kafka_bootstrap, [prefix + EVENTS], partitions=1)
    process, port = await _open_ingest(kafka_bootstrap, prefix)
    body = orjson.dumps({**EVENT, "id": "in-flight"})
    head = (
        f"POST /events HTTP/1.1\r\nHost: test\r\ncontent-type: application/cloudevents+json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + body[:10])  # a request the server has begun to read, not yet whole
    await writer.drain()
    # A whole request on a second connection, answered: by then the server has read the first
    # connection's bytes, which were waiting before the second connection even opened.
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200

    process.send_signal(signal.SIGTERM)
    writer.write(body[10:])
    await writer.drain()
    status, answer = await asyncio.wait_for(_response(reader), 30)
    writer.close()
    assert (status, orjson.loads(answer)["ids"]) == (202, ["in-flight"])

    assert process.stderr is not None
    errors = await asyncio.wait_for(process.stderr.read(), 30)
    assert await asyncio.wait_for(process.wait(), 30) == 0
    assert b"Traceback" not in errors
    (record,) = await read(kafka_bootstrap, prefix + EVENTS, 1)
    assert decode(record.value, record.headers).id == "in-flight"
