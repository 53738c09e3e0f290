"""Liveness and readiness of an in-process coordinator on a real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.runtime.health import HealthServer
from tests.integration.coordination import STEADY_SPEC, catalog_of, create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, body = response.split(b"\r\n\r\n", 1)
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


async def test_ready_only_once_assigned_partitions_are_restored(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('health')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    coordinator = Coordinator(
        catalog_of(STEADY_SPEC),
        CoordinatorSettings(
            group_id=unique_name("group"), topic_prefix=topics.prefix, poll_timeout_ms=50
        ),
        {"bootstrap_servers": kafka_bootstrap},
    )
    health = HealthServer(coordinator.status.as_dict, "127.0.0.1", 0)
    await health.start()
    stop = asyncio.Event()
    service: asyncio.Task[None] | None = None
    try:
        # before the group assigned anything: alive, not ready, and saying why
        assert (await _get(health.port, "/livez"))[0] == 200
        code, body = await _get(health.port, "/readyz")
        assert (code, body["ready"], body["assigned_partitions"]) == (503, False, [])
        assert body["reason"].startswith("starting")

        service = asyncio.create_task(coordinator.run(stop))
        # Sample readiness as a probe would while the member joins and restores: whatever it
        # answers, a 200 only ever comes with every partition restored.
        answers: list[tuple[int, dict[str, Any]]] = []
        async with asyncio.timeout(60):
            while not coordinator.ready.is_set():
                answers.append(await _get(health.port, "/readyz"))
                await asyncio.sleep(0.02)  # a probe's period, not a synchronisation
        assert all(
            (code == 200) == (body["assigned_partitions"] == [0, 1]) for code, body in answers
        ), answers
        assert all(body["reason"] for code, body in answers if code == 503)

        code, body = await _get(health.port, "/readyz")
        assert (code, body["ready"], body["reason"]) == (200, True, None)
        assert body["assigned_partitions"] == [0, 1]
        assert (await _get(health.port, "/healthz"))[0] == 200  # readiness, as before /readyz

        stop.set()
        await asyncio.wait_for(service, 60)
        code, body = await _get(health.port, "/readyz")
        assert (code, body["reason"]) == (503, "stopping")
        assert (await _get(health.port, "/livez"))[0] == 200
    finally:
        stop.set()
        if service is not None:
            await asyncio.wait_for(service, 60)
        await health.stop()
