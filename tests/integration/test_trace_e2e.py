"""One run is one connected trace in a real Jaeger: the emitter's span, the run's root, the
coordinator's decisions, a span per stage attempt and the worker's spans under them, with the
fan-in stage linking its upstream attempts."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic import JsonValue

from streamcoord.devtools.jaeger import JaegerSettings
from streamcoord.emit import Emitter
from streamcoord.emit.tracing import producer_span_hook
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import Coordinator, CoordinatorSettings, TopicNames, tracing
from streamcoord.telemetry import PresetIdGenerator
from streamcoord.worker import StageContext, Worker, WorkerSettings
from streamcoord.worker.tracing import WorkerTracing
from tests.integration.coordination import (
    Harness,
    catalog_of,
    create_topics,
    run_record_with_status,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

SPEC = """\
pipelines:
  - name: fan
    run_key: string(event.data.n)
    triggers:
      - kind: event
        type: fan.go
    stages:
      - name: a
      - name: b
        needs: [a]
      - name: c
        needs: [a]
      - name: d
        needs: [b, c]
"""
STAGES = ("a", "b", "c", "d")


def _provider(jaeger: JaegerSettings) -> TracerProvider:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    provider = TracerProvider(id_generator=PresetIdGenerator())
    exporter = OTLPSpanExporter(endpoint=f"{jaeger.otlp_http_endpoint}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _fetch(settings: JaegerSettings, trace_id: str, done: Callable[[list[Any]], bool]) -> list[Any]:
    url = f"{settings.query_url}/api/v3/traces/{trace_id}"
    spans: list[Any] = []
    deadline = time.monotonic() + 30
    for _ in range(300):  # bounded in count and in time
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - 127.0.0.1
                body = json.load(response)
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        else:
            spans = [
                span
                for resource in body["result"]["resourceSpans"]
                for scope in resource["scopeSpans"]
                for span in scope["spans"]
            ]
            if done(spans):
                return spans
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)  # Jaeger gives no notification to await; poll its API
    return spans


def _attribute(span: dict[str, Any], key: str) -> Any:
    for item in span.get("attributes", []):
        if item["key"] == key:
            return next(iter(item["value"].values()))
    return None


async def _run_pipeline(
    bootstrap: str, topics: TopicNames, group: str, provider: TracerProvider
) -> str:
    coordinator = Coordinator(
        catalog_of(SPEC),
        CoordinatorSettings(group_id=group, topic_prefix=topics.prefix, poll_timeout_ms=50),
        {"bootstrap_servers": bootstrap},
    )
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=topics.prefix)
    worker_tracing = WorkerTracing(provider.get_tracer("test.worker"))
    worker = Worker(
        WorkerSettings(group_id=f"{group}.w", heartbeat_interval_s=30.0), kafka,
        middleware=[worker_tracing.middleware], send_hooks=[worker_tracing.send_hook],
    )  # fmt: skip
    handler_tracer = provider.get_tracer("test.handler")
    for name in STAGES:

        async def handle(ctx: StageContext) -> dict[str, JsonValue]:
            with handler_tracer.start_as_current_span(f"handler {ctx.stage}"):
                return {"stage": ctx.stage}

        worker.stage(f"fan.{name}")(handle)
    stop = asyncio.Event()
    services = [
        asyncio.create_task(coordinator.run(stop)),
        asyncio.create_task(worker.run(stop)),
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await asyncio.wait_for(coordinator.ready.wait(), 60)
        emit_tracer = provider.get_tracer("test.emitter")
        async with Emitter(kafka, hooks=[producer_span_hook(emit_tracer)]) as emitter:
            with emit_tracer.start_as_current_span("upstream job"):
                await emitter.emit("fan.go", source="test/emitter", data={"n": 1}, id="go-1")
        harness = Harness(bootstrap, topics, producer)
        record = await asyncio.wait_for(run_record_with_status(harness, "fan/1", "succeeded"), 90)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*services, return_exceptions=True), 60)
        await producer.stop()
    assert record.data.trace_id is not None
    return record.data.trace_id


async def test_a_run_with_a_fan_in_is_one_connected_trace_in_jaeger(
    kafka_bootstrap: str, jaeger: JaegerSettings, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('trace')}.")
    await create_topics(kafka_bootstrap, topics, partitions=1)
    provider = _provider(jaeger)
    tracing.use_provider(provider)
    try:
        trace_id = await _run_pipeline(kafka_bootstrap, topics, unique_name("group"), provider)
    finally:
        tracing.use_provider(None)
        provider.shutdown()  # flushes, as a graceful exit does

    def complete(spans: list[Any]) -> bool:
        return any(s["name"] == "run fan" for s in spans) and sum(
            s["name"] == "process streamcoord.triggers" for s in spans
        ) >= len(STAGES)

    spans = _fetch(jaeger, trace_id, complete)
    assert {span["traceId"] for span in spans} == {trace_id}
    by_id = {span["spanId"]: span for span in spans}
    names = [span["name"] for span in spans]
    (upstream,) = [s for s in spans if s["name"] == "upstream job"]
    (send,) = [s for s in spans if s["name"].startswith("send ")]
    (root,) = [s for s in spans if s["name"] == "run fan"]
    assert send["parentSpanId"] == upstream["spanId"]
    assert root["parentSpanId"] == send["spanId"]  # the emitter's context is the run's parent
    decisions = [
        s
        for s in spans
        if s["name"].startswith("process ")
        and _attribute(s, "messaging.consumer.group.name") is not None
        and _attribute(s, "streamcoord.event_type") is not None
    ]
    assert any(_attribute(s, "streamcoord.event_type") == "fan.go" for s in decisions)
    attempts = {
        _attribute(s, "streamcoord.stage"): s for s in spans if s["name"].startswith("stage ")
    }
    assert set(attempts) == set(STAGES), names
    for stage, attempt in attempts.items():
        assert attempt["parentSpanId"] == root["spanId"]
        (work,) = [
            s
            for s in spans
            if s["name"] == "process streamcoord.triggers"
            and _attribute(s, "streamcoord.stage") == stage
        ]
        assert work["parentSpanId"] == attempt["spanId"]
        (handler,) = [s for s in spans if s["name"] == f"handler {stage}"]
        assert handler["parentSpanId"] == work["spanId"]  # the user's spans nest
    linked = {link["spanId"] for link in attempts["d"].get("links", [])}
    assert linked == {attempts["b"]["spanId"], attempts["c"]["spanId"]}
    # the worker's reports continue the trace: a decision span under each worker span
    succeeded = [
        s
        for s in decisions
        if _attribute(s, "streamcoord.event_type") == "streamcoord.stage.succeeded"
    ]
    assert {by_id[s["parentSpanId"]]["name"] for s in succeeded} == {"process streamcoord.triggers"}
