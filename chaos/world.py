"""What the chaos suite runs and breaks: its own broker behind toxiproxy, coordinator processes,
and the load (an emitter of ticks and an executor answering triggers, both in this process).

The coordinators reach the broker only through the proxy: the broker has a second listener,
PROXIED, that advertises the proxy's port, so after the bootstrap every connection of theirs
(to the broker, the group and the transaction coordinator) still goes through toxiproxy. The load
and the final checks use the broker's own listener, so network faults hit the coordinators only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from streamcoord.core import Catalog, partition_key_for
from streamcoord.devtools.kafka import BrokerSettings, LocalKafka, free_port
from streamcoord.devtools.toxiproxy import LocalToxiproxy, build_toxiproxy
from streamcoord.events import topology
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)
from streamcoord.kafka.admin import apply_topics, load_topics
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.pipelines.loader import parse_specs
from streamcoord.runtime import TopicNames

PIPELINE = "chaos"
STAGES = ("extract", "transform", "load")
SPEC = f"""\
pipelines:
  - name: {PIPELINE}
    run_key: string(event.data.n)
    triggers:
      - kind: event
        type: chaos.tick
    stages:
      - name: extract
      - name: transform
        needs: [extract]
      - name: load
        needs: [transform]
"""
PROXY = "kafka"


def catalog_of(spec: str) -> Catalog:
    """The catalog ``streamcoord run`` builds from ``spec``: what the replay check folds with."""
    loaded = parse_specs(spec, "chaos.yaml")
    if loaded.problems:
        raise ValueError(f"the chaos spec has problems: {loaded.problems}")
    return Catalog.build(loaded.pipelines, loaded.pools)


class Infrastructure:
    """A broker (own port, own data directory) and a toxiproxy in front of its PROXIED listener."""

    def __init__(self, work: Path) -> None:
        build_toxiproxy(progress=lambda line: None)
        self.toxiproxy = LocalToxiproxy(work / "toxiproxy")
        self.toxiproxy.start()
        proxied = free_port()
        self.proxy_port = self.toxiproxy.create_proxy(PROXY, f"127.0.0.1:{proxied}")
        self.broker = LocalKafka(
            BrokerSettings(
                port=free_port(),
                data_dir=work / "kafka",
                proxied_listener=(proxied, self.proxy_port),
            )
        )

    @property
    def direct(self) -> str:
        """The broker's own listener: the load and the checks."""
        return self.broker.bootstrap

    @property
    def proxied(self) -> str:
        """Through toxiproxy: the coordinators."""
        return f"127.0.0.1:{self.proxy_port}"

    def restart_broker(self, *, hard: bool) -> float:
        """Stop the broker (SIGKILL when ``hard``, else SIGTERM), start it again; seconds down."""
        started = time.monotonic()
        pid = self.broker.running_pid()
        if hard and pid is not None:
            os.kill(pid, signal.SIGKILL)  # stop() below then only reaps it
        self.broker.stop()
        self.broker.start()
        return time.monotonic() - started

    def close(self) -> None:
        self.broker.stop()
        self.toxiproxy.stop()


async def create_topics(bootstrap: str, topics: TopicNames, partitions: int) -> None:
    """The declared topics (the packaged topics.yaml), prefixed, with ``partitions`` at most."""
    declared = [
        topic.model_copy(update={"partitions": min(topic.partitions, partitions)})
        for topic in load_topics().with_prefix(topics.prefix)
    ]
    await apply_topics(KafkaSettings(bootstrap_servers=bootstrap), declared)


class Member:
    """One ``streamcoord run`` child process of this tree, with a static instance id."""

    def __init__(self, name: str, spec: Path, bootstrap: str, topics: TopicNames, *, group: str,
                 log_dir: Path) -> None:  # fmt: skip
        self.name = name
        self.log = log_dir / f"coordinator-{name}.log"
        self.command = [
            sys.executable, "-m", "streamcoord.cli.main", "run", str(spec),
            "--bootstrap-servers", bootstrap, "--group-id", group,
            "--topic-prefix", topics.prefix, "--instance-id", f"{group}-{name}",
        ]  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None
        self.wanted = False  # whether the supervisor keeps it running
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"=== start {self.starts} at {time.time():.3f}\n".encode())
            out.flush()
            self.process = await asyncio.create_subprocess_exec(
                *self.command, stdout=out, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        self.starts += 1
        self.wanted = True

    def logged_since_start(self, text: bytes) -> bool:
        """Whether this start of the member has logged ``text`` yet."""
        return text in self.log.read_bytes().rsplit(b"=== start", 1)[-1]

    async def joined(self, within_s: float = 60.0) -> bool:
        """Wait (bounded) until this start of the member consumes as part of the group."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline and self.running:
            if self.logged_since_start(b"coordinator consuming"):
                return True
            await asyncio.sleep(0.2)  # a poll of its log file, bounded by within_s
        return False

    def last_error(self) -> str:
        """The last exception line of its log: why it exited by itself."""
        lines = self.log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if line and line[0] not in " {=" and "Error" in line]
        return errors[-1][:160] if errors else "no error logged"

    async def kill(self) -> None:
        """SIGKILL, if it runs."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self, grace_s: float = 45.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``grace_s``); its exit code, None if it was killed."""
        self.wanted = False
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), grace_s)
        except TimeoutError:
            await self.kill()
            return None


async def retrying(send: Callable[[], Awaitable[object]], *, deadline_s: float = 180.0) -> None:
    """``send`` until it succeeds; a broker restart makes sends fail for a while."""
    started = time.monotonic()
    while True:
        try:
            await send()
        except KafkaError:
            if time.monotonic() - started > deadline_s:
                raise
            await asyncio.sleep(0.5)  # the broker is restarting: bounded by deadline_s
        else:
            return


@dataclass
class Load:
    """Ticks in (one run each), every trigger answered with started then succeeded."""

    bootstrap: str
    topics: TopicNames
    producer: AIOKafkaProducer | None = None
    emitted: int = 0
    answered: int = 0
    send_retries: int = 0
    seen_triggers: set[str] = field(default_factory=set)

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
            request_timeout_ms=10_000,
        )  # fmt: skip
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def emit(self, event: CloudEvent) -> None:
        value, headers = encode(event)
        key = partition_key_for(event).encode()
        attempts = 0

        async def send() -> None:
            nonlocal attempts
            attempts += 1
            assert self.producer is not None
            try:
                await self.producer.send_and_wait(
                    self.topics.events, key=key, value=value, headers=headers
                )
            except OutOfOrderSequenceNumber:
                # The broker restarted and lost the producer's sequence: an idempotent producer
                # cannot go on from there; a new one can (the retry may duplicate the tick,
                # which the coordinator's dedup absorbs: tick ids are fixed).
                await self.stop()
                await self.start()
                raise

        await retrying(send)
        self.send_retries += attempts - 1

    async def emit_ticks(self, runs: int, seconds: float) -> None:
        """``runs`` ticks spread evenly over about ``seconds``."""
        started = time.monotonic()
        for n in range(runs):
            await self.emit(ExternalEvent(id=f"tick-{n}", source="chaos", type="chaos.tick",
                                          data={"n": n}))  # fmt: skip
            self.emitted += 1
            behind = started + seconds * (n + 1) / runs - time.monotonic()
            if behind > 0:
                await asyncio.sleep(behind)  # pacing the load, not synchronisation

    async def answer_triggers(self) -> None:
        """The executor: read every committed trigger, report it started and succeeded."""
        consumer = AIOKafkaConsumer(
            self.topics.full(topology.TRIGGERS), bootstrap_servers=self.bootstrap,
            group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
            isolation_level="read_committed",
        )  # fmt: skip
        await consumer.start()
        try:
            async for message in consumer:
                trigger = decode(message.value, list(message.headers or ()))
                if not isinstance(trigger, StageTrigger):
                    continue
                key = trigger.data.idempotency_key
                if key in self.seen_triggers:
                    continue  # a duplicate: counted by the checks, answered once is enough
                self.seen_triggers.add(key)
                ref = StageRef(run_id=trigger.data.run_id, stage=trigger.data.stage,
                               attempt=trigger.data.attempt)  # fmt: skip
                base = f"executor/{key}"
                await self.emit(StageStarted(id=f"{base}/started", source="chaos", data=ref))
                await self.emit(StageSucceeded(
                    id=f"{base}/succeeded", source="chaos",
                    data=StageSucceededData(**ref.model_dump(), outputs={"rows": 1}),
                ))  # fmt: skip
                self.answered += 1
        finally:
            await consumer.stop()
