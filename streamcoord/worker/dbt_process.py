"""Running dbt through :mod:`streamcoord.worker.dbt_child` in a child process.

dbt runs in its own process (and process group) so that a cancelled attempt stops it for sure,
including the database sessions it holds, and so that dbt-core may live in another Python
environment when its pins conflict with the worker's. The child reports each finished node as
it goes; :func:`invoke_dbt` hands those to a callback and returns the final result.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from streamcoord.errors import ConfigError
from streamcoord.worker.secrets import Secrets
from streamcoord.worker.shell import TAIL_BYTES, OutputTail, stop_group

__all__ = ["CHILD_PROGRAM", "DbtInvocation", "DbtNode", "invoke_dbt"]

#: The file the dbt Python runs (standard library and dbt only).
CHILD_PROGRAM: Final = Path(__file__).with_name("dbt_child.py")
#: Lines longer than this from the child are not protocol lines (dbt never writes stdout).
_MAX_LINE: Final = 16 * 1024 * 1024

NodeCallback = Callable[["DbtNode"], Awaitable[None]]
#: Called with a node's unique id when dbt starts it.
StartCallback = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class DbtNode:
    """One finished node of a dbt invocation."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str | None = None
    execution_time: float = 0.0
    rows_affected: int | None = None
    index: int | None = None
    total: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DbtNode:
        def optional_int(name: str) -> int | None:
            value = record.get(name)
            return int(value) if isinstance(value, int | float) else None

        message = record.get("message")
        return cls(
            unique_id=str(record.get("unique_id") or "?"),
            name=str(record.get("name") or "?"),
            resource_type=str(record.get("resource_type") or "?"),
            status=str(record.get("status") or "unknown"),
            message=None if message is None else str(message),
            execution_time=float(record.get("execution_time") or 0.0),
            rows_affected=optional_int("rows_affected"),
            index=optional_int("index"),
            total=optional_int("total"),
        )

    @property
    def failed(self) -> bool:
        """An error (model, seed, snapshot) or a failed test; warnings and skips are not."""
        return self.status in {"error", "fail", "runtime error"}


@dataclass(slots=True)
class DbtInvocation:
    """What one dbt invocation did: ``error`` when dbt itself could not run (no nodes ran);
    ``success`` false without an error and without failed nodes: the process died."""

    exit_code: int
    success: bool = False
    error: str | None = None
    nodes: list[DbtNode] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)
    output: str = ""  # the last bytes of dbt's console output, secrets redacted


async def invoke_dbt(
    args: Sequence[str],
    *,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    on_node: NodeCallback | None = None,
    on_start: StartCallback | None = None,
    secrets: Secrets | None = None,
    kill_grace_s: float = 10.0,
    tail_bytes: int = TAIL_BYTES,
) -> DbtInvocation:
    """Run ``dbt ARGS`` with ``python``; cancelling this stops dbt's whole process group."""
    secrets = secrets or Secrets()
    full_env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **(env or {})}
    try:
        process = await asyncio.create_subprocess_exec(
            python, str(CHILD_PROGRAM), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=full_env,
            start_new_session=True, limit=_MAX_LINE,
        )  # fmt: skip
    except OSError as error:
        raise ConfigError(
            f"cannot start the dbt Python {python!r}: {error.strerror}",
            hint="point --dbt-python at a Python that has dbt-core and its adapter",
        ) from None
    output = OutputTail(tail_bytes, secrets)
    final: dict[str, Any] = {}
    nodes: list[DbtNode] = []
    reading = asyncio.gather(
        _read_protocol(process.stdout, final, nodes, (on_node, on_start)),
        output.drain(process.stderr),
    )
    try:
        await asyncio.shield(reading)
        code = await process.wait()
    except BaseException:  # cancelled (or the callback failed): dbt must not outlive the attempt
        await stop_group(process, kill_grace_s)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        raise
    return DbtInvocation(
        exit_code=code,
        success=bool(final.get("success")) and code == 0,
        error=final.get("error"),  # no final record: the process died (a kill, no memory)
        nodes=[DbtNode.from_record(r) for r in final.get("results", [])] or nodes,
        listed=[str(item) for item in final.get("listed", [])],
        output=output.text(),
    )


async def _read_protocol(
    stream: asyncio.StreamReader | None,
    final: dict[str, Any],
    nodes: list[DbtNode],
    callbacks: tuple[NodeCallback | None, StartCallback | None],
) -> None:
    on_node, on_start = callbacks
    if stream is None:
        return
    async for line in stream:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # not ours (a library printing despite the redirect)
        if not isinstance(record, dict):
            continue
        if record.get("kind") == "node":
            node = DbtNode.from_record(record)
            nodes.append(node)
            if on_node is not None:
                await on_node(node)
        elif record.get("kind") == "started" and on_start is not None:
            await on_start(str(record.get("unique_id")))
        elif record.get("kind") == "result":
            final.update(record)
