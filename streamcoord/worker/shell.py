"""Built-in executor: run the stage's ``executor.config.command``; the exit code decides.

``command`` is a template: ``{name}`` takes a stage param or ``run_id``, ``run_key``,
``pipeline``, ``stage``, ``attempt``; ``{{`` and ``}}`` are literal braces. The template is split
with :func:`shlex.split` *before* filling it in, so a value with spaces stays one argument and
cannot inject arguments; the program is executed directly. With ``shell: true`` the filled-in
values are shell-quoted and the line runs under ``/bin/sh -c``.

Other config: ``timeout_seconds`` (the process group is killed), ``cwd``, ``env`` (a mapping).
On exit 0 the outputs are ``{"exit_code": 0}`` plus, if the last line of stdout is a JSON
object, its keys. Otherwise the failure names the exit code and carries the last
:data:`TAIL_BYTES` of stderr and stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import signal
from collections.abc import Mapping
from typing import Any, Final

import orjson
from pydantic import JsonValue

from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError, StageError

__all__ = ["TAIL_BYTES", "ShellExecutor", "render_command"]

TAIL_BYTES: Final = 4096
_FIELD: Final = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _fill(template: str, values: Mapping[str, Any], quote: bool) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in {"{{", "}}"}:
            return token[0]
        name = match.group(1)
        if name is None:
            raise NonRetryableError(f"command template {template!r}: unmatched {token!r}")
        if name not in values:
            known = ", ".join(sorted(values))
            raise NonRetryableError(
                f"command template names {{{name}}}, which is not a param (known: {known})"
            )
        text = _text(values[name])
        return shlex.quote(text) if quote else text

    return _FIELD.sub(replace, template)


def render_command(config: Mapping[str, JsonValue], values: Mapping[str, Any]) -> list[str]:
    """The argv to execute for ``config`` filled with ``values``; raises NonRetryableError."""
    template = config.get("command")
    if isinstance(template, list):
        return [_fill(str(part), values, quote=False) for part in template]
    if not isinstance(template, str) or not template.strip():
        raise NonRetryableError(
            "the stage has no executor.config.command for the shell executor",
            hint="set executor.config.command in the pipeline spec",
        )
    if config.get("shell") is True:
        return ["/bin/sh", "-c", _fill(template, values, quote=True)]
    try:
        parts = shlex.split(template)
    except ValueError as error:
        raise NonRetryableError(f"command template {template!r}: {error}") from None
    return [_fill(part, values, quote=False) for part in parts]


class _Tail:
    """The last ``limit`` bytes of a stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while chunk := await stream.read(65536):
            self.data += chunk
            del self.data[: max(0, len(self.data) - self.limit)]

    def text(self) -> str:
        return self.data.decode(errors="replace")


class ShellExecutor:
    """A handler that runs one process per attempt (register it as a worker's catch-all)."""

    def __init__(self, *, tail_bytes: int = TAIL_BYTES) -> None:
        self.tail_bytes = tail_bytes

    async def __call__(self, ctx: StageContext) -> dict[str, JsonValue]:
        """Run the attempt's command; raise StageError on a non-zero exit or a timeout."""
        config = ctx.config
        argv = render_command(config, ctx.as_template_values())
        process = await self._spawn(argv, ctx)
        stdout, stderr = _Tail(self.tail_bytes), _Tail(self.tail_bytes)
        streams = asyncio.gather(stdout.drain(process.stdout), stderr.drain(process.stderr))
        try:
            code = await self._wait(process, streams, ctx, _timeout(config))
        finally:
            await _reap(process, streams)
        if code != 0:
            raise StageError(_failure(argv, code, stdout, stderr))
        return {"exit_code": 0, **_last_json_line(stdout.text())}

    async def _spawn(self, argv: list[str], ctx: StageContext) -> asyncio.subprocess.Process:
        env = {**os.environ, **_env(ctx)}
        cwd = ctx.config.get("cwd")
        try:
            return await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env,
                cwd=cwd if isinstance(cwd, str) else None, start_new_session=True,
            )  # fmt: skip
        except OSError as error:
            raise NonRetryableError(f"cannot start {argv[0]!r}: {error.strerror}") from None

    async def _wait(
        self,
        process: asyncio.subprocess.Process,
        streams: asyncio.Future[Any],
        ctx: StageContext,
        limit_s: float | None,
    ) -> int:
        cancelled = asyncio.ensure_future(ctx.wait_cancelled())
        finished = asyncio.ensure_future(_finish(process, streams))
        try:
            done, _ = await asyncio.wait(
                {finished, cancelled}, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancelled.cancel()
        if finished in done:
            return finished.result()
        finished.cancel()
        if cancelled in done:
            raise StageError(f"stopped: {ctx.cancel_reason}")
        raise StageError(f"timed out after {limit_s:g}s; the process group was killed")


async def _finish(process: asyncio.subprocess.Process, streams: asyncio.Future[Any]) -> int:
    await asyncio.shield(streams)  # cancelling the wait must not cancel the pipe readers
    return await process.wait()


async def _reap(process: asyncio.subprocess.Process, streams: asyncio.Future[Any]) -> None:
    """Kill the process group if it still runs, then collect the process and its pipes."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    try:
        async with asyncio.timeout(5):  # pipes close once the killed group is gone
            await streams
    except TimeoutError:
        streams.cancel()


def _timeout(config: Mapping[str, JsonValue]) -> float | None:
    value = config.get("timeout_seconds")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise NonRetryableError(f"executor.config.timeout_seconds must be > 0, not {value!r}")
    return float(value)


def _env(ctx: StageContext) -> dict[str, str]:
    extra = ctx.config.get("env")
    env = {str(k): _text(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
    env.update(
        STREAMCOORD_RUN_ID=ctx.run_id, STREAMCOORD_RUN_KEY=ctx.run_key,
        STREAMCOORD_PIPELINE=ctx.pipeline, STREAMCOORD_STAGE=ctx.stage,
        STREAMCOORD_ATTEMPT=str(ctx.attempt), STREAMCOORD_IDEMPOTENCY_KEY=ctx.idempotency_key,
    )  # fmt: skip
    return env


def _failure(argv: list[str], code: int, stdout: _Tail, stderr: _Tail) -> str:
    how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
    parts = [f"{shlex.join(argv)[:200]} {how}"]
    if stderr.data:
        parts.append(f"--- stderr (last {stderr.limit} bytes) ---\n{stderr.text()}")
    if stdout.data:
        parts.append(f"--- stdout (last {stdout.limit} bytes) ---\n{stdout.text()}")
    return "\n".join(parts)


def _last_json_line(stdout: str) -> dict[str, JsonValue]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return {}
    try:
        parsed = orjson.loads(lines[-1])
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
