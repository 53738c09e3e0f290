"""`streamcoord worker` health endpoints (STREAMCOORD_WORKER_HEALTH_PORT), as the Helm chart's
probes use them: /livez while the process runs, /readyz once it consumes its topics."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable

import httpx
import pytest

from streamcoord.events import topology
from tests.kafka_fixtures import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


async def _health_port(process: asyncio.subprocess.Process) -> int:
    assert process.stderr is not None
    async with asyncio.timeout(30):
        async for line in process.stderr:
            if found := re.search(rb"health checks on http://127\.0\.0\.1:(\d+)/livez", line):
                return int(found[1])
    raise AssertionError("the worker never said where its health checks are")


async def _ready(client: httpx.AsyncClient) -> httpx.Response:
    """/readyz once it answers 200 (bounded: 30 s, polled every 0.1 s)."""
    response = await client.get("/readyz")
    for _ in range(300):
        if response.status_code == 200:
            return response
        await asyncio.sleep(0.1)
        response = await client.get("/readyz")
    return response


async def test_worker_is_live_then_ready_and_stops_on_sigterm(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("workerhealth") + "."
    await create_topics(kafka_bootstrap, [prefix + topology.TRIGGERS], partitions=1)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "worker", "shell",
        "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", prefix,
        env={**os.environ, "STREAMCOORD_WORKER_HEALTH_PORT": "0"},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        port = await _health_port(process)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/livez")).status_code == 200
            ready = await _ready(client)
            assert ready.status_code == 200, ready.text
            assert ready.json()["consuming"] is True
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert process.stderr is not None
            await process.stderr.read()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
