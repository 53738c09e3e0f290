"""Built-in executor: run the stage's ``executor.config.command``; the exit code decides.

``command`` is a template: ``{name}`` takes a stage param or ``run_id``, ``run_key``,
``pipeline``, ``stage``, ``attempt``; ``{{`` and ``}}`` are literal braces. The template is split
with :func:`shlex.split` *before* filling it in, so a value with spaces stays one argument and
cannot inject arguments; the program is executed directly. With ``shell: true`` the filled-in
values are shell-quoted and the line runs under ``/bin/sh -c``.

Other config: ``timeout_seconds`` (a retryable failure), ``kill_grace_seconds``, ``cwd``,
``env`` (a mapping; a value may be a secret reference, resolved on this worker, see
:mod:`streamcoord.worker.secrets`). On exit 0 the outputs are ``{"exit_code": 0}`` plus, if the
last line of stdout is a JSON object, its keys. Otherwise the failure names the exit code and
carries the last :data:`TAIL_BYTES` of stderr and stdout. Secret values are redacted from both.

Each command runs in its own session, so in its own process group with whatever it spawns.
When the attempt is cancelled (the coordinator's ``stage.cancel``, the trigger's deadline, the
worker shutting down) or ``timeout_seconds`` passes, the whole group gets SIGTERM, then SIGKILL
if any of it is still there after the grace period (``kill_grace_seconds``, default
:data:`KILL_GRACE_SECONDS`); the attempt ends only once the group is gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import JsonValue

from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError, StageError
from streamcoord.worker.secrets import Secrets

__all__ = [
    "KILL_GRACE_SECONDS",
    "TAIL_BYTES",
    "OutputTail",
    "ShellExecutor",
    "group_running",
    "render_command",
    "stop_group",
]

log = logging.getLogger(__name__)

TAIL_BYTES: Final = 4096
KILL_GRACE_SECONDS: Final = 10.0
_GROUP_POLL_S: Final = 0.02  # the kernel tells no one when a process group empties
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


class OutputTail:
    """The last ``limit`` bytes of a stream, secrets redacted (``secrets.longest`` bytes more
    are kept so that a value cut at the start can be dropped, see ``Secrets.redact_tail``)."""

    def __init__(self, limit: int, secrets: Secrets) -> None:
        self.limit = limit
        self.secrets = secrets
        self.data = bytearray()
        self.truncated = False

    async def drain(self, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        keep = self.limit + max(self.secrets.longest - 1, 0)
        while chunk := await stream.read(65536):
            self.data += chunk
            cut = max(0, len(self.data) - keep)
            self.truncated = self.truncated or cut > 0
            del self.data[:cut]

    def text(self) -> str:
        return self.secrets.redact_tail(bytes(self.data), truncated=self.truncated)


class ShellExecutor:
    """A handler that runs one process group per attempt (register it as a worker's catch-all)."""

    def __init__(
        self, *, tail_bytes: int = TAIL_BYTES, kill_grace_s: float = KILL_GRACE_SECONDS
    ) -> None:
        self.tail_bytes = tail_bytes
        self.kill_grace_s = kill_grace_s

    async def __call__(self, ctx: StageContext) -> dict[str, JsonValue]:
        """Run the attempt's command; raise StageError on a non-zero exit or a timeout."""
        secrets = Secrets()
        env = _env(ctx, secrets)  # resolved first: a missing secret fails before anything runs
        try:
            return await self._run(ctx, env, secrets)
        except StageError as error:
            raise secrets.redacted(error) from None

    async def _run(
        self, ctx: StageContext, env: dict[str, str], secrets: Secrets
    ) -> dict[str, JsonValue]:
        config = ctx.config
        argv = render_command(config, ctx.as_template_values())
        limit_s = _seconds(config, "timeout_seconds", None)
        grace_s = _seconds(config, "kill_grace_seconds", self.kill_grace_s)
        spawning = asyncio.ensure_future(self._spawn(argv, env, ctx))
        try:
            process = await asyncio.shield(spawning)
        except asyncio.CancelledError:  # cancelled while starting: it may have started anyway
            await stop_group(await spawning, grace_s or 0.0)
            raise
        stdout, stderr = OutputTail(self.tail_bytes, secrets), OutputTail(self.tail_bytes, secrets)
        streams = asyncio.gather(stdout.drain(process.stdout), stderr.drain(process.stderr))
        finished = False
        try:
            async with asyncio.timeout(limit_s):
                code = await _finish(process, streams)
            finished = True
        except TimeoutError:
            raise StageError(
                f"timed out after {limit_s:g}s; the process group was stopped"
            ) from None
        finally:  # also when cancelled: the group must be gone before the attempt ends
            await _reap(process, streams, None if finished else grace_s)
        if code != 0:
            raise StageError(_failure(argv, code, stdout, stderr))
        outputs = _last_json_line(stdout.text())
        return {"exit_code": 0, **_redacted_outputs(outputs, secrets)}

    async def _spawn(
        self, argv: list[str], env: dict[str, str], ctx: StageContext
    ) -> asyncio.subprocess.Process:
        env = {**os.environ, **env}
        cwd = ctx.config.get("cwd")
        try:
            return await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env,
                cwd=cwd if isinstance(cwd, str) else None, start_new_session=True,
            )  # fmt: skip
        except OSError as error:
            raise NonRetryableError(f"cannot start {argv[0]!r}: {error.strerror}") from None


async def _finish(process: asyncio.subprocess.Process, streams: asyncio.Future[Any]) -> int:
    await asyncio.shield(streams)  # cancelling the wait must not cancel the pipe readers
    return await process.wait()


async def _reap(
    process: asyncio.subprocess.Process, streams: asyncio.Future[Any], grace_s: float | None
) -> None:
    """Stop the process group (unless ``grace_s`` is None: it ended on its own), then collect
    the process and its pipes. A second cancellation does not cut the stopping short."""
    stopping = asyncio.ensure_future(
        process.wait() if grace_s is None else stop_group(process, grace_s)
    )
    try:
        await asyncio.shield(stopping)
    except asyncio.CancelledError:
        await stopping
        raise
    try:
        async with asyncio.timeout(5):  # pipes close once the stopped group is gone
            await streams
    except TimeoutError:
        streams.cancel()


async def stop_group(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM to the process's group; SIGKILL if any of it outlives ``grace_s``."""
    group = process.pid  # a session leader's pid is its group's id
    if not _signal_group(group, signal.SIGTERM):
        await process.wait()
        return
    try:
        async with asyncio.timeout(grace_s):
            await process.wait()
            # children may outlive the leader; nothing signals a group emptying: poll (bounded)
            while group_running(group):  # noqa: ASYNC110
                await asyncio.sleep(_GROUP_POLL_S)
            return
    except TimeoutError:
        log.warning("process group %d still ran %gs after SIGTERM; sent SIGKILL", group, grace_s)
    _signal_group(group, signal.SIGKILL)
    await process.wait()


def group_running(group: int) -> bool:
    """Whether a process of ``group`` still runs. Zombies do not count: an orphan killed with
    its group waits for init to collect it, which may take a while in a container."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: a zombie counts
        return _signal_group(group, 0)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] not in {"Z", "X"}:
            return True
    return False


def _signal_group(group: int, signum: int) -> bool:
    """Send ``signum`` to the group; False when no process of it is left."""
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        return False
    return True


def _seconds(config: Mapping[str, JsonValue], key: str, default: float | None) -> float | None:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise NonRetryableError(f"executor.config.{key} must be > 0, not {value!r}")
    return float(value)


def _env(ctx: StageContext, secrets: Secrets) -> dict[str, str]:
    extra = secrets.resolve(ctx.config.get("env"), "executor.config.env")
    env = {str(k): _text(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
    env.update(
        STREAMCOORD_RUN_ID=ctx.run_id, STREAMCOORD_RUN_KEY=ctx.run_key,
        STREAMCOORD_PIPELINE=ctx.pipeline, STREAMCOORD_STAGE=ctx.stage,
        STREAMCOORD_ATTEMPT=str(ctx.attempt), STREAMCOORD_IDEMPOTENCY_KEY=ctx.idempotency_key,
    )  # fmt: skip
    return env


def _failure(argv: list[str], code: int, stdout: OutputTail, stderr: OutputTail) -> str:
    how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
    parts = [f"{shlex.join(argv)[:200]} {how}"]
    if stderr.data:
        parts.append(f"--- stderr (last {stderr.limit} bytes) ---\n{stderr.text()}")
    if stdout.data:
        parts.append(f"--- stdout (last {stdout.limit} bytes) ---\n{stdout.text()}")
    return "\n".join(parts)


def _redacted_outputs(outputs: dict[str, JsonValue], secrets: Secrets) -> dict[str, JsonValue]:
    # The tail was redacted as text; a value with quotes or backslashes was JSON-escaped there.
    redacted = secrets.redact_outputs(outputs)
    return redacted if isinstance(redacted, dict) else {}


def _last_json_line(stdout: str) -> dict[str, JsonValue]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        return {}
    try:
        parsed = orjson.loads(lines[-1])
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
