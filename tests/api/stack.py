"""The API over a real broker: a coordinator with a test executor (tests/integration's
harness), the read model's projector, the command tracker and the app on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import uvicorn

from streamcoord.api import ApiServices, CommandSender, LocalSpecs, create_app
from streamcoord.auth import Role, TokenRegistry, hash_token, new_token
from streamcoord.backfill import BackfillManager
from streamcoord.control import CommandTracker, explain_stage
from streamcoord.core import Explanation
from streamcoord.emit import Emitter
from streamcoord.events import topology
from streamcoord.events.models import StageTrigger
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.readmodel import open_store, project
from streamcoord.runtime import TopicNames
from tests.integration.coordination import Harness, create_topics, in_process

#: Pipelines for the API's tests: `manual` runs through (`downstream` needs it), `waits` never
#: finishes (cancel it), `flaky` fails its first attempt for good (retry it), `eventful` has no
#: manual trigger.
SPEC = """\
pipelines:
  - name: manual
    description: two stages, one after the other
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: first
      - name: second
        needs: [first]
  - name: downstream
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: report
        needs: [manual.second]
  - name: waits
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: forever
  - name: flaky
    run_key: "'k'"
    triggers:
      - kind: manual
    stages:
      - name: work
  - name: eventful
    run_key: event.data.day
    triggers:
      - kind: event
        type: shop.orders.landed
    stages:
      - name: only
"""


@dataclass
class Stack:
    url: str
    harness: Harness
    tokens: dict[str, str]  # role name -> token
    services: ApiServices

    def client(self, role: str | None = "admin") -> httpx.AsyncClient:
        headers = {"authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


def tokens() -> tuple[TokenRegistry, dict[str, str]]:
    plain = {role.name: new_token() for role in Role}
    registry = TokenRegistry(
        (f"test-{name}", hash_token(token), Role[name]) for name, token in plain.items()
    )
    return registry, plain


async def executor(harness: Harness) -> None:
    """Answers the triggers: `waits` is started and never ends, `flaky` fails its first attempt
    for good and succeeds after, the rest succeed."""
    from streamcoord.events.codec import decode
    from streamcoord.events.models import (
        StageFailed,
        StageFailedData,
        StageRef,
        StageStarted,
        StageSucceeded,
        StageSucceededData,
    )

    consumer = harness.reader(harness.topics.full(topology.TRIGGERS))
    await consumer.start()
    try:
        async for message in consumer:
            trigger = decode(message.value, list(message.headers or ()))
            if not isinstance(trigger, StageTrigger):
                continue
            harness.triggers.append(trigger)
            data = trigger.data
            ref = StageRef(run_id=data.run_id, stage=data.stage, attempt=data.attempt)
            base = f"executor/{data.idempotency_key}"
            await harness.emit_event(StageStarted(id=f"{base}/started", source="w1", data=ref))
            if data.pipeline == "waits":
                continue
            if data.pipeline == "flaky" and data.attempt == 1:
                failed = StageFailedData(**ref.model_dump(), error="disk full", retryable=False)
                await harness.emit_event(StageFailed(id=f"{base}/failed", source="w1", data=failed))
                continue
            done = StageSucceededData(**ref.model_dump(), outputs={"rows": 3})
            await harness.emit_event(StageSucceeded(id=f"{base}/ok", source="w1", data=done))
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def api_stack(
    bootstrap: str, store_url: str, prefix: str, spec_dir: str
) -> AsyncIterator[Stack]:
    """Everything running until the block ends; ``spec_dir`` holds SPEC as a file."""
    topics = TopicNames(prefix=prefix)
    await create_topics(bootstrap, topics, partitions=2)
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
    client = kafka.client_kwargs()
    registry, plain = tokens()
    store = open_store(store_url)
    stop = asyncio.Event()
    caught_up = asyncio.Event()
    specs = LocalSpecs([spec_dir], topics_file=None)
    async with in_process(bootstrap, topics, f"{prefix}group", spec=SPEC, executor=False) as h:
        answering = asyncio.create_task(executor(h))
        tracker = CommandTracker(client, topics)
        await tracker.start()
        projector = asyncio.create_task(project(store, client, topics, stop, caught_up=caught_up))

        async def explainer(run_id: str, stage: str) -> Explanation | None:
            return await explain_stage(client, topics, specs.catalogs(), run_id, stage)

        backfills = BackfillManager(kafka, topics.events, topics.runs, idle_timeout_s=120)
        try:
            async with Emitter(kafka, topic=topics.events, linger_ms=0) as emitter:
                services = ApiServices(
                    store=store, specs=specs, commands=CommandSender(emitter, tracker),
                    explainer=explainer, tokens=registry, max_body_bytes=8192,
                    backfills=backfills,
                )  # fmt: skip
                async with _serving(services) as url:
                    await asyncio.wait_for(caught_up.wait(), 60)
                    await asyncio.wait_for(tracker.caught_up.wait(), 60)
                    yield Stack(url, h, plain, services)
        finally:
            await backfills.close()
            stop.set()
            await asyncio.wait_for(projector, 60)
            await tracker.stop()
            answering.cancel()
            await asyncio.gather(answering, return_exceptions=True)
            store.close()


@contextlib.asynccontextmanager
async def _serving(services: ApiServices) -> AsyncIterator[str]:
    # proto IPPROTO_TCP: asyncio sets TCP_NODELAY only then (else each response waits ~40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # requests wait in the backlog until uvicorn accepts: no start race
    app = create_app(services, feed_interval_s=0.1)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        app.state.feed.close()
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        sock.close()
