"""Run every benchmark against one broker and write bench/results/latest.{json,md}.

``python -m bench [--bootstrap-servers HOST:PORT] [--runs N] [--quick]``; without
``--bootstrap-servers`` a local Kafka broker is started (and stopped) for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench import workload
from bench.latency import measure_latency
from bench.measure import (
    Child,
    end_offsets,
    follow_decisions,
    follow_group,
    percentiles,
    steady_rate,
)
from bench.passthrough import passthrough
from bench.passthrough_ports import ports_passthrough
from bench.report import clients_markdown, markdown
from bench.user_path import user_path
from streamcoord.events import topology
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.kafka.transport import make_transport
from streamcoord.runtime import TopicNames

RESULTS = Path(__file__).parent / "results"
PARTITIONS = 8
CLIENTS = ("aiokafka", "confluent")
console = Console()


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def fresh_topics(bootstrap: str, runs: int, *, preload: bool = True) -> TopicNames:
    """Topics under a new prefix, the changelog seeded with ``runs`` active runs, and (when
    ``preload``) the completions of ``s0`` of every run waiting in the events topic."""
    topics = TopicNames(f"b{uuid.uuid4().hex[:8]}.")
    await workload.create_topics(bootstrap, topics, PARTITIONS)
    await workload.write_changelog(bootstrap, topics, workload.seeded_states(runs, PARTITIONS))
    if preload:
        events = (e for n in range(runs) for e in workload.completion(workload.run_id(n), 0))
        await workload.produce_events(bootstrap, topics.events, events)
    return topics


async def coordinators(
    bootstrap: str, runs: int, processes: int, progress: Progress, client: str = "aiokafka"
) -> dict[str, Any]:
    topics = await fresh_topics(bootstrap, runs)
    ends = await end_offsets(bootstrap, topics.events, PARTITIONS)
    group = f"{topics.prefix}coord"
    task = progress.add_task(f"{processes} coordinator(s), {client}", total=sum(ends.values()))
    children = [Child(bootstrap, topics.prefix, group, client=client) for _ in range(processes)]
    for child in children:
        await child.start()
    drain = await follow_group(
        bootstrap,
        group,
        ends,
        deadline_s=240,
        on_progress=lambda d: progress.update(task, completed=d),
    )
    drain = await follow_decisions(bootstrap, group, topics.internal, PARTITIONS, drain,
                                   deadline_s=120)  # fmt: skip
    statuses = [await child.stop() for child in children]
    await workload.delete_topics(bootstrap, topics)
    # A stage transition is a stage changing status: every event here is one (running,
    # succeeded) and every trigger it caused is one more (the next stage triggered).
    triggers = sum(s.get("triggered", 0) for s in statuses)
    per_event = (drain.total + triggers) / drain.total
    return {
        "processes": processes,
        "client": client,
        "events": drain.total,
        "seconds": drain.seconds,
        "events_per_s": drain.rate,
        "steady_events_per_s": steady_rate(drain.samples, drain.total),
        "triggers": triggers,
        "records_published": sum(s.get("published", 0) for s in statuses),
        "transitions_per_s": drain.rate * per_event,
        "load": load(),
    }


async def baselines(bootstrap: str, runs: int, progress: Progress) -> dict[str, Any]:
    # Several times the coordinator's volume: a passthrough drains it in well under a second.
    topics = await fresh_topics(bootstrap, 4 * runs)
    ends = await end_offsets(bootstrap, topics.events, PARTITIONS)
    out: dict[str, Any] = {}
    # Topics under this prefix that no passthrough reads (the coordinator never runs here).
    sinks = {
        "passthrough": topology.DECISIONS,
        "passthrough_txn": topology.RUNS,
        "passthrough_send": topology.TRIGGERS,
        "passthrough_send_txn": topology.STATE,
    }
    for name, sink in sinks.items():
        txn, batches = name.endswith("_txn"), "_send" not in name
        task = progress.add_task(name, total=sum(ends.values()))
        drain = await passthrough(
            bootstrap, topics.events, topics.full(sink), f"{topics.prefix}{name}",
            ends, transactional=txn, batches=batches,
            on_progress=lambda d, t=task: progress.update(t, completed=d),
        )  # fmt: skip
        out[name] = {
            "events": drain.total,
            "seconds": drain.seconds,
            "events_per_s": drain.rate,
            "steady_events_per_s": steady_rate(drain.samples, drain.total),
            "load": load(),
        }
    await workload.delete_topics(bootstrap, topics)
    return out


async def latency(
    bootstrap: str, rate: float, handoffs: int, label: str, progress: Progress, *,
    client: str = "aiokafka",
) -> dict[str, Any]:  # fmt: skip
    # Enough chains for every hand-off (19 per run), and enough in flight for the rate.
    runs = max(int(rate * 0.6), (handoffs + 300) // (workload.STAGES - 1) + 100)
    topics = await fresh_topics(bootstrap, runs, preload=False)
    group = f"{topics.prefix}coord"
    child = Child(bootstrap, topics.prefix, group, poll_timeout_ms=200, client=client)
    await child.start()
    await asyncio.wait_for(child.event("ready").wait(), 120)
    task = progress.add_task(f"latency {label}", total=handoffs)
    result = await measure_latency(
        bootstrap, topics.events, topics.full(topology.TRIGGERS), runs, rate=rate,
        handoffs=handoffs, on_progress=lambda d: progress.update(task, completed=d),
    )  # fmt: skip
    await child.stop()
    await workload.delete_topics(bootstrap, topics)
    return {"label": label, "client": client, "offered_handoffs_per_s": rate,
            "achieved_handoffs_per_s": result["handoffs_per_s"],
            "events_per_s": 2 * result["handoffs_per_s"], **percentiles(result["latencies"]),
            "load": load()}  # fmt: skip


async def clients(args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """Both Kafka clients side by side: each one's exactly-once passthrough through the ports
    (:mod:`bench.passthrough_ports`), one coordinator process on it, and its light-load latency."""
    bootstrap, runs = args.bootstrap, args.runs
    topics = await fresh_topics(bootstrap, 4 * runs)
    ends = await end_offsets(bootstrap, topics.events, PARTITIONS)
    out: dict[str, Any] = {}
    for client, sink in zip(CLIENTS, (topology.DECISIONS, topology.RUNS), strict=True):
        transport = make_transport(KafkaSettings(bootstrap_servers=bootstrap, client=client))
        task = progress.add_task(
            f"passthrough through the ports, {client}", total=sum(ends.values())
        )
        drain = await ports_passthrough(
            transport, topics.events, topics.full(sink), f"{topics.prefix}pt-{client}",
            {(tp.topic, tp.partition): end for tp, end in ends.items()},
            on_progress=functools.partial(_advance, progress, task),
        )  # fmt: skip
        out[client] = {
            "passthrough": {
                "events": drain.total,
                "seconds": drain.seconds,
                "events_per_s": drain.rate,
                "steady_events_per_s": steady_rate(drain.samples, drain.total),
                "load": load(),
            }
        }
    await workload.delete_topics(bootstrap, topics)
    for client in CLIENTS:
        out[client]["coordinator"] = await coordinators(bootstrap, runs, 1, progress, client)
    for client in CLIENTS:
        out[client]["light"] = await latency(
            bootstrap, args.light_rate, args.handoffs, f"light, {client}", progress, client=client
        )
    for one in out.values():
        passthrough, coordinator = one["passthrough"], one["coordinator"]
        one["passthrough_us_per_event"] = 1e6 / max(passthrough["events_per_s"], 1e-9)
        one["coordinator_us_per_event"] = 1e6 / max(coordinator["events_per_s"], 1e-9)
        one["coordinator_to_passthrough"] = coordinator["events_per_s"] / max(
            passthrough["events_per_s"], 1e-9
        )
    return out


def _advance(progress: Progress, task: TaskID, done: int) -> None:
    progress.update(task, completed=done)


async def recovery(bootstrap: str, runs: int, progress: Progress) -> dict[str, Any]:
    task = progress.add_task(f"recovery of {runs:,} runs", total=None)
    topics = TopicNames(f"b{uuid.uuid4().hex[:8]}.")
    await workload.create_topics(bootstrap, topics, PARTITIONS)
    seeded = workload.seeded_states(runs, PARTITIONS)
    written = await workload.write_changelog(bootstrap, topics, seeded)
    # One completion per partition, so "the first batch processed" happens right after restore.
    probes = [e for n in range(min(runs, 64)) for e in workload.completion(workload.run_id(n), 0)]
    await workload.produce_events(bootstrap, topics.events, probes)
    child = Child(bootstrap, topics.prefix, f"{topics.prefix}coord")
    await child.start()
    await asyncio.wait_for(child.event("first_batch").wait(), 180)
    await child.stop()
    await workload.delete_topics(bootstrap, topics)
    progress.update(task, total=1, completed=1)
    ready, first = child.lines["ready"], child.lines["first_batch"]
    rss = ready["rss_after"] - ready["rss_before"]
    return {
        "runs": runs,
        "changelog_records": written,
        "restored_runs": ready["runs"],
        "start_to_restored_s": ready["seconds"],
        "start_to_first_batch_s": first["seconds"],
        "rss_delta_mb": rss / 2**20,
        "rss_mb_per_10k_runs": rss / 2**20 / (ready["runs"] / 10_000),
        "load": load(),
    }


async def state_size(runs: int, progress: Progress) -> dict[str, Any]:
    """``bench/state_size.py`` in a process of its own (it holds every run in memory)."""
    task = progress.add_task(f"state size of {runs:,} finished runs", total=None)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.state_size",
        "--runs",
        str(runs),
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"bench.state_size exited with {child.returncode}")
    progress.update(task, total=1, completed=1)
    result: dict[str, Any] = orjson.loads(out)
    return result


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
                   f"Python {platform.python_version()}",
        "load_start": load(), "partitions": PARTITIONS, "runs": args.runs,
        "max_batch": 500, "stages_per_run": workload.STAGES,
    }  # fmt: skip
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        # A freshly started broker serves transactions several times slower until its JIT has
        # compiled their paths (light-load p50 33 -> 21 -> 9 -> 6 -> 6 ms over five back-to-back
        # 20-second runs): warm it up with the latency workload first, and keep none of it.
        warm = time.perf_counter()
        await latency(args.bootstrap, args.light_rate, args.warmup_handoffs, "warm-up", progress)
        results["warm_up_s"] = time.perf_counter() - warm
        light = await latency(args.bootstrap, args.light_rate, args.handoffs, "light", progress)
        results["baselines"] = await baselines(args.bootstrap, args.runs, progress)
        results["throughput"] = [await coordinators(args.bootstrap, args.runs, n, progress)
                                 for n in (1, 2, 4)]  # fmt: skip
        results["clients"] = await clients(args, progress)
        one = results["throughput"][0]
        best = max(one["steady_events_per_s"], one["events_per_s"])
        half = max(args.light_rate, best / 4)
        results["latency"] = [
            light,
            await latency(args.bootstrap, half, args.handoffs, "half of max", progress),
        ]
        results["recovery"] = await recovery(args.bootstrap, args.recovery_runs, progress)
        results["state_size"] = await state_size(args.state_runs, progress)
        tasks: dict[str, Any] = {}

        def advance(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.update(tasks[label], completed=done)

        results["user_path"] = await user_path(
            args.bootstrap, args.user_samples, args.bursts, advance
        )
    results["seconds"] = time.perf_counter() - started
    results["load_end"] = load()
    return results


async def clients_only(args: argparse.Namespace) -> dict[str, Any]:
    """The broker warmed up, then :func:`clients` alone (``--clients-only``)."""
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
                   f"Python {platform.python_version()}",
        "load_start": load(), "partitions": PARTITIONS, "runs": args.runs, "max_batch": 500,
    }  # fmt: skip
    started = time.perf_counter()
    with Progress(console=console) as progress:
        await latency(args.bootstrap, args.light_rate, args.warmup_handoffs, "warm-up", progress)
        results["clients"] = await clients(args, progress)
    results["seconds"] = time.perf_counter() - started
    results["load_end"] = load()
    return results


async def with_broker(args: argparse.Namespace) -> dict[str, Any]:
    if args.bootstrap:
        return await (clients_only(args) if args.clients_only else bench(args))
    from streamcoord.devtools.kafka import BrokerSettings, LocalKafka, free_port

    with tempfile.TemporaryDirectory(prefix="streamcoord-bench-") as data:
        broker = LocalKafka(BrokerSettings(port=free_port(), data_dir=Path(data), version="4.4.0"))
        console.print("starting a local Kafka 4.4.0 broker")
        await asyncio.to_thread(broker.start)
        try:
            args.bootstrap = broker.bootstrap
            return await (clients_only(args) if args.clients_only else bench(args))
        finally:
            await asyncio.to_thread(broker.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", dest="bootstrap", default=None)
    parser.add_argument(
        "--runs", type=int, default=15_000, help="runs per throughput drain (2 events each)"
    )
    parser.add_argument("--recovery-runs", type=int, default=100_000)
    parser.add_argument("--handoffs", type=int, default=10_000)
    parser.add_argument("--light-rate", type=float, default=300.0, help="hand-offs/s at light load")
    parser.add_argument(
        "--warmup-handoffs",
        type=int,
        default=20_000,
        help="hand-offs at the light rate to warm up the broker first (not recorded)",
    )
    parser.add_argument(
        "--state-runs",
        type=int,
        default=1_000_000,
        help="finished runs in the state-size measurement (core only)",
    )
    parser.add_argument(
        "--user-samples",
        type=int,
        default=1000,
        help="samples of each per-event figure of the user's path (bench/user_path.py)",
    )
    parser.add_argument(
        "--bursts", type=int, default=1000, help="bursts of 20 runs emitted at once"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the bench out")
    parser.add_argument(
        "--clients-only",
        action="store_true",
        help="only the two Kafka clients side by side (bench/results/clients.{json,md})",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.recovery_runs, args.handoffs = 3000, 10_000, 1000
        args.warmup_handoffs = 2000
        args.state_runs = 20_000
        args.user_samples, args.bursts = 200, 50
    results = asyncio.run(with_broker(args))
    RESULTS.mkdir(exist_ok=True)
    if args.clients_only:
        (RESULTS / "clients.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
        table = clients_markdown(results)
        (RESULTS / "clients.md").write_text(table)
        console.print(table)
        return
    (RESULTS / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    table = markdown(results)
    (RESULTS / "latest.md").write_text(table)
    console.print(table)
