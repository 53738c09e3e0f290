"""The HTTP API over a large store: ``python -m bench.api [--runs N] [--requests N]``.

Fills (or reuses) the SQLite store of ``bench.readmodel`` with ``--runs`` finished runs, serves
the API over it on a loopback port (uvicorn, as ``streamcoord serve`` runs it; no Kafka: actions
are not measured) and times requests from one client over HTTP/1.1 keep-alive: a filtered run
list and its next page, a run's detail, a run's audit trail, and a refused (401) request.
Medians and p95 in milliseconds, client to client: what a script or the UI waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import socket
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from bench.readmodel import PIPELINES, fill
from streamcoord.api import ApiServices, LocalSpecs, create_app
from streamcoord.auth import AUDIT_LOGGER, Role, TokenRegistry, hash_token, new_token
from streamcoord.readmodel import _schema as t
from streamcoord.readmodel import open_store

EXAMPLES = Path(__file__).parents[1] / "examples"


class _NoCommands:
    """Reads only: no pipeline is known to be paused, no command was sent."""

    def paused(self, pipeline: str) -> bool | None:
        return None

    def get(self, command_id: str) -> None:
        return None


async def _timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    await call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


async def measure(store: Any, runs: int, repeat: int) -> None:
    token = new_token()
    tokens = TokenRegistry([("bench", hash_token(token), Role.viewer)])

    async def explainer(run_id: str, stage: str) -> None:
        return None

    services = ApiServices(store=store, specs=LocalSpecs([EXAMPLES]),
                           commands=_NoCommands(),  # type: ignore[arg-type]
                           explainer=explainer, tokens=tokens)  # fmt: skip
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only then (else each response waits ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    app = create_app(services)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    rng = random.Random(3)
    with store.engine.connect() as conn:
        ids = [r for (r,) in conn.execute(select(t.runs.c.run_id).limit(5000))]
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:

        async def page_two() -> None:
            params: dict[str, str | int] = {
                "pipeline": rng.choice(PIPELINES),
                "status": "failed",
                "limit": 50,
            }
            first = (await client.get("/api/v1/runs", params=params)).json()
            second = await client.get(
                "/api/v1/runs", params={**params, "cursor": first["next_cursor"]}
            )
            assert second.status_code == 200

        async def detail() -> None:
            assert (await client.get(f"/api/v1/runs/{rng.choice(ids)}")).status_code == 200

        async def audit() -> None:
            response = await client.get(f"/api/v1/runs/{rng.choice(ids)}/audit")
            assert response.status_code == 200

        async def refused() -> None:
            response = await client.get("/api/v1/runs", headers={"authorization": "Bearer x"})
            assert response.status_code == 401

        for label, call in (
            ("GET /runs pipeline+status, page 1 and 2", page_two),
            ("GET /runs/{id} (detail)", detail),
            ("GET /runs/{id}/audit", audit),
            ("GET /runs with an unknown token (401)", refused),
        ):
            median, p95 = await _timed(call, repeat)
            print(f"  {label:42} median {median:7.2f} ms  p95 {p95:7.2f} ms")
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument(
        "--database", type=Path, default=Path(tempfile.gettempdir()) / "streamcoord-bench-readmodel"
    )
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.ERROR)  # one line per 401: not measured
    args.database.mkdir(parents=True, exist_ok=True)
    path = args.database / f"runs-{args.runs}.db"
    store = open_store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    if present != args.runs:
        store.close()
        path.unlink()
        store = open_store(f"sqlite:///{path}")
        fill(store, args.runs)
    print(f"the API over {args.runs:,} finished runs (SQLite), one client, loopback:")
    asyncio.run(measure(store, args.runs, args.repeat))
    store.close()


if __name__ == "__main__":
    main()
