"""``streamcoord serve`` as a child process, as an operator starts it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[2]


@dataclass
class Served:
    url: str
    admin_token: str | None  # printed when no tokens are configured
    process: asyncio.subprocess.Process


@contextlib.asynccontextmanager
async def serve_process(
    bootstrap: str, prefix: str, spec_dir: Path, database: str, *extra: str,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Served]:  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "serve", "--port", "0",
        "--spec", str(spec_dir), "--database", database, "-b", bootstrap,
        "--topic-prefix", prefix, *extra,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stderr is not None
    drains: list[asyncio.Task[bytes]] = []
    try:
        token = None
        url = ""
        async with asyncio.timeout(60):
            async for line in process.stderr:
                if found := re.search(rb"running on (http://127\.0\.0\.1:\d+)", line):
                    url = found[1].decode()
                    break
        if not env or "STREAMCOORD_AUTH_TOKENS" not in env:
            first = await asyncio.wait_for(process.stdout.readline(), 10)
            token = re.search(rb"sct_[A-Za-z0-9_-]+", first)[0].decode()  # type: ignore[index]
        # Keep the pipes from filling up (uvicorn's access log goes to stdout).
        drains = [asyncio.create_task(stream.read()) for stream in (process.stdout, process.stderr)]
        yield Served(url, token, process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
        await asyncio.gather(*drains)
