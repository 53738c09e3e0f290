"""The path a user feels, with the shipped defaults and exactly-once on.

Processes as a new user runs them: ``streamcoord run SPEC`` (the coordinator), a worker SDK script
(:mod:`bench.user_worker`) or ``streamcoord worker shell``, and this process emitting events
through the emitter API (:class:`~streamcoord.emit.Emitter`, its defaults). Only the group ids and
the topic prefix are the bench's own (the broker is shared).

Figures (times are wall-clock readings of one machine, taken in each process):

* event -> first line of an SDK handler: from just before ``emitter.emit(...)`` to the handler's
  first line, one event at a time;
* event -> first line of a shell command: the same, to ``$EPOCHREALTIME`` in the command;
* stage-to-stage hand-off in a 10-stage chain: from the return of stage i's handler to the first
  line of stage i+1's, one chain at a time (9 samples per chain);
* a burst of 20 runs emitted at once (20 concurrent ``emit``), 4 worker slots: from just before
  the emits to the first line of the last of the 20 handlers, bursts one after another.

``python -m bench.user_path --bootstrap-servers HOST:PORT [--samples N] [--bursts N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson

from bench import workload
from bench.measure import percentiles
from streamcoord.emit import Emitter
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import TopicNames

CHAIN = 10
BURST = 20
PARTITIONS = 8
#: Events a measurement waits for before it is given up (bounded: a lost run fails the bench).
WAIT_S = 60.0


def spec_yaml(shell_log: Path) -> str:
    """Pipelines started by an event each (run key: the event's id); the shell one appends
    ``<epoch seconds> <run id>`` to ``shell_log`` as its command's first line."""
    command = ["bash", "-c", f'echo "$EPOCHREALTIME $0" >> {shell_log}', "{run_id}"]
    chain = "\n".join(
        f"      - name: s{i}" + (f"\n        needs: [s{i - 1}]" if i else "") for i in range(CHAIN)
    )
    return f"""pipelines:
  - name: ping
    run_key: event.id
    triggers:
      - kind: event
        type: bench.ping
    stages:
      - name: handle
  - name: shell
    run_key: event.id
    triggers:
      - kind: event
        type: bench.shell
    stages:
      - name: handle
        executor:
          config:
            command: {orjson.dumps(command).decode()}
  - name: chain
    run_key: event.id
    triggers:
      - kind: event
        type: bench.chain
    stages:
{chain}
"""


class Lines:
    """JSON lines of a worker, by run id, with a wake-up for whoever waits for one."""

    def __init__(self) -> None:
        self.by_run: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.changed = asyncio.Event()

    def add(self, line: dict[str, Any]) -> None:
        self.by_run[line["run"]].append(line)
        self.changed.set()

    async def wait(self, ready: Callable[[], bool], deadline_s: float = WAIT_S) -> None:
        async with asyncio.timeout(deadline_s):
            while not ready():
                self.changed.clear()
                await self.changed.wait()


async def _spawn(*argv: str, stdout: int | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv, stdout=stdout, stderr=asyncio.subprocess.DEVNULL, start_new_session=True
    )


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def deployment(
    bootstrap: str, spec: Path, worker_argv: list[str], *, read_stdout: Lines | None
) -> AsyncIterator[tuple[Emitter, TopicNames]]:
    """Fresh topics, ``streamcoord run`` and one worker process; an emitter to talk to them."""
    topics = TopicNames(f"u{uuid.uuid4().hex[:8]}.")
    await workload.create_topics(bootstrap, topics, PARTITIONS)
    kafka = ["--bootstrap-servers", bootstrap, "--topic-prefix", topics.prefix]
    cli = [sys.executable, "-m", "streamcoord"]
    group = ["--group-id", f"{topics.prefix}coord"]
    coordinator = await _spawn(*cli, "run", str(spec), *kafka, *group)
    worker = await _spawn(
        *worker_argv, *kafka, stdout=asyncio.subprocess.PIPE if read_stdout else None
    )
    reader = None
    if read_stdout is not None:
        reader = asyncio.create_task(_read(worker, read_stdout))
    emitter = Emitter(KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=topics.prefix))
    await emitter.start()
    try:
        yield emitter, topics
    finally:
        await emitter.stop()
        await _stop(worker)
        await _stop(coordinator)
        if reader is not None:
            await reader
        await workload.delete_topics(bootstrap, topics)


async def _read(process: asyncio.subprocess.Process, lines: Lines) -> None:
    assert process.stdout is not None
    async for raw in process.stdout:
        with contextlib.suppress(orjson.JSONDecodeError):
            lines.add(orjson.loads(raw))


async def _warm_up(emitter: Emitter, seen: Callable[[str], bool], kind: str) -> None:
    """Emit until a run reaches the worker (its group and the coordinator's are assigned),
    then a few more runs so that connections and caches are warm."""
    for n in range(240):
        run = f"w{n}"
        await emitter.emit(kind, source="bench", id=run)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                while not seen(run):  # noqa: ASYNC110  # stdout lines or a file: polled alike
                    await asyncio.sleep(0.01)
                break
    else:
        raise RuntimeError("no run reached the worker within two minutes")


async def sdk_figures(
    bootstrap: str, samples: int, bursts: int, spec: Path, on_progress: Any = None
) -> dict[str, Any]:
    """Event -> SDK handler, the chain's hand-offs and the bursts, on one deployment."""
    lines = Lines()
    group = f"bench-sdk-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "bench.user_worker", "--group", group]
    async with deployment(bootstrap, spec, argv, read_stdout=lines) as (emitter, _):
        await _warm_up(emitter, lambda run: f"ping/{run}" in lines.by_run, "bench.ping")
        done = 0
        first_line: list[float] = []
        for n in range(samples):
            t0 = time.time()
            await emitter.emit("bench.ping", source="bench", id=f"p{n}")
            run = f"ping/p{n}"
            await lines.wait(lambda run=run: run in lines.by_run)  # type: ignore[misc]
            first_line.append(lines.by_run[run][0]["start"] - t0)
            done += 1
            if on_progress:
                on_progress(done)
        handoffs: list[float] = []
        first_stage: list[float] = []
        for n in range(math.ceil(samples / (CHAIN - 1))):
            run = f"chain/c{n}"
            t0 = time.time()
            await emitter.emit("bench.chain", source="bench", id=f"c{n}")
            await lines.wait(lambda run=run: len(lines.by_run[run]) >= CHAIN)  # type: ignore[misc]
            by_stage = {line["stage"]: line for line in lines.by_run[run]}
            first_stage.append(by_stage["s0"]["start"] - t0)
            handoffs += [
                by_stage[f"s{i + 1}"]["start"] - by_stage[f"s{i}"]["end"] for i in range(CHAIN - 1)
            ]
            done += CHAIN - 1
            if on_progress:
                on_progress(done)
        last: list[float] = []
        each: list[float] = []
        spread: list[float] = []  # first to last handler start: the worker's share of a burst
        for b in range(bursts):
            ids = [f"b{b}-{i}" for i in range(BURST)]
            t0 = time.time()
            await asyncio.gather(*(emitter.emit("bench.ping", source="bench", id=i) for i in ids))
            runs = [f"ping/{i}" for i in ids]
            await lines.wait(lambda runs=runs: all(r in lines.by_run for r in runs))  # type: ignore[misc]
            starts = [lines.by_run[r][0]["start"] - t0 for r in runs]
            last.append(max(starts))
            each += starts
            spread.append(max(starts) - min(starts))
            done += 1
            if on_progress:
                on_progress(done)
    return {
        "event_to_sdk_handler": percentiles(first_line),
        "chain_event_to_first_stage": percentiles(first_stage),
        "chain_handoff": percentiles(handoffs),
        "burst_last_handler_start": percentiles(last),
        "burst_each_handler_start": percentiles(each),
        "burst_first_to_last_handler_start": percentiles(spread),
    }


async def shell_figures(
    bootstrap: str, samples: int, spec: Path, shell_log: Path, on_progress: Any = None
) -> dict[str, Any]:
    """Event -> the first line of a shell command run by ``streamcoord worker shell``."""
    group = f"bench-shell-{uuid.uuid4().hex[:6]}"
    argv = [sys.executable, "-m", "streamcoord", "worker", "shell", "--group-id", group]
    starts: dict[str, float] = {}
    read = 0

    def seen(run: str) -> bool:
        nonlocal read
        with shell_log.open("rb") as log:
            log.seek(read)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        read += len(complete)
        for line in complete.splitlines():
            stamp, _, run_id = line.decode().partition(" ")
            starts[run_id] = float(stamp)
        return run in starts

    latencies: list[float] = []
    async with deployment(bootstrap, spec, argv, read_stdout=None) as (emitter, _):
        await _warm_up(emitter, lambda run: seen(f"shell/{run}"), "bench.shell")
        for n in range(samples):
            run = f"shell/s{n}"
            t0 = time.time()
            await emitter.emit("bench.shell", source="bench", id=f"s{n}")
            async with asyncio.timeout(WAIT_S):
                # a file has no event to await; the figure is the command's own stamp anyway
                while not seen(run):  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
            latencies.append(starts[run] - t0)
            if on_progress:
                on_progress(n + 1)
    return {"event_to_shell_command": percentiles(latencies)}


async def user_path(
    bootstrap: str, samples: int, bursts: int, on_progress: Any = None
) -> dict[str, Any]:
    """Every figure of the user's path; ``on_progress(label, done, total)``."""
    with tempfile.TemporaryDirectory(prefix="streamcoord-user-path-") as scratch:
        shell_log = Path(scratch) / "shell.log"
        shell_log.touch()
        spec = Path(scratch) / "pipelines.yaml"
        spec.write_text(spec_yaml(shell_log))
        total = samples + (CHAIN - 1) * math.ceil(samples / (CHAIN - 1)) + bursts

        def report(label: str, of: int) -> Callable[[int], None] | None:
            return None if on_progress is None else (lambda d: on_progress(label, d, of))

        started = time.perf_counter()
        figures = await sdk_figures(
            bootstrap, samples, bursts, spec, report("user path, SDK", total)
        )
        figures |= await shell_figures(
            bootstrap, samples, spec, shell_log, report("user path, shell", samples)
        )
    return {
        "samples": samples,
        "bursts": bursts,
        "burst_size": BURST,
        "chain_stages": CHAIN,
        "seconds": time.perf_counter() - started,
        "load": [round(x, 2) for x in os.getloadavg()],
        **figures,
    }


def markdown_rows(r: dict[str, Any]) -> list[str]:
    """Rows of the results table (bench/report.py)."""

    def row(label: str, key: str, target: str) -> str:
        p = r.get(key) or {}
        return (
            f"| {label} (n={p.get('n', 0):,}): p50 / p95 / p99 / max ms | "
            f"{p.get('p50_ms', 0):.1f} / {p.get('p95_ms', 0):.1f} / {p.get('p99_ms', 0):.1f} / "
            f"{p.get('max_ms', 0):.1f} | {target} |"
        )

    return [
        row("external event → first line of a worker SDK handler", "event_to_sdk_handler",
            "≤ 10 p50, ≤ 30 p99"),
        row("external event → first line of a shell command", "event_to_shell_command", ""),
        row(f"stage-to-stage hand-off, {r['chain_stages']}-stage chain", "chain_handoff",
            "≤ 10 p50"),
        row(f"{r['burst_size']} runs emitted at once → last handler starts",
            "burst_last_handler_start", "≤ 100"),
        row(f"{r['burst_size']} runs emitted at once → each handler starts",
            "burst_each_handler_start", ""),
        row(f"{r['burst_size']} runs emitted at once: first → last handler start",
            "burst_first_to_last_handler_start", ""),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", dest="bootstrap", required=True)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--bursts", type=int, default=1000)
    args = parser.parse_args()

    def progress(label: str, done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"{label}: {done}/{total}", file=sys.stderr)

    result = asyncio.run(user_path(args.bootstrap, args.samples, args.bursts, progress))
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")
    print("\n".join(markdown_rows(result)), file=sys.stderr)


if __name__ == "__main__":
    main()
