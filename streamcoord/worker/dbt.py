"""Built-in executor: run ``dbt build`` (or run, test, seed, snapshot) for a stage's selection.

Config: :class:`~streamcoord.pipelines.executors.DbtExecutorConfig` (``project_dir``, ``select``,
``exclude``, ``selector``, ``target``, ``vars``, ``env``, ...). The stage's params become dbt
vars (on top of ``vars``) unless ``params_as_vars: false``. dbt-core runs as a library
(``dbtRunner().invoke``) in a child process, with the worker's Python or ``--dbt-python``.

* Each finished node is a progress report (``offsets``: ``done``, ``total``, ``failed``), at
  most one per ``progress_interval_s`` and always the last one.
* Success: the outputs are ``command``, ``nodes`` (per node unique id: ``status``,
  ``execution_time`` and, where dbt says, ``rows_affected``), ``counts`` (nodes per status)
  and ``models`` (the models built).
* Failed nodes: a retryable failure (the retry policy decides) naming every failed node with
  the first line of its error, then the skipped ones, then the tail of dbt's output.
* dbt could not run at all (invalid config, no project, a parse, profile or selection error): a
  failure for good; so is an invalid ``executor.config``.
* Cancel, deadline, ``timeout_seconds``, shutdown: dbt's process group is stopped (SIGTERM,
  then SIGKILL after ``kill_grace_seconds``); the attempt ends once it is gone.

Each attempt gets its own dbt target directory (removed afterwards), so attempts of one
project can run at once without overwriting each other's artifacts. Whether the warehouse
takes concurrent writers is the project's business: DuckDB does not (put such stages in a pool
of one slot; ``streamcoord dbt import --pool-slots 1`` does).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

import orjson
from pydantic import JsonValue

from streamcoord.pipelines.executors import DbtExecutorConfig
from streamcoord.worker._config import parse_config
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError, StageError
from streamcoord.worker.dbt_process import DbtInvocation, DbtNode, invoke_dbt
from streamcoord.worker.secrets import Secrets

__all__ = ["DbtExecutor", "dbt_args"]

_KILL_GRACE_S: Final = 10.0


def dbt_args(
    config: DbtExecutorConfig, params: Mapping[str, JsonValue], target_path: str | None = None
) -> list[str]:
    """The dbt command line (without ``dbt``) for one attempt."""
    args = [config.command, "--project-dir", config.project_dir]
    if config.profiles_dir:
        args += ["--profiles-dir", config.profiles_dir]
    if config.target:
        args += ["--target", config.target]
    if target_path:
        args += ["--target-path", target_path]
    if config.select:
        args += ["--select", *config.select]
    if config.exclude:
        args += ["--exclude", *config.exclude]
    if config.selector:
        args += ["--selector", config.selector]
    variables = {**config.vars, **(params if config.params_as_vars else {})}
    if variables:
        args += ["--vars", orjson.dumps(variables).decode()]
    if config.full_refresh:
        args.append("--full-refresh")
    if config.threads is not None:
        args += ["--threads", str(config.threads)]
    return args


class DbtExecutor:
    """A handler that runs one dbt invocation per attempt (register it as a catch-all)."""

    def __init__(
        self,
        *,
        python: str = sys.executable,
        progress_interval_s: float = 1.0,
        kill_grace_s: float = _KILL_GRACE_S,
    ) -> None:
        self.python = python
        self.progress_interval_s = progress_interval_s
        self.kill_grace_s = kill_grace_s

    async def __call__(self, ctx: StageContext) -> dict[str, JsonValue]:
        """Run dbt for the attempt; raise StageError naming the failed nodes."""
        config: DbtExecutorConfig = parse_config(ctx.config, DbtExecutorConfig)
        secrets = Secrets()
        resolved = secrets.resolve(ctx.config.get("env", {}), "executor.config.env")
        env = {str(k): _text(v) for k, v in resolved.items()} if isinstance(resolved, dict) else {}
        try:
            return await self._run(ctx, config, env, secrets)
        except StageError as error:
            raise secrets.redacted(error) from None

    async def _run(
        self, ctx: StageContext, config: DbtExecutorConfig, env: dict[str, str], secrets: Secrets
    ) -> dict[str, JsonValue]:
        progress = _Progress(ctx, self.progress_interval_s)
        grace = config.kill_grace_seconds or self.kill_grace_s
        with tempfile.TemporaryDirectory(prefix="streamcoord-dbt-") as target_path:
            args = dbt_args(config, ctx.params, target_path)
            try:
                async with asyncio.timeout(config.timeout_seconds):
                    result = await invoke_dbt(
                        args, python=self.python, env=env, on_node=progress.node,
                        secrets=secrets, kill_grace_s=grace,
                    )  # fmt: skip
            except TimeoutError:
                raise StageError(
                    f"dbt {config.command} timed out after {config.timeout_seconds:g}s;"
                    " its process group was stopped"
                ) from None
        await progress.flush()
        if result.error is not None:
            raise NonRetryableError(
                f"dbt {config.command} could not run: {result.error}\n{_output(result)}",
                hint="run the same dbt command by hand in the project to see why",
            )
        if not result.success:
            raise StageError(_failure(config.command, result))
        return _outputs(config.command, result.nodes)


class _Progress:
    """Progress reports for finished nodes, at most one per interval; the last one always."""

    def __init__(self, ctx: StageContext, interval_s: float) -> None:
        self._ctx = ctx
        self._interval_s = interval_s
        self._last = float("-inf")
        self._pending: dict[str, int] | None = None
        self._failed = 0

    async def node(self, node: DbtNode) -> None:
        self._failed += node.failed
        done = node.index or 0
        self._pending = {"done": done, "total": node.total or done, "failed": self._failed}
        if time.monotonic() - self._last >= self._interval_s or done == node.total:
            await self.flush()

    async def flush(self) -> None:
        if self._pending is None:
            return
        offsets, self._pending = self._pending, None
        self._last = time.monotonic()
        await self._ctx.progress(offsets=offsets)


def _outputs(command: str, nodes: list[DbtNode]) -> dict[str, JsonValue]:
    per_node: dict[str, JsonValue] = {}
    for node in nodes:
        entry: dict[str, JsonValue] = {"status": node.status, "execution_time": node.execution_time}
        if node.rows_affected is not None:
            entry["rows_affected"] = node.rows_affected
        per_node[node.unique_id] = entry
    counts = Counter(node.status for node in nodes)
    built = sorted(n.name for n in nodes if n.resource_type == "model" and n.status == "success")
    models: list[JsonValue] = list(built)
    return {
        "command": command,
        "nodes": per_node,
        "counts": dict(sorted(counts.items())),
        "models": models,
    }


def _failure(command: str, result: DbtInvocation) -> str:
    failed = [node for node in result.nodes if node.failed]
    skipped = [node.unique_id for node in result.nodes if node.status == "skipped"]
    if failed:
        names = "; ".join(
            f"{node.unique_id} ({node.status}: {_first_line(node)})" for node in failed
        )
        text = f"dbt {command} failed: {len(failed)} node(s) failed: {names}"
    else:
        text = f"dbt {command} failed (exit code {result.exit_code}) with no failed node"
    if skipped:
        text += f"; skipped: {', '.join(skipped)}"
    return f"{text}\n{_output(result)}"


def _first_line(node: DbtNode) -> str:
    lines = [line.strip() for line in (node.message or "").splitlines() if line.strip()]
    # dbt's first line names the node again ("Runtime Error in model x"); the cause follows.
    return lines[1] if len(lines) > 1 else (lines[0] if lines else "no message")


def _output(result: DbtInvocation) -> str:
    return f"--- dbt output (last bytes) ---\n{result.output}" if result.output else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
