"""The audit trail on a real broker: the chains a coordinator writes verify, a copy of the
decisions topic with one record altered is named by ``streamcoord audit verify``, and
``streamcoord audit RUN_ID`` tells the run's story with the principal that started it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamcoord.events import topology
from streamcoord.events.models import ExternalEvent
from streamcoord.events.principal import with_principal
from streamcoord.kafka.records import read_topic
from streamcoord.runtime import TopicNames
from tests.integration.coordination import create_topics, in_process, until_runs_succeeded

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ROOT = Path(__file__).parents[2]
RUNS = 6


async def _cli(bootstrap: str, topics: TopicNames, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "audit", *args,
        "-b", bootstrap, "--topic-prefix", topics.prefix,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_verify_names_the_one_altered_record_of_a_copied_topic(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('audit')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    group = unique_name("group")
    # two coordinator lives: the second restores each partition's chain head and goes on
    for life in range(2):
        async with in_process(kafka_bootstrap, topics, group) as harness:
            for n in range(life * RUNS // 2, (life + 1) * RUNS // 2):
                tick = ExternalEvent(id=f"t{n}", source="ticker", type="steady.tick", data={"n": n})
                await harness.emit_event(with_principal(tick, "svc-ticker"))
            await asyncio.wait_for(until_runs_succeeded(harness, (life + 1) * RUNS // 2), 90)
    code, out = await _cli(kafka_bootstrap, topics, "verify", "--json")
    report = orjson.loads(out)
    assert (code, report["ok"]) == (0, True), out
    assert sum(c["records"] for c in report["chains"]) >= RUNS * 2  # two stages triggered each
    # one unbroken chain per partition from seq 1, across the restart
    assert all(c["first_seq"] == 1 and c["last_seq"] == c["records"] for c in report["chains"])

    code, out = await _cli(kafka_bootstrap, topics, "steady/3", "--json")
    story = orjson.loads(out)
    assert code == 0
    assert story["outcome"]["status"] == "succeeded"
    assert story["outcome"]["principal"] == "svc-ticker"
    assert [(d["action"], d["stage"]) for d in story["decisions"]] == [
        ("triggered", "first"),
        ("triggered", "second"),
    ]
    started, then = story["decisions"]
    # the tick itself, or the match its partition routed to the run's (it keeps the principal)
    assert started["event"]["type"] in {"steady.tick", "streamcoord.run.match"}
    assert (started["principal"], started["caused_by"]) == ("svc-ticker", ["t3"])
    assert then["event"]["type"] == "streamcoord.stage.succeeded"
    assert then["principal"] is None  # the test executor vouches for nothing
    assert started["seq"] < then["seq"]

    # the copy: every record where it was, one of them with another reason
    copy = TopicNames(prefix=f"{unique_name('audit-copy')}.")
    await create_topics(kafka_bootstrap, copy, partitions=2)
    original = topics.full(topology.DECISIONS)
    stored = (await read_topic({"bootstrap_servers": kafka_bootstrap}, original)).records
    victim = stored[len(stored) // 2]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for record in stored:
            value = record.value or b""
            if record is victim:
                body = orjson.loads(value)
                body["data"]["reason"] = "attempt 9"
                value = orjson.dumps(body)
            await producer.send_and_wait(
                copy.full(topology.DECISIONS),
                value,
                key=record.key,
                partition=record.partition,
                headers=record.headers,
            )
    finally:
        await producer.stop()
    code, out = await _cli(kafka_bootstrap, copy, "verify")
    assert code == 1, out
    line = next(line for line in out.splitlines() if "first broken link" in line)
    victim_id = orjson.loads(victim.value or b"")["id"]
    assert victim_id in line
    assert "altered" in line
