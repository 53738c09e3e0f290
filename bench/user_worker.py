"""A worker SDK script as a user writes one, for :mod:`bench.user_path`: every handler prints
``{"run", "stage", "start", "end"}`` (wall-clock seconds of its first line and of its return) as
a JSON line on stdout. Shipped defaults (4 slots, 200 ms poll); the group id is the bench's."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time

import orjson

from streamcoord.kafka.settings import KafkaSettings
from streamcoord.worker import StageContext, Worker, WorkerSettings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic-prefix", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    worker = Worker(
        WorkerSettings(group_id=args.group),
        KafkaSettings(bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix),
    )

    @worker.stage(None)
    async def handle(ctx: StageContext) -> None:
        start = time.time()
        line = {"run": ctx.run_id, "stage": ctx.stage, "start": start, "end": time.time()}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await worker.run(stop)

    asyncio.run(serve())


if __name__ == "__main__":
    main()
