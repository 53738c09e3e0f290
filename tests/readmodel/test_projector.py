"""The projector on the real broker: a coordinator's records become rows, exactly once.

A coordinator runs a small pipeline; the projector reads what it wrote. A projection cut off
half-way and restarted, and a rebuild, give the same rows as an uninterrupted projection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from streamcoord.events.models import RunRequested, RunRequestedData
from streamcoord.readmodel import RunQuery, open_store, project
from streamcoord.readmodel._sql import SqlStore
from streamcoord.runtime import TopicNames
from tests.integration.coordination import create_topics, in_process, until_runs_succeeded
from tests.kafka_fixtures import unique_name
from tests.readmodel.rows import all_rows

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

SPEC = """\
pipelines:
  - name: nightly
    run_key: event.data.day
    triggers:
      - kind: manual
    stages:
      - name: extract
      - name: load
        needs: [extract]
"""
RUNS = 4


@pytest.fixture(scope="module")
async def produced(
    kafka_bootstrap: str, module_name: Callable[[str], str]
) -> tuple[str, TopicNames]:
    """Topics holding what a coordinator wrote for RUNS requested runs and one bad record."""
    topics = TopicNames(prefix=f"{module_name('readmodel')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    async with in_process(kafka_bootstrap, topics, module_name("group"), spec=SPEC) as harness:
        for n in range(RUNS):
            await harness.emit_event(RunRequested(
                id=f"request-{n}", source="streamcoord/api", scprincipal=f"user:u{n % 2}",
                data=RunRequestedData(pipeline="nightly", run_key=f"2026-11-0{n + 1}",
                                      params={"n": n}),
            ))  # fmt: skip
        await harness.emit(b"{not json", key=b"bad")
        await harness.emit_event(RunRequested(
            id="request-unknown", source="streamcoord/api", scprincipal="user:u0",
            data=RunRequestedData(pipeline="no-such-pipeline", run_key="k"),
        ))  # fmt: skip
        await asyncio.wait_for(until_runs_succeeded(harness, RUNS), 90)
    return kafka_bootstrap, topics


@pytest.fixture(scope="module")
def module_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Unique topic and group names for the module's shared topics."""
    return lambda prefix: unique_name(prefix, request.node.name)


async def project_all(
    store: SqlStore, bootstrap: str, topics: TopicNames, *, rebuild: bool = False
) -> set[str]:
    """Project until the projector has read every topic to its end, then stop it; the ids of
    the runs it reported changed."""
    stop, caught_up = asyncio.Event(), asyncio.Event()
    changed: set[str] = set()
    task = asyncio.create_task(
        project(
            store,
            {"bootstrap_servers": bootstrap},
            topics,
            stop,
            caught_up=caught_up,
            rebuild=rebuild,
            on_change=changed.update,
        )
    )
    waiting = asyncio.create_task(caught_up.wait())
    await asyncio.wait({task, waiting}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    stop.set()
    await asyncio.wait_for(task, 30)
    assert caught_up.is_set()
    return changed


async def test_runs_are_projected_with_stages_attempts_and_requesters(
    produced: tuple[str, TopicNames], tmp_path: Path
) -> None:
    bootstrap, topics = produced
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    changed = await project_all(store, bootstrap, topics)
    page = store.list_runs(RunQuery(pipeline="nightly"))
    assert {r.run_id for r in page.items} <= changed
    assert sorted(r.run_key for r in page.items) == [f"2026-11-0{n + 1}" for n in range(RUNS)]
    assert {r.status for r in page.items} == {"succeeded"}
    assert len(store.list_runs(RunQuery(requested_by="user:u1")).items) == RUNS // 2
    run = store.get_run("nightly/2026-11-02")
    assert run is not None
    assert (run.params, run.requested_by) == ({"n": 1}, "user:u1")
    assert run.status_changes[-1].status == "succeeded"
    assert [(s.name, s.status, len(s.attempts)) for s in run.stages] == [
        ("extract", "succeeded", 1),
        ("load", "succeeded", 1),
    ]
    attempt = run.stages[1].attempts[0]
    assert (attempt.status, attempt.worker, attempt.outputs) == ("succeeded", "test", {"rows": 3})
    assert attempt.triggered_at is not None
    assert attempt.ended_at is not None
    assert attempt.trace_id == run.trace_id
    kinds = [(e.kind, e.type) for e in store.audit_trail(run.run_id)]
    assert kinds[0] == ("event", "streamcoord.run.requested")
    assert ("decision", "triggered") in kinds
    assert ("event", "streamcoord.stage.succeeded") in kinds
    letters = store.dead_letters().items
    assert sorted(d.reason for d in letters) == ["not_json", "unknown_pipeline"]
    # refused where it was read: the events topic, or the internal topic it was admitted to
    assert all(d.origin is not None and d.origin.startswith(topics.prefix) for d in letters)
    requested = store.command_outcome("request-1")
    assert (requested.status, requested.runs) == ("decided", ["nightly/2026-11-02"])
    refused = store.command_outcome("request-unknown")
    assert refused.status == "rejected"
    assert refused.rejection is not None
    assert "no-such-pipeline" in refused.rejection.error
    store.close()


async def test_a_projection_cut_off_and_restarted_or_rebuilt_gives_the_same_rows(
    produced: tuple[str, TopicNames], tmp_path: Path
) -> None:
    bootstrap, topics = produced
    whole = open_store(f"sqlite:///{tmp_path / 'whole.db'}")
    await project_all(whole, bootstrap, topics)
    expected = all_rows(whole)

    cut = open_store(f"sqlite:///{tmp_path / 'cut.db'}")
    stop = asyncio.Event()
    task = asyncio.create_task(
        project(cut, {"bootstrap_servers": bootstrap}, topics, stop, max_records=2)
    )
    for _ in range(600):  # bounded: about 30 s
        if len(cut.positions()) >= 3:
            break
        await asyncio.sleep(0.05)  # polling the store: the projector has no per-batch signal
    task.cancel()  # a crash, as far as the store can tell: mid-stream, no clean stop
    with contextlib.suppress(asyncio.CancelledError):
        await task
    partial = all_rows(cut)
    assert partial != expected
    await project_all(cut, bootstrap, topics)
    assert all_rows(cut) == expected

    await project_all(whole, bootstrap, topics, rebuild=True)
    assert all_rows(whole) == expected
    whole.close()
    cut.close()
