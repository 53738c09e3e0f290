"""The read model at scale: ``python -m bench.readmodel [--runs N] [--bootstrap-servers ...]``.

1. Fills a SQLite store with ``--runs`` finished runs (generated rows, bulk insert; the file is
   kept and reused by the next invocation with the same ``--runs``) and measures a filtered,
   paginated run list (target under 100 ms) and a run's detail (target under 20 ms).
2. Projection throughput in run records per second (target at least 5,000/s): records of
   whole runs (requests, run records, decisions, executor reports) fed to the projection
   already decoded, without Kafka; and, with ``--bootstrap-servers``, produced to fresh topics
   and read back by the projector from Kafka (decoding included).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from streamcoord.events import topology
from streamcoord.readmodel import RunQuery, open_store
from streamcoord.readmodel import _schema as t
from streamcoord.readmodel._projection import Consumed, micros
from streamcoord.readmodel._sql import SqlStore
from streamcoord.readmodel.testing import Offsets, run_story
from streamcoord.runtime.tuning import tune_garbage_collector

PIPELINES = [f"pipeline-{n:02d}" for n in range(20)]
STATUSES = ["succeeded"] * 8 + ["failed", "cancelled"]
PEOPLE = [f"user:{name}" for name in ("alice", "bob", "carol", "dave", "erin")] + ["scheduler"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHUNK = 20_000


def fill(store: SqlStore, runs: int, seed: int = 1) -> None:
    """``runs`` finished runs of two stages each (one attempt each), spread over 60 days."""
    rng = random.Random(seed)
    base, span = micros(T0), 60 * 86_400 * 1_000_000
    with store.engine.begin() as conn:
        indexes = [index for table in t.metadata.sorted_tables for index in table.indexes]
        for index in indexes:  # built once at the end: faster than kept up row by row
            index.drop(conn)
        for start in range(0, runs, CHUNK):
            rows: dict[Any, list[dict[str, Any]]] = {
                t.runs: [],
                t.status_changes: [],
                t.stages: [],
                t.attempts: [],
            }
            for n in range(start, min(start + CHUNK, runs)):
                _one_run(rows, n, rng, base + rng.randrange(span))
            for table, batch in rows.items():
                _bulk_insert(conn, table, batch)
        for index in indexes:
            index.create(conn)
        conn.exec_driver_sql("ANALYZE")


def _bulk_insert(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Straight to sqlite3's executemany (JSON columns serialized here): the fill is setup."""
    names = [column.name for column in table.columns]
    json = {column.name for column in table.columns if column.type.__class__.__name__ == "JSON"}
    marks = ", ".join("?" * len(names))
    # names from our own schema, values bound: nothing from outside reaches the text
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608
    conn.exec_driver_sql(sql, [
        tuple(orjson.dumps(row[n]).decode() if n in json else row[n] for n in names)
        for row in rows
    ])  # fmt: skip


def _one_run(rows: dict[Any, list[dict[str, Any]]], n: int, rng: random.Random, at: int) -> None:
    pipeline, status = rng.choice(PIPELINES), rng.choice(STATUSES)
    run_id, ends = f"{pipeline}/key-{n:07d}", at + rng.randrange(1, 600) * 1_000_000
    rows[t.runs].append({
        "run_id": run_id, "pipeline": pipeline, "run_key": f"key-{n:07d}", "status": status,
        "partition": n % 8, "spec_version": "sha256:0123456789abcdef", "trace_id": "ab" * 16,
        "caused_by": [f"event-{n}"], "first_cause": f"event-{n}",
        "requested_by": rng.choice(PEOPLE), "trigger_type": "streamcoord.run.requested",
        "params": {"n": n}, "created_at": at, "updated_at": ends, "finished_at": ends,
    })  # fmt: skip
    rows[t.status_changes] += [
        {"run_id": run_id, "seq": 1, "status": "active", "at": at, "caused_by": f"event-{n}",
         "position": f"{topology.RUNS}:{n % 8}:{2 * n}"},
        {"run_id": run_id, "seq": 2, "status": status, "at": ends, "caused_by": f"event-{n}",
         "position": f"{topology.RUNS}:{n % 8}:{2 * n + 1}"},
    ]  # fmt: skip
    middle = (at + ends) // 2
    for index, (stage, begun, done) in enumerate((("extract", at, middle), ("load", middle, ends))):
        rows[t.stages].append(
            {
                "run_id": run_id,
                "stage": stage,
                "position": index,
                "status": "succeeded",
                "attempts": 1,
                "ended_at": done,
            }
        )
        rows[t.attempts].append({
            "run_id": run_id, "stage": stage, "attempt": 1, "triggered_at": begun,
            "decided": None, "ended_at": None, "reason": None, "started_at": begun + 1000,
            "worker": "worker/w1", "outputs": {"rows": n}, "error": None, "reported": "succeeded",
        })  # fmt: skip


def schema_digest() -> str:
    """A short digest of the tables and columns: a store kept from another schema is not reused."""
    shape = sorted((table.name, column.name) for table in t.metadata.sorted_tables
                   for column in table.columns)  # fmt: skip
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:8]


def timings(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(median, p95) of ``repeat`` calls, in milliseconds (after one warm-up call)."""
    call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def measure_queries(store: SqlStore, runs: int, repeat: int) -> None:
    rng = random.Random(2)

    def filtered() -> object:
        page = store.list_runs(RunQuery(pipeline=rng.choice(PIPELINES), status="failed", limit=50))
        return store.list_runs(
            RunQuery(
                pipeline=page.items[0].pipeline, status="failed", limit=50, cursor=page.next_cursor
            )
        )

    def by_person_in_window() -> object:
        since = T0 + timedelta(days=rng.randrange(50))
        return store.list_runs(
            RunQuery(
                requested_by=rng.choice(PEOPLE),
                since=since,
                until=since + timedelta(days=7),
                limit=50,
            )
        )

    def unfiltered() -> object:
        return store.list_runs(RunQuery(limit=50, sort="updated_at"))

    def detail() -> object:
        n = rng.randrange(runs)
        with store.engine.connect() as conn:  # the id of a random run, outside the timing
            run_id = conn.execute(
                select(t.runs.c.run_id).where(t.runs.c.run_key == f"key-{n:07d}")
            ).scalar_one()
        started = time.perf_counter()
        found = store.get_run(run_id)
        assert found is not None
        return time.perf_counter() - started

    def last_day_stats() -> object:  # the UI's overview: the last day's counts, 20 durations
        return store.pipeline_stats(since=T0 + timedelta(days=59), recent=20)

    def last_week_stats() -> object:
        return store.pipeline_stats(since=T0 + timedelta(days=53), recent=20)

    for label, call in (
        ("list: pipeline+status, page 2 (two queries)", filtered),
        ("list: requested_by + 7-day window", by_person_in_window),
        ("list: all, by updated_at", unfiltered),
        ("pipeline stats: 20 pipelines, last day", last_day_stats),
        ("pipeline stats: 20 pipelines, last 7 days", last_week_stats),
    ):
        median, p95 = timings(call, repeat)
        print(f"  {label:44} median {median:7.2f} ms  p95 {p95:7.2f} ms")
    details = sorted(float(detail()) * 1000 for _ in range(repeat))  # type: ignore[arg-type]
    print(
        f"  {'run detail (get_run)':44} median {statistics.median(details):7.2f} ms  "
        f"p95 {details[int(len(details) * 0.95) - 1]:7.2f} ms"
    )


def stories(runs: int, prefix: str = "") -> tuple[list[Consumed], Offsets]:
    offsets = Offsets(prefix)
    records: list[Consumed] = []
    for n in range(runs):
        records += run_story(
            offsets,
            PIPELINES[n % 20],
            f"k{n}",
            T0 + timedelta(seconds=n),
            fail_first="extract" if n % 10 == 0 else None,
            partition=n % 8,
        )
    return records, offsets


def measure_projection(runs: int, batch: int, url: str) -> None:
    records, offsets = stories(runs)
    run_records = sum(r.kind == "runs" for r in records)
    store = open_store(url)
    store.reset()
    positions = offsets.positions()
    started, cpu = time.perf_counter(), time.process_time()
    for begin in range(0, len(records), batch):
        store.apply(records[begin : begin + batch], positions)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    print(
        f"  {store.engine.dialect.name}, decoded records, no Kafka: {len(records)} records "
        f"({run_records} run records) "
        f"in {elapsed:.2f} s ({cpu:.2f} s CPU): {run_records / elapsed:,.0f} run records/s, "
        f"{len(records) / elapsed:,.0f} records/s"
    )


async def measure_kafka(bootstrap: str, runs: int, workdir: Path) -> None:
    from aiokafka import AIOKafkaProducer

    from bench.workload import delete_topics
    from streamcoord.core import partition_key_for
    from streamcoord.events.codec import encode
    from streamcoord.kafka.admin import apply_topics, load_topics
    from streamcoord.kafka.settings import KafkaSettings
    from streamcoord.readmodel import project
    from streamcoord.runtime.settings import TopicNames

    topics = TopicNames(f"bench-readmodel-{uuid.uuid4().hex[:8]}.")
    declared = [spec for spec in load_topics().with_prefix(topics.prefix)
                if spec.name.removeprefix(topics.prefix) in {
                    topology.RUNS, topology.DECISIONS, topology.EVENTS,
                    topology.DEADLETTER}]  # fmt: skip
    await apply_topics(KafkaSettings(bootstrap_servers=bootstrap), declared)
    records, _ = stories(runs, topics.prefix)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=262_144
    )
    await producer.start()
    try:
        for record in records:
            assert record.event is not None
            value, headers = encode(record.event)
            # keyed as the coordinator keys them (the runs topic is compacted: keys required)
            await producer.send(
                record.topic,
                value,
                headers=headers,
                key=partition_key_for(record.event).encode(),
                partition=record.partition,
            )
        await producer.flush()
    finally:
        await producer.stop()
    run_records = sum(r.kind == "runs" for r in records)
    store = open_store(f"sqlite:///{workdir / 'kafka.db'}")
    stop, caught_up = asyncio.Event(), asyncio.Event()
    started, cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(
        project(store, {"bootstrap_servers": bootstrap}, topics, stop, caught_up=caught_up)
    )
    await asyncio.wait_for(caught_up.wait(), 600)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    await task
    await delete_topics(bootstrap, topics)
    with store.engine.connect() as conn:
        projected = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    store.close()
    print(
        f"  from Kafka (topics {topics.prefix}*): {len(records)} records "
        f"({run_records} run records, {projected} runs) in {elapsed:.2f} s "
        f"({cpu:.2f} s CPU): {run_records / elapsed:,.0f} run records/s, "
        f"{len(records) / elapsed:,.0f} records/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1_000_000, help="runs in the query store")
    parser.add_argument(
        "--database", type=Path, default=Path(tempfile.gettempdir()) / "streamcoord-bench-readmodel"
    )
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--projected-runs", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=5000, help="records per transaction")
    parser.add_argument("--bootstrap-servers", default=None)
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="also project into this PostgreSQL database (emptied first)",
    )
    args = parser.parse_args()
    tune_garbage_collector()  # as a coordinator or `serve` process does
    args.database.mkdir(parents=True, exist_ok=True)
    path = args.database / f"runs-{args.runs}-{schema_digest()}.db"
    store = open_store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    if present != args.runs:
        store.close()
        path.unlink()
        store = open_store(f"sqlite:///{path}")
        started = time.perf_counter()
        fill(store, args.runs)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - started:.0f} s ({path})")
    print(f"queries on {args.runs:,} finished runs (SQLite, {path.stat().st_size >> 20} MiB):")
    measure_queries(store, args.runs, args.repeat)
    store.close()
    print("projection:")
    with tempfile.TemporaryDirectory() as workdir:
        measure_projection(
            args.projected_runs, args.batch, f"sqlite:///{Path(workdir) / 'projection.db'}"
        )
        if args.postgres_url:
            measure_projection(args.projected_runs, args.batch, args.postgres_url)
        if args.bootstrap_servers:
            asyncio.run(measure_kafka(args.bootstrap_servers, args.projected_runs, Path(workdir)))


if __name__ == "__main__":
    main()
