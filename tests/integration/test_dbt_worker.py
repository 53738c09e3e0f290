"""The dbt executor end to end: `streamcoord dbt import` writes the pipeline of a real dbt
project (DuckDB, no server), a coordinator on the broker triggers its stages, and a dbt worker
builds them with dbt-core."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import (
    CloudEvent,
    RunRecord,
    RunRequested,
    StageFailed,
    StageProgress,
    StageSucceeded,
)
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.pipelines.validation import validate_paths
from streamcoord.runtime import TopicNames
from streamcoord.worker import Worker, WorkerSettings
from streamcoord.worker.dbt import DbtExecutor
from tests.integration.coordination import Harness, create_topics, in_process, read_all

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

DBT_TOPIC = topology.DBT_TRIGGERS


def import_spec(project: Path, dbt_python: str, *extra: str) -> str:
    """`streamcoord dbt import` as a user runs it; checks that validate accepts the result."""
    output = project.parent / "shop.yaml"
    subprocess.run(
        [sys.executable, "-m", "streamcoord.cli.main", "dbt", "import", str(project),
         "--profiles-dir", str(project), "--dbt-python", dbt_python, "--pool-slots", "1",
         "-o", str(output), *extra],
        check=True, timeout=120,
    )  # fmt: skip
    report = validate_paths([output])
    assert report.ok, report.problems
    return output.read_text()


@contextlib.asynccontextmanager
async def dbt_worker(
    bootstrap: str, topics: TopicNames, group: str, dbt_python: str
) -> AsyncIterator[Worker]:
    worker = Worker(
        WorkerSettings(group_id=group, topics=[DBT_TOPIC], concurrency=2,
                       heartbeat_interval_s=30.0, poll_timeout_ms=50),
        KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=topics.prefix),
    )  # fmt: skip
    worker.registry.add(None, DbtExecutor(python=dbt_python, progress_interval_s=0.0))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(30):
            await worker.ready.wait()
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def run_ends(harness: Harness, pipeline: str, run_key: str) -> RunRecord:
    """The run's record once it succeeded or failed."""
    consumer = harness.reader(harness.topics.runs)
    await consumer.start()
    try:
        async for message in consumer:
            record = decode(message.value, list(message.headers or ()))
            if (
                isinstance(record, RunRecord)
                and (record.data.pipeline, record.data.run_key) == (pipeline, run_key)
                and record.data.status in {"succeeded", "failed"}
            ):
                return record
    finally:
        await consumer.stop()
    raise AssertionError("the runs topic ended")


async def worker_reports(harness: Harness) -> list[CloudEvent]:
    """Every executor report on the events topic so far, in order per run."""
    records = await read_all(harness, harness.topics.events)
    kinds = StageSucceeded | StageFailed | StageProgress
    return [event for *_, event in records if isinstance(event, kinds)]


def table(project: Path, dbt_python: str, sql: str) -> list[list[object]]:
    """Rows of a query on the project's DuckDB file, read with the dbt venv's duckdb."""
    code = (
        "import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True);"
        " print(json.dumps(con.sql(sys.argv[2]).fetchall(), default=str))"
    )
    done = subprocess.run(
        [dbt_python, "-c", code, str(project.parent / "shop.duckdb"), sql],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    rows: list[list[object]] = json.loads(done.stdout)
    return rows


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicNames:
    names = TopicNames(prefix=f"{unique_name('dbt')}.")
    await create_topics(kafka_bootstrap, names, partitions=2)
    return names


async def run_pipeline(
    harness: Harness, run_key: str, params: dict[str, object] | None = None
) -> RunRecord:
    request = RunRequested(
        id=f"request-{run_key}", source="test",
        data={"pipeline": "shop", "run_key": run_key, "params": params or {}},
    )  # fmt: skip
    await harness.emit_event(request)
    return await asyncio.wait_for(run_ends(harness, "shop", run_key), 180)


async def test_an_imported_project_builds_model_by_model_with_results_as_outputs(
    kafka_bootstrap: str,
    topics: TopicNames,
    unique_name: Callable[[str], str],
    dbt_python: str,
    shop_project: Path,
) -> None:
    spec = import_spec(shop_project, dbt_python)
    async with (
        in_process(kafka_bootstrap, topics, unique_name("group"), spec=spec, executor=False)
        as harness,
        dbt_worker(kafka_bootstrap, topics, unique_name("worker"), dbt_python),
    ):  # fmt: skip
        record = await run_pipeline(harness, "day-1")
        reports = await worker_reports(harness)
    assert record.data.status == "succeeded", record.data
    assert record.data.stages == dict.fromkeys(
        ["customers", "orders_daily", "raw_orders", "stg_orders"], "succeeded"
    )
    outputs = {e.data.stage: e.data.outputs for e in reports if isinstance(e, StageSucceeded)}
    assert outputs["stg_orders"]["models"] == ["stg_orders"]
    nodes = outputs["stg_orders"]["nodes"]
    assert isinstance(nodes, dict)
    assert nodes["model.shop.stg_orders"]["status"] == "success"
    # the model's data tests ran with it
    assert nodes["test.shop.unique_stg_orders_id.beb6e97f2f"]["status"] == "pass"
    assert outputs["raw_orders"]["nodes"]["seed.shop.raw_orders"]["rows_affected"] == 3
    progress = [e.data.offsets for e in reports if isinstance(e, StageProgress)
                and e.data.stage == "stg_orders"]  # fmt: skip
    assert progress[-1] == {"done": 3, "total": 3, "failed": 0}
    assert table(shop_project, dbt_python, "select * from orders_daily order by day") == [
        ["2024-01-01", 2, 30], ["2024-01-02", 1, 5],
    ]  # fmt: skip


FAILING_SPEC = """\
pipelines:
  - name: shop
    stages:
      - name: daily
        params: {{break_daily: "${{ params.break_daily }}"}}
        executor:
          topic: streamcoord.triggers.dbt
          config:
            project_dir: {project}
            profiles_dir: {project}
            select: ["+orders_daily"]
"""


async def test_a_failing_model_fails_its_stage_naming_the_model(
    kafka_bootstrap: str,
    topics: TopicNames,
    unique_name: Callable[[str], str],
    dbt_python: str,
    shop_project: Path,
) -> None:
    spec = FAILING_SPEC.format(project=shop_project)
    async with (
        in_process(kafka_bootstrap, topics, unique_name("group"), spec=spec, executor=False)
        as harness,
        dbt_worker(kafka_bootstrap, topics, unique_name("worker"), dbt_python),
    ):  # fmt: skip
        record = await run_pipeline(harness, "broken", {"break_daily": True})
        reports = await worker_reports(harness)
    assert record.data.status == "failed"
    (failure,) = [e for e in reports if isinstance(e, StageFailed)]
    assert failure.data.error.startswith(
        "dbt build failed: 1 node(s) failed: model.shop.orders_daily (error: Catalog Error:"
    ), failure.data.error
    assert "skipped: test.shop.unique_orders_daily_day" in failure.data.error
    assert failure.data.retryable
    # what did not depend on the failed model was built and tested
    (progress,) = [e.data.offsets for e in reports if isinstance(e, StageProgress)][-1:]
    assert progress == {"done": 6, "total": 6, "failed": 1}
