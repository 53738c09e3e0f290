"""A coordinator in its own process, reporting JSON lines on stdout (``python -m bench.child``).

Lines: ``{"event": "ready", ...}`` once its partitions are restored, ``{"event": "first_batch"}``
after the first committed batch, ``{"event": "stopped", ...}`` on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
import time

import orjson

from bench.workload import catalog
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.kafka.transport import make_transport
from streamcoord.runtime import Coordinator, CoordinatorSettings, tune_garbage_collector


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def say(**fields: object) -> None:
    sys.stdout.write(orjson.dumps(fields).decode() + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    cat = catalog()
    tune_garbage_collector()  # as `streamcoord run` does
    gc.collect()
    rss_before = rss_bytes()
    settings = CoordinatorSettings(
        group_id=args.group, topic_prefix=args.prefix, poll_timeout_ms=args.poll_timeout_ms,
        max_batch=args.max_batch,
        # The bench follows the group's offsets to time a drain: show them often.
        group_offsets_interval_s=0.1,
    )  # fmt: skip
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap, client=args.client)
    coordinator = Coordinator(cat, settings, make_transport(kafka))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    started = time.perf_counter()
    service = asyncio.create_task(coordinator.run(stop))
    await asyncio.wait([service, asyncio.create_task(coordinator.ready.wait())],
                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    ready = time.perf_counter() - started
    gc.collect()
    say(event="ready", seconds=ready, rss_before=rss_before, rss_after=rss_bytes(),
        runs=sum(len(w.state.runs()) for w in coordinator.processors()))  # fmt: skip
    for _ in range(6000):
        if coordinator.status.batches or service.done():
            break
        await asyncio.sleep(0.005)
    say(event="first_batch", seconds=time.perf_counter() - started)
    await service
    say(event="stopped", **coordinator.status.as_dict())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--poll-timeout-ms", type=int, default=200)
    parser.add_argument("--max-batch", type=int, default=500)
    parser.add_argument("--client", choices=("aiokafka", "confluent"), default="aiokafka")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
