"""The store's contract, on SQLite and on PostgreSQL: what the API and the UI read."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streamcoord.errors import ConfigError
from streamcoord.events import topology
from streamcoord.events.codec import encode
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    DecisionRecord,
    PipelinePause,
    PipelineRef,
    RunCancel,
    RunCancelData,
    RunRequested,
    RunRequestedData,
    StageHeartbeat,
    StageRef,
)
from streamcoord.readmodel import CursorError, RunQuery, Store, open_store
from streamcoord.readmodel._projection import Consumed
from streamcoord.readmodel._sql import SqlStore
from streamcoord.readmodel.testing import Offsets, dead_letter, run_story
from tests.readmodel.rows import all_rows

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def fill(store: SqlStore, records: list[Consumed], offsets: Offsets, batch: int = 7) -> None:
    for start in range(0, len(records), batch):
        store.apply(records[start : start + batch], offsets.positions())


def three_runs(offsets: Offsets) -> list[Consumed]:
    return [
        *run_story(offsets, "daily", "2026-11-01", T0, fail_first="extract"),
        *run_story(
            offsets,
            "daily",
            "2026-11-02",
            T0 + timedelta(hours=1),
            outcome="failed",
            principal="user:bob",
            partition=1,
        ),
        *run_story(offsets, "hourly", "h1", T0 + timedelta(hours=2), stages=("only",)),
    ]


def test_the_store_is_a_store(store: SqlStore) -> None:
    assert isinstance(store, Store)
    assert store.get_run("nope/never") is None
    assert store.list_runs(RunQuery()).items == []


def test_a_run_shows_every_attempt_with_its_times_outputs_error_and_worker(
    store: SqlStore,
) -> None:
    offsets = Offsets()
    fill(store, three_runs(offsets), offsets)
    run = store.get_run("daily/2026-11-01")
    assert run is not None
    assert (run.pipeline, run.run_key, run.status) == ("daily", "2026-11-01", "succeeded")
    assert run.requested_by == "user:alice"
    assert run.params == {"day": "2026-11-01"}
    assert run.trigger_type == "streamcoord.run.requested"
    assert [c.status for c in run.status_changes] == ["active", "succeeded"]
    assert run.status_changes[0].caused_by == "req-daily/2026-11-01"
    assert run.duration_seconds == pytest.approx(1.75)
    assert [(s.name, s.status) for s in run.stages] == [
        ("extract", "succeeded"),
        ("load", "succeeded"),
    ]
    first, second = run.stages[0].attempts
    assert (first.attempt, first.status, first.error) == (1, "failed", "disk full")
    assert (second.attempt, second.status, second.outputs) == (2, "succeeded", {"rows": 20})
    assert second.worker == "worker/w1"
    assert second.triggered_at is not None
    assert second.started_at is not None
    assert second.ended_at is not None
    assert second.started_at < second.ended_at
    assert second.duration_seconds == pytest.approx(0.25)
    assert second.trace_id == "ab" * 16
    assert first.span_id is not None
    assert len(first.span_id) == 16
    assert first.span_id != second.span_id


def test_runs_filter_by_pipeline_status_key_requester_and_time(store: SqlStore) -> None:
    offsets = Offsets()
    fill(store, three_runs(offsets), offsets)

    def ids(**filters: object) -> list[str]:
        return [r.run_id for r in store.list_runs(RunQuery.model_validate(filters)).items]

    assert ids() == ["hourly/h1", "daily/2026-11-02", "daily/2026-11-01"]
    assert ids(order="asc") == ["daily/2026-11-01", "daily/2026-11-02", "hourly/h1"]
    assert ids(pipeline="daily") == ["daily/2026-11-02", "daily/2026-11-01"]
    assert ids(status="failed") == ["daily/2026-11-02"]
    assert ids(run_key="h1") == ["hourly/h1"]
    assert ids(requested_by="user:bob") == ["daily/2026-11-02"]
    assert ids(since=T0 + timedelta(minutes=30), until=T0 + timedelta(hours=2)) == [
        "daily/2026-11-02"
    ]
    assert ids(sort="updated_at", pipeline="hourly", status="succeeded") == ["hourly/h1"]


def test_pages_walk_every_run_once_in_order(store: SqlStore) -> None:
    offsets = Offsets()
    records: list[Consumed] = []
    rng = random.Random(7)
    for n in range(23):
        # several runs share a creation time: the run id breaks the tie
        start = T0 + timedelta(minutes=rng.choice((0, 1, 2, 3)))
        records += run_story(offsets, "p", f"k{n:02d}", start, stages=("s",))
    fill(store, records, offsets, batch=50)
    seen: list[tuple[datetime, str]] = []
    cursor = None
    for _ in range(10):
        page = store.list_runs(RunQuery(limit=5, cursor=cursor))
        seen += [(r.created_at, r.run_id) for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 23
    assert seen == sorted(seen, reverse=True)
    page = store.list_runs(RunQuery(limit=5))
    with pytest.raises(CursorError):
        store.list_runs(RunQuery(limit=5, pipeline="other", cursor=page.next_cursor))
    with pytest.raises(CursorError):
        store.list_runs(RunQuery(cursor="not-a-cursor"))


def test_the_audit_trail_tells_the_run_in_order_with_who_caused_what(store: SqlStore) -> None:
    offsets = Offsets()
    fill(store, three_runs(offsets), offsets)
    trail = store.audit_trail("hourly/h1")
    assert [(e.kind, e.type, e.actor) for e in trail] == [
        ("event", "streamcoord.run.requested", "user:alice"),
        ("decision", "triggered", "coordinator"),
        ("status", "active", "coordinator"),
        ("event", "streamcoord.stage.started", "worker/w1"),
        ("event", "streamcoord.stage.succeeded", "worker/w1"),
        ("status", "succeeded", "coordinator"),
        ("event", "streamcoord.run.finished", "streamcoord/coordinator"),
    ]
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    assert trail[1].causes == [trail[0].event_id]
    assert trail[5].causes == [trail[4].event_id]
    failing = store.audit_trail("daily/2026-11-02")
    failed = [e for e in failing if e.kind == "decision" and e.type == "failed"]
    assert [(e.stage, e.summary) for e in failed] == [("load", "disk full")]
    reported = next(e for e in failing if e.event_id == failed[0].causes[0])
    assert (reported.type, reported.actor) == ("streamcoord.stage.failed", "worker/w1")
    assert store.audit_trail("nope/never") == []


def test_dead_letters_come_latest_first_with_their_reason(store: SqlStore) -> None:
    offsets = Offsets()
    letters = [
        dead_letter(offsets, f"reason{n}", b"{bad" * n, T0 + timedelta(minutes=n)) for n in range(5)
    ]
    store.apply(letters, offsets.positions())
    first = store.dead_letters(limit=3)
    assert [d.reason for d in first.items] == ["reason4", "reason3", "reason2"]
    assert first.items[0].origin == "streamcoord.events:3:17"
    assert first.items[0].value_preview == "{bad" * 4
    rest = store.dead_letters(limit=3, cursor=first.next_cursor)
    assert [d.reason for d in rest.items] == ["reason1", "reason0"]
    assert rest.next_cursor is None


def test_pipeline_stats_count_runs_by_status_and_list_recent_durations(store: SqlStore) -> None:
    offsets = Offsets()
    fill(store, three_runs(offsets), offsets)
    stats = store.pipeline_stats(since=T0 - timedelta(days=1), recent=1)
    assert [(s.pipeline, s.counts) for s in stats] == [
        ("daily", {"succeeded": 1, "failed": 1}),
        ("hourly", {"succeeded": 1}),
    ]
    assert [r.run_id for r in stats[0].recent] == ["daily/2026-11-02"]
    assert stats[0].recent[0].duration_seconds == pytest.approx(1.0)
    assert store.pipeline_stats(since=T0 + timedelta(days=1)) == []


def test_rows_do_not_depend_on_how_topics_interleave_or_batches_split(
    store: SqlStore, store_url: str
) -> None:
    offsets = Offsets()
    records = three_runs(offsets)
    fill(store, records, offsets, batch=1000)
    expected = all_rows(store)
    for batch, order in (
        (1, records),
        (3, sorted(records, key=lambda r: r.kind)),
        (5, sorted(records, key=lambda r: r.kind, reverse=True)),
    ):
        store.reset()
        assert all_rows(store, offsets=False) == {
            name: [] for name in all_rows(store, offsets=False)
        }
        fill(store, order, offsets, batch=batch)
        assert all_rows(store) == expected


def test_positions_are_written_with_the_rows(store: SqlStore) -> None:
    offsets = Offsets()
    records = run_story(offsets, "p", "k", T0)
    store.apply(records[:3], {(topology.EVENTS, 0): 2, (topology.RUNS, 0): 1})
    store.apply(records[3:4], {(topology.EVENTS, 0): 3})
    assert store.positions() == {(topology.EVENTS, 0): 3, (topology.RUNS, 0): 1}


def test_coordinator_internal_traffic_and_heartbeats_stay_out_of_the_audit(
    store: SqlStore,
) -> None:
    offsets = Offsets()
    records = run_story(offsets, "p", "k", T0, stages=("s",))
    noise = [
        CloudEvent(
            id="pool-1",
            source="streamcoord/coordinator",
            type="streamcoord.pool.acquire",
            time=T0,
            data={"pool": "db", "run_id": "p/k", "stage": "s", "attempt": 1},
        ),
        StageHeartbeat(
            id="hb-1",
            source="worker/w1",
            time=T0,
            data=StageRef(run_id="p/k", stage="s", attempt=1),
        ),
    ]
    records += [offsets.record("events", 0, event) for event in noise]
    store.apply(records, offsets.positions())
    types = {entry.type for entry in store.audit_trail("p/k")}
    assert "streamcoord.pool.acquire" not in types
    assert "streamcoord.stage.heartbeat" not in types
    assert "streamcoord.stage.started" in types


def test_only_sqlite_files_and_postgresql_urls_open() -> None:
    with pytest.raises(ConfigError, match="unsupported read-model database"):
        open_store("mysql://somewhere/db")
    with pytest.raises(ConfigError, match="in-memory"):
        open_store("sqlite://")


def test_an_unreachable_postgresql_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="cannot reach") as raised:
        open_store("postgresql://reader:s3cret@127.0.0.1:1/none?connect_timeout=2")
    assert "s3cret" not in str(raised.value)


def test_a_command_is_unseen_received_decided_or_rejected(store: SqlStore) -> None:
    offsets = Offsets()
    records = run_story(offsets, "p", "k", T0, stages=("s",))
    cancel = RunCancel(
        id="cancel-1",
        source="streamcoord/api",
        time=T0,
        scprincipal="user:ops",
        data=RunCancelData(run_id="p/k", reason="not needed"),
    )
    pause = PipelinePause(
        id="pause-1", source="streamcoord/api", time=T0, data=PipelineRef(pipeline="p")
    )
    refused = RunRequested(
        id="request-9",
        source="streamcoord/api",
        time=T0,
        data=RunRequestedData(pipeline="nightly", run_key="x"),
    )
    value, headers = encode(refused)
    records += [
        offsets.record("events", 0, cancel), offsets.record("events", 0, pause),
        offsets.record("decisions", 0, DecisionRecord(
            id="d-cancel", source="streamcoord/coordinator", time=T0, subject="p/k",
            data=Decision(run_id="p/k", action="ignored", reason="cancel of a run already "
                          "succeeded", caused_by=["cancel-1"]),
        )),
        offsets.record("events", 0, refused),
        dead_letter(offsets, "manual_not_allowed", value, T0, tuple(headers)),
    ]  # fmt: skip
    store.apply(records, offsets.positions())
    assert store.command_outcome("never-sent").status == "unseen"
    assert store.command_outcome("pause-1").status == "received"
    cancelled = store.command_outcome("cancel-1")
    assert cancelled.status == "decided"
    assert cancelled.received is not None
    assert cancelled.received.actor == "user:ops"
    assert [(d.type, d.summary) for d in cancelled.decisions] == [
        ("ignored", "cancel of a run already succeeded")
    ]
    assert cancelled.runs == ["p/k"]
    rejected = store.command_outcome("request-9")
    assert rejected.status == "rejected"
    assert rejected.rejection is not None
    assert rejected.rejection.reason == "manual_not_allowed"
    assert rejected.rejection.event_type == "streamcoord.run.requested"
    requested = store.command_outcome("req-p/k")
    assert (requested.status, requested.runs) == ("decided", ["p/k"])


def test_a_forged_cursor_is_refused_before_it_reaches_the_database(store: SqlStore) -> None:
    from streamcoord.readmodel._sql import _fingerprint

    fingerprint = _fingerprint(RunQuery())
    for position in (["x", "y"], [1], [1, 2], [1.5, "k"], [None, "k"], [1, "k", 3]):
        forged = base64.urlsafe_b64encode(orjson.dumps([fingerprint, *position])).decode()
        with pytest.raises(CursorError):
            store.list_runs(RunQuery(cursor=forged))
    honest = base64.urlsafe_b64encode(orjson.dumps([fingerprint, 1, "k"])).decode()
    assert store.list_runs(RunQuery(cursor=honest)).items == []


def test_readers_see_committed_batches_while_the_projector_writes(store: SqlStore) -> None:
    import threading

    offsets = Offsets()
    batches = [
        run_story(offsets, "p", f"k{n:03d}", T0 + timedelta(seconds=n), stages=("s",))
        for n in range(60)
    ]
    positions = offsets.positions()
    failures: list[BaseException] = []
    seen: list[int] = []

    def write() -> None:
        try:
            for batch in batches:
                store.apply(batch, positions)
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():  # bounded: the writer has 60 small batches
        page = store.list_runs(RunQuery(limit=500))
        assert all(run.status in {"active", "succeeded"} for run in page.items)
        seen.append(len(page.items))
    writer.join()
    assert failures == []
    assert seen == sorted(seen)  # a reader never sees a batch undone
    assert len(store.list_runs(RunQuery(limit=500)).items) == 60
