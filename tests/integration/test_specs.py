"""Specs as versioned, central configuration on a real broker: `streamcoord specs` publishes
versions, a group runs them from the specs topic, and every partition switches at one offset."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    DecisionRecord,
    ExternalEvent,
    RunRecord,
    SpecsActivate,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)
from streamcoord.events.specs import SpecsRecord
from streamcoord.kafka.records import read_topic
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames
from streamcoord.runtime.specs import (
    SpecsFollower,
    SpecsUnavailable,
    apply_specs,
    publish_specs,
    version_of,
)
from tests.integration.coordination import (
    STEADY_SPEC,
    Harness,
    create_topics,
    in_process,
    run_record_with_status,
    trigger_counts,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

runner = CliRunner()

V1_STAGES = {"first", "second"}
STEADY_V2 = (
    STEADY_SPEC
    + """\
      - name: third
        needs: [second]
"""
)


def tick(n: int) -> ExternalEvent:
    return ExternalEvent(id=f"tick-{n}", source="clock", type="steady.tick", data={"n": n})


async def emit_tick(harness: Harness, n: int) -> None:
    """A tick on its run's own partition: the run starts where the tick is decided (a tick
    elsewhere would be routed there, after the activate event if it came in between)."""
    value, headers = encode(tick(n))
    await harness.producer.send_and_wait(
        harness.topics.events, key=f"steady/{n}".encode(), value=value, headers=headers
    )


async def publish(bootstrap: str, topics: TopicNames, spec: str, message: str) -> str:
    """What `streamcoord specs apply` does once the files are validated."""
    files = {"pipelines.yaml": spec}
    version = version_of(files)
    applied = await apply_specs(
        {"bootstrap_servers": bootstrap}, topics, files, version, message=message
    )
    assert applied.published
    return version


def follower(bootstrap: str, topics: TopicNames) -> SpecsFollower:
    return SpecsFollower({"bootstrap_servers": bootstrap}, topics)


async def latest_runs(harness: Harness) -> dict[str, RunRecord]:
    records = await read_topic({"bootstrap_servers": harness.bootstrap}, harness.topics.runs)
    latest: dict[str, RunRecord] = {}
    for stored in records.records:
        record = decode(stored.value, stored.headers)
        if isinstance(record, RunRecord):
            latest[record.data.run_id] = record
    return latest


# ---- (a) the CLI ----------------------------------------------------------------------------


def test_apply_then_history_show_and_diff(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topics = TopicNames(prefix=f"{unique_name('specs-cli')}.")
    asyncio.run(create_topics(kafka_bootstrap, topics, partitions=2))
    connect = ["-b", kafka_bootstrap, "--topic-prefix", topics.prefix]
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = specs / "steady.yaml"
    spec.write_text(STEADY_SPEC.replace("[first]", "[frist]"))

    broken = runner.invoke(app, ["specs", "apply", str(specs), *connect])
    assert broken.exit_code == 1
    assert broken.stderr.startswith(f"{spec}:10:17: pipelines[0].stages[1].needs[0]: ")
    assert "nothing published" in broken.stderr
    assert "no versions" in runner.invoke(app, ["specs", "history", *connect]).stdout

    spec.write_text(STEADY_SPEC)
    first = runner.invoke(app, ["specs", "apply", str(specs), "-m", "first cut", *connect])
    assert first.exit_code == 0, first.output
    v1 = first.stdout.strip()
    assert v1.startswith("sha256:")
    assert "published and activated" in first.stderr
    again = runner.invoke(app, ["specs", "apply", str(specs), *connect])
    assert again.exit_code == 0
    assert again.stdout.strip() == v1
    assert "already the newest" in again.stderr

    spec.write_text(STEADY_V2)
    second = runner.invoke(app, ["specs", "apply", str(specs), "--message", "a third stage",
                                 *connect])  # fmt: skip
    assert second.exit_code == 0, second.output
    v2 = second.stdout.strip()
    assert v2 != v1

    history = runner.invoke(app, ["specs", "history", "--json", *connect])
    rows = [orjson.loads(line) for line in history.stdout.splitlines()]
    assert [(r["version"], r["message"], r["pipelines"]) for r in rows] == [
        (v1, "first cut", ["steady"]), (v2, "a third stage", ["steady"]),
    ]  # fmt: skip
    assert rows[0]["files"] == ["steady.yaml"]  # relative to the directory given
    assert "@" in rows[0]["applied_by"]

    diff = runner.invoke(app, ["specs", "diff", *connect])
    assert diff.exit_code == 0, diff.output
    assert diff.stdout.splitlines()[:2] == [f"--- {v1}/steady.yaml", f"+++ {v2}/steady.yaml"]
    assert "+      - name: third\n" in diff.stdout
    backwards = runner.invoke(app, ["specs", "diff", v2, v1[:14], *connect])
    assert "-      - name: third\n" in backwards.stdout

    shown = runner.invoke(app, ["specs", "show", v1.removeprefix("sha256:")[:8], *connect])
    assert shown.exit_code == 0, shown.output
    assert STEADY_SPEC in shown.stdout
    assert "# first cut" in shown.stdout

    # Each version was activated once on every partition, in the order applied.
    events = asyncio.run(read_topic({"bootstrap_servers": kafka_bootstrap}, topics.events))
    activated = [
        (stored.partition, event.data.version)
        for stored in events.records
        if isinstance(event := decode(stored.value, stored.headers), SpecsActivate)
    ]
    assert activated == [(0, v1), (0, v2), (1, v1), (1, v2)]


def test_run_without_specs_on_the_topic_says_what_to_do(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('specs-empty')}.")
    asyncio.run(create_topics(kafka_bootstrap, topics, partitions=1))
    result = runner.invoke(
        app, ["run", "-b", kafka_bootstrap, "--topic-prefix", topics.prefix,
              "--group-id", unique_name("group")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "specs topic" in str(result.exception)
    assert "streamcoord specs apply" in getattr(result.exception, "hint", "")


# ---- (b) a group switches under load --------------------------------------------------------


@contextlib.asynccontextmanager
async def member(harness: Harness, group: str) -> AsyncIterator[Coordinator]:
    """One more coordinator of ``group``, running what the specs topic holds."""
    coordinator = Coordinator(
        follower(harness.bootstrap, harness.topics),
        CoordinatorSettings(group_id=group, topic_prefix=harness.topics.prefix, poll_timeout_ms=50),
        {"bootstrap_servers": harness.bootstrap},
    )
    stop = asyncio.Event()
    service = asyncio.create_task(coordinator.run(stop))
    try:
        yield coordinator
    finally:
        stop.set()
        await asyncio.wait_for(service, 60)


async def test_two_members_switch_versions_mid_stream(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('specs-switch')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    v1 = await publish(kafka_bootstrap, topics, STEADY_SPEC, "two stages")
    group = unique_name("group")
    async with (
        in_process(kafka_bootstrap, topics, group, specs=follower(kafka_bootstrap, topics)) as h,
        member(h, group) as other,
    ):
        assert h.coordinator is not None
        await asyncio.wait_for(asyncio.gather(h.coordinator.ready.wait(), other.ready.wait()), 60)
        for n in range(40):
            await emit_tick(h, n)
        v2 = await publish(kafka_bootstrap, topics, STEADY_V2, "a third stage")
        for n in range(40, 80):
            await emit_tick(h, n)
        await asyncio.wait_for(until_runs_succeeded(h, 80), 120)

        runs = await latest_runs(h)
        members = [h.coordinator.health(), other.health()]
    assert all(m["spec_versions"] for m in members), "both members own a partition"
    assert {p: v for m in members for p, v in m["spec_versions"].items()} == {"0": v2, "1": v2}
    old = {f"steady/{n}" for n in range(40)}
    for run_id, record in runs.items():
        # The ticks before the apply precede the activate event in every partition's log.
        version, stages = (v1, V1_STAGES) if run_id in old else (v2, V1_STAGES | {"third"})
        assert (record.data.status, record.data.spec_version, set(record.data.stages)) == (
            "succeeded", version, stages,
        ), run_id  # fmt: skip
    counts = await trigger_counts(h)
    assert [key for key, count in counts.items() if count != 1] == []
    assert len(counts) == 40 * 2 + 40 * 3


# ---- (c) stages and pipelines change under runs in flight -----------------------------------

ORDERS_V1 = """\
pipelines:
  - name: orders
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: extract
      - name: transform
        needs: [extract]
      - name: load
        needs: [transform]
  - name: legacy
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.legacy.landed
    stages:
      - name: only
"""

# transform renamed to clean, load removed, publish added; the legacy pipeline removed
ORDERS_V2 = """\
pipelines:
  - name: orders
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: extract
      - name: clean
        needs: [extract]
      - name: publish
        needs: [clean]
"""


class HeldExecutor:
    """Collects triggers; answers them only from :meth:`answer` on (runs stay in flight)."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.seen: list[StageTrigger] = []
        self._arrived = asyncio.Condition()

    async def run(self) -> None:
        consumer = self.harness.reader(self.harness.topics.full(topology.TRIGGERS))
        await consumer.start()
        try:
            async for message in consumer:
                trigger = decode(message.value, list(message.headers or ()))
                assert isinstance(trigger, StageTrigger)
                async with self._arrived:
                    self.seen.append(trigger)
                    self._arrived.notify_all()
        finally:
            await consumer.stop()

    async def answer(self) -> None:
        answered = 0
        while True:
            async with self._arrived:
                await self._arrived.wait_for(lambda done=answered: len(self.seen) > done)
                pending = self.seen[answered:]
            answered += len(pending)
            for trigger in pending:
                await self._succeed(trigger)

    async def until(self, run_id: str, stage: str) -> None:
        async with self._arrived:
            await self._arrived.wait_for(
                lambda: any((t.data.run_id, t.data.stage) == (run_id, stage) for t in self.seen)
            )

    async def _succeed(self, trigger: StageTrigger) -> None:
        ref = StageRef(
            run_id=trigger.data.run_id, stage=trigger.data.stage, attempt=trigger.data.attempt
        )
        base = f"executor/{trigger.data.idempotency_key}"
        await self.harness.emit_event(StageStarted(id=f"{base}/started", source="test", data=ref))
        await self.harness.emit_event(
            StageSucceeded(
                id=f"{base}/succeeded", source="test",
                data=StageSucceededData(**ref.model_dump(), outputs={}),
            )
        )  # fmt: skip


def landed(kind: str, day: str) -> ExternalEvent:
    # One source: the events share a partition, so they are decided in the order sent.
    return ExternalEvent(
        id=f"{kind}-{day}", source="warehouse", type=f"shop.{kind}.landed", data={"day": day}
    )


async def test_runs_in_flight_finish_on_their_version_when_stages_and_pipelines_change(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('specs-change')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    v1 = await publish(kafka_bootstrap, topics, ORDERS_V1, "orders and legacy")
    source = follower(kafka_bootstrap, topics)
    group = unique_name("group")
    async with in_process(kafka_bootstrap, topics, group, specs=source, executor=False) as h:
        executor = HeldExecutor(h)
        tasks = [asyncio.create_task(executor.run())]
        try:
            await h.emit_event(landed("orders", "day-1"))
            await h.emit_event(landed("legacy", "day-1"))
            await asyncio.wait_for(executor.until("orders/day-1", "extract"), 60)
            await asyncio.wait_for(executor.until("legacy/day-1", "only"), 60)
            v2 = await publish(kafka_bootstrap, topics, ORDERS_V2, "rename, add, remove")
            await h.emit_event(landed("legacy", "day-2"))  # no pipeline matches it any more
            await h.emit_event(landed("orders", "day-2"))
            tasks.append(asyncio.create_task(executor.answer()))
            await asyncio.wait_for(until_runs_succeeded(h, 3), 90)
            runs = await latest_runs(h)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    summary = {
        run_id: (r.data.status, r.data.spec_version, r.data.stages) for run_id, r in runs.items()
    }
    done = "succeeded"
    assert summary == {
        "orders/day-1": (done, v1, {"extract": done, "transform": done, "load": done}),
        "legacy/day-1": (done, v1, {"only": done}),
        "orders/day-2": (done, v2, {"extract": done, "clean": done, "publish": done}),
    }


async def test_runs_of_unpublished_local_specs_lose_removed_stages_as_spec_removed(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """A group moves from local files to the specs topic while runs are in flight, and the
    version published is not the local one: the runs go on under the published version; what
    it no longer has ends as ``cancelled`` with reason ``spec_removed``."""
    topics = TopicNames(prefix=f"{unique_name('specs-upgrade')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    group = unique_name("group")
    async with in_process(kafka_bootstrap, topics, group, spec=ORDERS_V1, executor=False) as h:
        executor = HeldExecutor(h)
        reading = asyncio.create_task(executor.run())
        await h.emit_event(landed("orders", "day-1"))
        await h.emit_event(landed("legacy", "day-1"))
        await asyncio.wait_for(executor.until("orders/day-1", "extract"), 60)
        await asyncio.wait_for(executor.until("legacy/day-1", "only"), 60)
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
    v2 = await publish(kafka_bootstrap, topics, ORDERS_V2, "from local files to the topic")
    source = follower(kafka_bootstrap, topics)
    async with in_process(kafka_bootstrap, topics, group, specs=source, executor=False) as h:
        executor = HeldExecutor(h)
        tasks = [asyncio.create_task(executor.run()), asyncio.create_task(executor.answer())]
        try:
            orders = await asyncio.wait_for(
                run_record_with_status(h, "orders/day-1", "succeeded"), 90
            )
            legacy = await asyncio.wait_for(
                run_record_with_status(h, "legacy/day-1", "cancelled"), 90
            )
            decisions = await read_topic(
                {"bootstrap_servers": kafka_bootstrap}, topics.full(topology.DECISIONS)
            )
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    done, removed = "succeeded", "cancelled"
    # Added stages ran; the ones the published version lacks were ended, and stay listed.
    assert (orders.data.spec_version, orders.data.stages) == (v2, {
        "extract": done, "clean": done, "publish": done, "transform": removed, "load": removed,
    })  # fmt: skip
    assert (legacy.data.spec_version, legacy.data.stages) == (v2, {"only": removed})
    reasons = {
        (event.data.run_id, event.data.stage)
        for stored in decisions.records
        if isinstance(event := decode(stored.value, stored.headers), DecisionRecord)
        and event.data.action == "cancelled"
        and event.data.reason.startswith("spec_removed")
    }
    assert {("orders/day-1", "transform"), ("orders/day-1", "load"),
            ("legacy/day-1", "only")} <= reasons  # fmt: skip


FUTURE = SpecsRecord(  # a version a newer release would accept: this code does not know the field
    version="sha256:00future00", applied_at=datetime(2026, 12, 1, tzinfo=UTC),
    applied_by="ci@build",
    files={"p.yaml": STEADY_SPEC.replace("    run_key:", "    novelty: 1\n    run_key:")},
)  # fmt: skip


async def test_a_member_stops_rather_than_decide_on_a_version_it_cannot_load(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('specs-stop')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    await publish(kafka_bootstrap, topics, STEADY_SPEC, "two stages")
    client = {"bootstrap_servers": kafka_bootstrap}
    coordinator = Coordinator(
        SpecsFollower(client, topics, wait_s=2.0),
        CoordinatorSettings(group_id=unique_name("group"), topic_prefix=topics.prefix),
        client,
    )
    service = asyncio.create_task(coordinator.run(asyncio.Event()))
    await asyncio.wait_for(coordinator.ready.wait(), 60)
    await publish_specs(client, topics, FUTURE, activate=(FUTURE.version, FUTURE.applied_at))
    with pytest.raises(SpecsUnavailable) as stopped:
        await asyncio.wait_for(service, 60)
    assert "spec version sha256:00future00 is not available here" in stopped.value.message
    assert "p.yaml:3:5" in stopped.value.message
    assert "streamcoord specs apply" in stopped.value.hint


async def test_an_activate_event_for_a_version_never_published_is_refused_not_obeyed(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """Whoever writes the events topic cannot stop a member by naming a version that does not
    exist: the event is dead-lettered with its reason and the runs go on on the version they
    have (issue 13: no record's content stops a partition)."""
    topics = TopicNames(prefix=f"{unique_name('specs-forged')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    v1 = await publish(kafka_bootstrap, topics, STEADY_SPEC, "two stages")
    specs = SpecsFollower({"bootstrap_servers": kafka_bootstrap}, topics, wait_s=1.0)
    async with in_process(kafka_bootstrap, topics, unique_name("group"), specs=specs) as h:
        assert h.coordinator is not None
        await asyncio.wait_for(h.coordinator.ready.wait(), 60)
        await publish_specs({"bootstrap_servers": kafka_bootstrap}, topics, None,
                            activate=("sha256:neverpublished", datetime.now(UTC)))  # fmt: skip
        for n in range(4):
            await emit_tick(h, n)
        await asyncio.wait_for(until_runs_succeeded(h, 4), 120)
        health = h.coordinator.health()
    letters = await read_topic({"bootstrap_servers": kafka_bootstrap}, topics.deadletter)
    reasons = [dict(r.headers)["streamcoord.dlq.reason"] for r in letters.records]
    assert reasons == [b"unknown_spec_version"] * 2  # one activate event per partition
    assert set(health["spec_versions"].values()) == {v1}
    assert all(r.data.spec_version == v1 for r in (await latest_runs(h)).values())


async def test_streamcoord_run_exits_non_zero_saying_what_to_do(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """As an operator sees it: `streamcoord run` (no paths) meets an activate event for a
    version its code cannot load, and exits 1 with the version, the reason and what to do."""
    topics = TopicNames(prefix=f"{unique_name('specs-exit')}.")
    await create_topics(kafka_bootstrap, topics, partitions=1)
    await publish(kafka_bootstrap, topics, STEADY_SPEC, "two stages")
    await publish_specs({"bootstrap_servers": kafka_bootstrap}, topics, FUTURE,
                        activate=(FUTURE.version, FUTURE.applied_at))  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamcoord.cli.main", "run", "-b", kafka_bootstrap,
        "--topic-prefix", topics.prefix, "--group-id", unique_name("group"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "STREAMCOORD_SPECS_WAIT_S": "1"},
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(), 90)
    finally:
        if process.returncode is None:  # it did not stop: never leave it running
            process.kill()
            await process.wait()
    assert process.returncode == 1, (out + err).decode()
    last = err.decode().strip().splitlines()[-2:]
    assert last[0].startswith("error: spec version sha256:00future00 is not available here")
    assert last[1].startswith("hint: this member stops instead of deciding on another version")
