"""The image's HEALTHCHECK finds the health endpoint of the role its main process runs."""

from __future__ import annotations

import asyncio

import pytest

from streamcoord.deploy.healthcheck import healthcheck_url, main
from streamcoord.runtime.health import HealthServer

SCRIPT = ["/opt/streamcoord/bin/python", "/opt/streamcoord/bin/streamcoord"]
IMAGE_ENV = {"STREAMCOORD_HEALTH_PORT": "8081", "STREAMCOORD_WORKER_HEALTH_PORT": "8082"}


@pytest.mark.parametrize(
    ("argv", "environ", "url"),
    [
        ([*SCRIPT, "run"], IMAGE_ENV, "http://127.0.0.1:8081/healthz"),
        ([*SCRIPT, "run", "--health-port", "9000"], IMAGE_ENV, "http://127.0.0.1:9000/healthz"),
        ([*SCRIPT, "run", "--health-port=9001"], {}, "http://127.0.0.1:9001/healthz"),
        ([*SCRIPT, "run"], {"STREAMCOORD_HEALTH_PORT": "7000"}, "http://127.0.0.1:7000/healthz"),
        ([*SCRIPT, "worker", "shell", "--concurrency", "4"], IMAGE_ENV,
         "http://127.0.0.1:8082/healthz"),
        ([*SCRIPT, "serve", "--host", "::", "--port", "8090"], IMAGE_ENV,
         "http://127.0.0.1:8090/healthz"),
        ([*SCRIPT, "ingest"], {}, "http://127.0.0.1:8080/healthz"),
        (["python", "-m", "streamcoord.cli.main", "run"], {}, "http://127.0.0.1:8081/healthz"),
        ([*SCRIPT, "topics", "apply"], IMAGE_ENV, None),
        ([*SCRIPT, "--help"], IMAGE_ENV, None),
        ([], {}, None),
        ([*SCRIPT, "topics", "apply"], {"STREAMCOORD_HEALTHCHECK_URL": "http://x:1/healthz"},
         "http://x:1/healthz"),
    ],
)  # fmt: skip
def test_healthcheck_url(argv: list[str], environ: dict[str, str], url: str | None) -> None:
    assert healthcheck_url(argv, environ) == url


async def test_the_check_passes_only_while_the_endpoint_answers_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ready = {"ready": False}
    server = HealthServer(lambda: dict(ready), "127.0.0.1", 0)
    await server.start()
    try:
        monkeypatch.setenv("STREAMCOORD_HEALTHCHECK_URL", f"http://127.0.0.1:{server.port}/healthz")
        assert await asyncio.to_thread(main) == 1  # 503 while not ready
        ready["ready"] = True
        assert await asyncio.to_thread(main) == 0
    finally:
        await server.stop()
    assert await asyncio.to_thread(main) == 1  # nothing listens any more
