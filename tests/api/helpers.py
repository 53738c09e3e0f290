"""Waiting on the API as a client would: the read model follows Kafka a moment behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx


async def eventually(
    client: httpx.AsyncClient, path: str, check: Callable[[Any], bool], *, timeout_s: float = 60,
    params: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """GET ``path`` until ``check(json)`` holds (bounded in time); the last body otherwise."""
    deadline = time.monotonic() + timeout_s
    body: Any = None
    while time.monotonic() < deadline:
        response = await client.get(path, params=params)
        if response.status_code == 200:
            body = response.json()
            if check(body):
                return body
        await asyncio.sleep(0.1)  # the store has no event to await from outside: ask again
    raise AssertionError(f"GET {path}: condition not met within {timeout_s}s; last: {body}")


async def decided(client: httpx.AsyncClient, link: str) -> dict[str, Any]:
    """The command at ``link`` once the coordinator decided it."""
    body: dict[str, Any] = await eventually(client, link, lambda c: c["state"] != "pending")
    return body


def run_path(run_id: str) -> str:
    return "/api/v1/runs/" + run_id.replace("#", "%23")
