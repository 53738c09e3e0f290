"""Built-in executor: trigger an Airflow DAG run through Airflow 3's REST API and follow it.

Config: :class:`~streamcoord.pipelines.executors.AirflowExecutorConfig` (``base_url``, ``dag_id``,
``conf``, ``username`` + ``password`` or ``token`` as secret references, ...). The DAG run's
conf is ``conf`` with the stage's params on top.

* The DAG run id is derived from the trigger's idempotency key (``streamcoord__...``), so a
  trigger delivered again after a worker crash follows the run it started instead of starting
  a second one.
* The run is looked at every ``poll_interval_seconds`` until it is ``success`` (the attempt
  succeeds; outputs ``dag_id``, ``dag_run_id``, ``state``, ``url``: the run in Airflow's UI) or
  ``failed`` (a retryable failure naming the failed tasks and the run's URL). A poll that
  fails for a passing reason (connection, 5xx) is logged and the next one tried.
* A paused DAG fails the attempt for good unless ``unpause: true``; so do 4xx answers (unknown
  DAG, refused credentials) and an invalid config.
* Cancel (the coordinator's ``stage.cancel``, the deadline, worker shutdown) or
  ``timeout_seconds`` passing: the DAG run is marked ``failed`` in Airflow, which stops its
  running tasks, then the attempt ends (after ``timeout_seconds``: a retryable failure).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any, Final

import httpx
from pydantic import JsonValue

from streamcoord.integrations.airflow_api import (
    TERMINAL_STATES,
    AirflowApiError,
    AirflowClient,
    dag_run_url,
)
from streamcoord.pipelines.executors import AirflowExecutorConfig
from streamcoord.worker._config import parse_config
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError, StageError
from streamcoord.worker.secrets import Secrets

__all__ = ["AirflowExecutor", "dag_run_id"]

log = logging.getLogger(__name__)

_RUN_ID_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_.~:+-]+")  # Airflow's default run id pattern
_CANCEL_TIMEOUT_S: Final = 30.0


def dag_run_id(idempotency_key: str) -> str:
    """A DAG run id Airflow accepts, the same for every delivery of one trigger."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:10]
    readable = _RUN_ID_UNSAFE.sub("_", idempotency_key)[:180]
    return f"streamcoord__{readable}__{digest}"


class AirflowExecutor:
    """A handler that runs one DAG run per attempt (register it as a worker's catch-all).

    ``transport`` replaces httpx's network transport (tests).
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport

    async def __call__(self, ctx: StageContext) -> dict[str, JsonValue]:
        """Trigger the DAG run, wait for its end; raise StageError when it failed."""
        config: AirflowExecutorConfig = parse_config(ctx.config, AirflowExecutorConfig)
        secrets = Secrets()
        credentials = _credentials(ctx, secrets)
        client = AirflowClient(
            config.base_url, timeout_s=config.request_timeout_seconds,
            transport=self._transport, **credentials,
        )  # fmt: skip
        try:
            async with client:
                return await self._run(ctx, config, client)
        except AirflowApiError as error:
            kind = StageError if error.retryable else NonRetryableError
            raise secrets.redacted(kind(error.message, hint=error.hint)) from None
        except StageError as error:
            raise secrets.redacted(error) from None

    async def _run(
        self, ctx: StageContext, config: AirflowExecutorConfig, client: AirflowClient
    ) -> dict[str, JsonValue]:
        dag = await client.dag(config.dag_id)
        if dag.get("is_paused"):
            if not config.unpause:
                raise NonRetryableError(
                    f"DAG {config.dag_id} is paused in Airflow: its runs would never start",
                    hint="unpause it, or set executor.config.unpause: true",
                )
            await client.unpause(config.dag_id)
        run_id = dag_run_id(ctx.idempotency_key)
        url = dag_run_url(config.base_url, config.dag_id, run_id)
        run, created = await client.trigger(config.dag_id, run_id, {**config.conf, **ctx.params})
        log.info("%s DAG run %s", "triggered" if created else "following", url)
        try:
            async with asyncio.timeout(config.timeout_seconds):
                run = await _until_finished(client, config, run_id, run)
        except TimeoutError:
            await _mark_failed(client, config.dag_id, run_id)
            raise StageError(
                f"DAG run {run_id} of {config.dag_id} did not end within"
                f" {config.timeout_seconds:g}s; it was marked failed; see {url}"
            ) from None
        except asyncio.CancelledError:
            await _mark_failed(client, config.dag_id, run_id)
            raise
        if run.get("state") != "success":
            failed = await _failed_tasks(client, config.dag_id, run_id)
            raise StageError(
                f"DAG run {run_id} of {config.dag_id} ended {run.get('state')}"
                f"{f' (failed tasks: {failed})' if failed else ''}; see {url}"
            )
        return {
            "dag_id": config.dag_id,
            "dag_run_id": run_id,
            "state": "success",
            "url": url,
            "start_date": run.get("start_date"),
            "end_date": run.get("end_date"),
        }


async def _until_finished(
    client: AirflowClient, config: AirflowExecutorConfig, run_id: str, run: dict[str, Any]
) -> dict[str, Any]:
    """Poll until the run is in a terminal state; the attempt's deadline bounds the wait."""
    while run.get("state") not in TERMINAL_STATES:
        await asyncio.sleep(config.poll_interval_seconds)
        try:
            run = await client.dag_run(config.dag_id, run_id)
        except AirflowApiError as error:
            if not error.retryable:
                raise
            log.warning("looking at DAG run %s failed (%s); trying again", run_id, error,
                        extra={"retrying": True})  # fmt: skip
    return run


async def _mark_failed(client: AirflowClient, dag_id: str, run_id: str) -> None:
    """Mark the run failed so Airflow stops its tasks; shielded, bounded, never raising."""
    try:
        async with asyncio.timeout(_CANCEL_TIMEOUT_S):
            await asyncio.shield(client.set_dag_run_state(dag_id, run_id, "failed"))
        log.info("DAG run %s of %s marked failed (attempt cancelled)", run_id, dag_id)
    except (AirflowApiError, TimeoutError, asyncio.CancelledError) as error:
        log.warning("could not mark DAG run %s of %s failed: %s", run_id, dag_id, error)


async def _failed_tasks(client: AirflowClient, dag_id: str, run_id: str) -> str:
    try:
        tasks = await client.task_instances(dag_id, run_id)
    except AirflowApiError:
        return ""
    failed = sorted(
        str(task.get("task_id")) for task in tasks
        if task.get("state") in {"failed", "upstream_failed"}
    )  # fmt: skip
    return ", ".join(failed)


def _credentials(ctx: StageContext, secrets: Secrets) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in ("username", "password", "token"):
        raw = ctx.config.get(name)
        if raw is not None:
            value = secrets.resolve(raw, f"executor.config.{name}")
            values[name] = value if isinstance(value, str) else str(value)
    return values
