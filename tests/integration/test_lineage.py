"""``streamcoord lineage`` on a real broker: a cross-pipeline run's RunEvents, through the
OpenLineage client's own file transport configured by its environment variables, with the
datasets a worker (the worker SDK) reports beside the declared ones."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

pytest.importorskip("openlineage.client", reason="the lineage extra is not installed")

from streamcoord.events.models import ExternalEvent
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.lineage import run_uuid
from streamcoord.runtime import TopicNames
from streamcoord.worker import StageContext, Worker, WorkerSettings
from tests.integration.coordination import (
    create_topics,
    in_process,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ROOT = Path(__file__).parents[2]
SPEC = """\
pipelines:
  - name: up
    run_key: event.data.day
    triggers:
      - kind: event
        type: up.go
    stages:
      - name: load
        params:
          inputs: ["raw/${ run_key }"]
  - name: down
    run_key: event.data.run_key
    triggers:
      - kind: pipeline
        pipeline: up
        outcomes: [succeeded]
    stages:
      - name: report
"""


async def test_a_cross_pipeline_run_reaches_lineage_with_its_parents(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topics = TopicNames(prefix=f"{unique_name('lineage')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC)
    worker = Worker(
        WorkerSettings(group_id=unique_name("workers")),
        KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=topics.prefix),
    )

    @worker.stage("up.load")
    async def load(ctx: StageContext) -> None:
        ctx.writes(f"clean/{ctx.run_key}")

    @worker.stage("down.report")
    async def report(ctx: StageContext) -> None:
        ctx.reads(f"clean/{ctx.run_key}")
        ctx.writes(f"daily/{ctx.run_key}.pdf", namespace="s3://reports")

    stop = asyncio.Event()
    async with in_process(
        kafka_bootstrap, topics, unique_name("group"), spec=SPEC, executor=False
    ) as harness:
        working = asyncio.create_task(worker.run(stop))
        try:
            await asyncio.wait_for(worker.ready.wait(), 30)
            await harness.emit_event(
                ExternalEvent(id="g1", source="app", type="up.go", data={"day": "d1"})
            )
            await asyncio.wait_for(until_runs_succeeded(harness, 2), 90)
        finally:
            stop.set()
            await asyncio.wait_for(working, 60)
    out = tmp_path / "lineage.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(out),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }
    env.pop("OPENLINEAGE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "lineage", "--until-end",
        "--namespace", "shop", "--spec", str(spec_file),
        "-b", kafka_bootstrap, "--topic-prefix", topics.prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output
    events = [orjson.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_job: dict[str, list[str]] = {}
    for event in events:
        by_job.setdefault(event["job"]["name"], []).append(event["eventType"])
    assert by_job == {
        "up": ["START", "COMPLETE"],
        "up.load": ["START", "COMPLETE"],
        "down": ["START", "COMPLETE"],
        "down.report": ["START", "COMPLETE"],
    }
    parents = {
        e["job"]["name"]: e["run"]["facets"].get("parent", {}).get("run", {}).get("runId")
        for e in events
        if e["eventType"] == "START"
    }
    assert parents == {
        "up": None,
        "up.load": run_uuid("up/d1"),
        "down": run_uuid("up/d1"),
        "down.report": run_uuid("down/d1"),
    }

    def datasets(job: str, kind: str) -> list[tuple[str, str]]:
        (complete,) = [e for e in events if (e["job"]["name"], e["eventType"]) == (job, "COMPLETE")]
        return [(d["namespace"], d["name"]) for d in complete[kind]]

    assert datasets("up.load", "inputs") == [("shop", "raw/d1")]  # declared
    assert datasets("up.load", "outputs") == [("shop", "clean/d1")]  # reported
    assert datasets("down.report", "inputs") == [("shop", "clean/d1")]
    assert datasets("down.report", "outputs") == [("s3://reports", "daily/d1.pdf")]
