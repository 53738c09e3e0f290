"""The Airflow executor and bridge against a real Airflow 3 (opt-in, see tests/airflow_fixtures):
a coordinator on the broker triggers a stage, the Airflow worker runs the DAG and follows it;
cancelling the run marks the DAG run failed; the asset the DAG updated starts a pipeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.devtools.airflow import LocalAirflow
from streamcoord.emit import Emitter
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import (
    CloudEvent,
    RunCancel,
    RunRecord,
    RunRequested,
    StageFailed,
    StageStarted,
    StageSucceeded,
)
from streamcoord.integrations.airflow_api import AirflowClient
from streamcoord.integrations.airflow_bridge import ASSET_EVENT_TYPE, AssetEventBridge
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import TopicNames
from streamcoord.worker import Worker, WorkerSettings
from streamcoord.worker.airflow import AirflowExecutor
from tests.airflow_fixtures import DEMO_DAG
from tests.integration.coordination import Harness, create_topics, in_process

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

ASSET = "streamcoord://tests/orders"
SPEC = """\
pipelines:
  - name: orders
    stages:
      - name: load
        params:
          n: "${{ params.n }}"
          fail: "${{ params.fail }}"
          sleep: "${{ params.sleep }}"
        executor:
          topic: streamcoord.triggers.airflow
          config:
            base_url: {base_url}
            dag_id: streamcoord_demo
            username: admin
            password: {{secret: {{env: SC_TEST_AIRFLOW_PASSWORD}}}}
            poll_interval_seconds: 0.5
  - name: after_airflow
    run_key: event.data.source_run_id
    triggers:
      - kind: event
        type: airflow.asset.updated
        subject: "{asset}"
    stages:
      - name: report
"""


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicNames:
    names = TopicNames(prefix=f"{unique_name('airflow')}.")
    await create_topics(kafka_bootstrap, names, partitions=2)
    return names


@contextlib.asynccontextmanager
async def system(
    kafka_bootstrap: str, topics: TopicNames, unique_name: Callable[[str], str],
    airflow: LocalAirflow,
) -> AsyncIterator[Harness]:  # fmt: skip
    """A coordinator and an Airflow worker on the broker, driving the session's Airflow."""
    spec = SPEC.format(base_url=airflow.base_url, asset=ASSET)
    worker = Worker(
        WorkerSettings(group_id=unique_name("worker"), topics=[topology.AIRFLOW_TRIGGERS],
                       heartbeat_interval_s=30.0, poll_timeout_ms=50),
        KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topics.prefix),
    )  # fmt: skip
    worker.registry.add(None, AirflowExecutor())
    stop = asyncio.Event()
    async with in_process(
        kafka_bootstrap, topics, unique_name("group"), spec=spec, executor=False
    ) as harness:
        task = asyncio.create_task(worker.run(stop))
        try:
            async with asyncio.timeout(30):
                await worker.ready.wait()
            yield harness
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


async def request(harness: Harness, run_key: str, **params: object) -> None:
    values = {"n": 1, "fail": False, "sleep": 0, **params}
    await harness.emit_event(RunRequested(
        id=f"request-{run_key}", source="test",
        data={"pipeline": "orders", "run_key": run_key, "params": values},
    ))  # fmt: skip


async def first(harness: Harness, topic: str, match: Callable[[CloudEvent], bool]) -> CloudEvent:
    consumer = harness.reader(topic)
    await consumer.start()
    try:
        async for message in consumer:
            event = decode(message.value, list(message.headers or ()))
            if match(event):
                return event
    finally:
        await consumer.stop()
    raise AssertionError("the topic ended")


def run_ended(pipeline: str, run_key: str) -> Callable[[CloudEvent], bool]:
    return lambda e: (
        isinstance(e, RunRecord) and (e.data.pipeline, e.data.run_key) == (pipeline, run_key)
        and e.data.status in {"succeeded", "failed", "cancelled"}
    )  # fmt: skip


def is_success_of(record: CloudEvent) -> Callable[[CloudEvent], bool]:
    assert isinstance(record, RunRecord)
    return lambda e: isinstance(e, StageSucceeded) and e.data.run_id == record.data.run_id


def is_run_of(pipeline: str) -> Callable[[CloudEvent], bool]:
    return lambda e: isinstance(e, RunRecord) and e.data.pipeline == pipeline


def dag_run(airflow: LocalAirflow, url: str) -> dict[str, Any]:
    run_id = url.rsplit("/", 1)[1]
    response = airflow.get(f"/api/v2/dags/{DEMO_DAG}/dagRuns/{run_id}")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture
def airflow_password(airflow: LocalAirflow, monkeypatch: pytest.MonkeyPatch) -> LocalAirflow:
    monkeypatch.setenv("SC_TEST_AIRFLOW_PASSWORD", airflow.password)
    return airflow


async def test_a_stage_runs_its_dag_with_the_params_and_reports_the_run_url(
    kafka_bootstrap: str, topics: TopicNames, unique_name: Callable[[str], str],
    airflow_password: LocalAirflow, tmp_path: Path,
) -> None:  # fmt: skip
    airflow = airflow_password
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topics.prefix)
    login = {"username": airflow.username, "password": airflow.password}
    async with (
        system(kafka_bootstrap, topics, unique_name, airflow) as harness,
        AirflowClient(airflow.base_url, **login) as client,
        Emitter(kafka) as emitter,
    ):
        bridge = AssetEventBridge(client, emitter, tmp_path / "cursor.json", interval_s=0.5)
        await bridge.poll_once()  # starts after the newest asset event there is now
        stop = asyncio.Event()
        bridging = asyncio.create_task(bridge.run(stop))
        try:
            await request(harness, "ok-1", n=21)
            record = await asyncio.wait_for(
                first(harness, harness.topics.runs, run_ended("orders", "ok-1")), 120
            )
            succeeded = await first(harness, harness.topics.events, is_success_of(record))
            # the DAG updated its asset: the bridge turns that into a streamcoord event, which
            # starts the pipeline waiting for it
            asset = await asyncio.wait_for(
                first(harness, harness.topics.events, lambda e: e.type == ASSET_EVENT_TYPE), 60
            )
            downstream = await asyncio.wait_for(
                first(harness, harness.topics.runs, is_run_of("after_airflow")), 60
            )
        finally:
            stop.set()
            await bridging
    assert isinstance(record, RunRecord)
    assert record.data.status == "succeeded"
    assert isinstance(succeeded, StageSucceeded)
    outputs = succeeded.data.outputs
    url = str(outputs["url"])
    assert url.startswith(f"{airflow.base_url}/dags/{DEMO_DAG}/runs/streamcoord__")
    assert outputs["state"] == "success"
    run = dag_run(airflow, url)
    assert run["state"] == "success"
    assert run["conf"] == {"n": 21, "fail": False, "sleep": 0}
    assert asset.subject == ASSET
    assert asset.data["source_run_id"] == run["dag_run_id"]  # type: ignore[index]
    assert isinstance(downstream, RunRecord)
    assert downstream.data.run_key == run["dag_run_id"]


async def test_a_failed_dag_run_fails_the_stage_naming_the_task_and_the_run(
    kafka_bootstrap: str, topics: TopicNames, unique_name: Callable[[str], str],
    airflow_password: LocalAirflow,
) -> None:  # fmt: skip
    async with system(kafka_bootstrap, topics, unique_name, airflow_password) as harness:
        await request(harness, "bad-1", fail=True)
        failed = await asyncio.wait_for(
            first(harness, harness.topics.events, lambda e: isinstance(e, StageFailed)), 120
        )
    assert isinstance(failed, StageFailed)
    error = failed.data.error
    assert "ended failed (failed tasks: work); see http://127.0.0.1:" in error, error
    assert failed.data.retryable


async def test_cancelling_the_run_marks_the_dag_run_failed_in_airflow(
    kafka_bootstrap: str, topics: TopicNames, unique_name: Callable[[str], str],
    airflow_password: LocalAirflow,
) -> None:  # fmt: skip
    airflow = airflow_password
    async with system(kafka_bootstrap, topics, unique_name, airflow) as harness:
        await request(harness, "long-1", sleep=600)
        started = await asyncio.wait_for(
            first(harness, harness.topics.events, lambda e: isinstance(e, StageStarted)), 60
        )
        run_id = started.data.run_id  # type: ignore[union-attr]
        # the DAG run exists in Airflow once it is being followed
        dag_runs: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while not dag_runs:
                dag_runs = [r for r in airflow.get(f"/api/v2/dags/{DEMO_DAG}/dagRuns?limit=100")
                            .json()["dag_runs"] if r["conf"].get("sleep") == 600]  # fmt: skip
                await asyncio.sleep(0.5)  # another process: poll it
        await harness.emit_event(RunCancel(
            id="cancel-long-1", source="test", data={"run_id": run_id, "reason": "test"}
        ))  # fmt: skip
        ended = await asyncio.wait_for(
            first(harness, harness.topics.runs, run_ended("orders", "long-1")), 60
        )
        failed = await asyncio.wait_for(
            first(harness, harness.topics.events, lambda e: isinstance(e, StageFailed)), 60
        )
    assert isinstance(ended, RunRecord)
    assert ended.data.status == "cancelled"
    assert isinstance(failed, StageFailed)
    assert failed.data.error.startswith("cancelled (")
    state = airflow.get(f"/api/v2/dags/{DEMO_DAG}/dagRuns/{dag_runs[0]['dag_run_id']}").json()[
        "state"
    ]
    assert state == "failed"


def test_the_bridge_command_sends_the_asset_events_airflow_has(
    kafka_bootstrap: str, topics: TopicNames, airflow: LocalAirflow, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STREAMCOORD_AIRFLOW_PASSWORD", airflow.password)
    command = [
        "airflow", "bridge", "--base-url", airflow.base_url, "--username", airflow.username,
        "--cursor", str(tmp_path / "cursor.json"), "--once", "--from-beginning",
        "-b", kafka_bootstrap, "--topic-prefix", topics.prefix,
    ]  # fmt: skip
    first_poll = CliRunner().invoke(app, command)
    assert first_poll.exit_code == 0, first_poll.output
    assert first_poll.output.startswith("sent ")
    assert first_poll.output.split()[1] != "0"  # the earlier tests' DAG runs updated the asset
    again = CliRunner().invoke(app, command)
    assert again.output.strip() == "sent 0 asset event(s)"  # the cursor remembers
