"""Policies on the real broker: a coordinator enforces who may emit what and data contracts.

An order signed by the registered key (with the emitter API and with `streamcoord emit
--signing-key`) runs; an unsigned one, one signed with another key and one whose data breaks the
contract go to the dead-letter topic with their reason and the policy's name, start nothing,
are recorded among the decisions of the run they would have started and are counted in the
metrics; a dry-run policy only reports. A guard holds a stage and records why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.emit import Emitter
from streamcoord.events import topology
from streamcoord.events.codec import decode
from streamcoord.events.models import DecisionRecord, ExternalEvent
from streamcoord.events.signing import public_key_text
from streamcoord.runtime import TopicNames
from streamcoord.telemetry import configure_metrics
from tests.integration.coordination import (
    create_topics,
    in_process,
    read_all,
    until_runs_succeeded,
)
from tests.integration.test_metrics import sample

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

ERP = Ed25519PrivateKey.generate()
INTRUDER = Ed25519PrivateKey.generate()

SPEC = f"""\
pipelines:
  - name: orders
    run_key: event.data.day
    triggers: [{{kind: event, type: order.placed}}]
    stages: [{{name: load}}]
  - name: clicks
    run_key: event.data.day
    triggers: [{{kind: event, type: click.tracked}}]
    stages: [{{name: count}}]
policies:
  - kind: emit
    name: orders-from-erp
    types: [order.placed]
    sources: ["erp/*"]
    principals: [erp]
    require_signature: true
    keys: {{erp: "{public_key_text(ERP)}"}}
  - kind: contract
    name: order-shape
    type: order.placed
    schema:
      type: object
      required: [day, amount]
      properties: {{amount: {{type: number, minimum: 0}}}}
  - kind: emit
    name: clicks-from-web
    enforce: false
    types: [click.tracked]
    sources: ["web/*"]
"""


def _order(ident: str, day: str, amount: float = 1) -> ExternalEvent:
    return ExternalEvent(
        id=ident, source="erp/eu", type="order.placed", data={"day": day, "amount": amount}
    )


async def _read(
    harness_bootstrap: str, topic: str, count: int
) -> list[tuple[object, dict[str, bytes]]]:
    """The first ``count`` records of ``topic``, decoded, with their headers."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=harness_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    found: list[tuple[object, dict[str, bytes]]] = []
    try:
        async for message in consumer:
            headers = list(message.headers or ())
            found.append((message.value, dict(headers)))
            if len(found) == count:
                return found
    finally:
        await consumer.stop()
    return found


async def test_policies_reject_dead_letter_audit_and_count(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    topics = TopicNames(prefix=f"{unique_name('policies')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    key_file = tmp_path / "erp.pem"
    key_file.write_bytes(
        ERP.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    handle = configure_metrics("streamcoord-test", port=0, set_global=False)
    try:
        async with in_process(
            kafka_bootstrap, topics, unique_name("group"), spec=SPEC, instruments=handle.instruments
        ) as harness:

            def emitter(key: Ed25519PrivateKey | None = None) -> Emitter:
                return Emitter(
                    bootstrap_servers=kafka_bootstrap,
                    topic=topics.events,
                    signing_key=key,
                    principal="erp" if key else None,
                )

            async with emitter(ERP) as signed:
                await signed.send(_order("ok-1", "2026-01-05"))
                await signed.send(_order("bad-amount", "2026-01-07", amount=-5))
            async with emitter() as plain:
                await plain.send(_order("unsigned", "2026-01-08"))
                await plain.send(
                    ExternalEvent(
                        id="k1", source="mobile/app", type="click.tracked", data={"day": "d1"}
                    )
                )
            async with emitter(INTRUDER) as bad:
                await bad.send(_order("forged", "2026-01-09"))
            # and through the CLI, as an operator would
            result = await asyncio.to_thread(
                CliRunner().invoke,
                app,
                [
                    "emit",
                    "order.placed",
                    "--source",
                    "erp/cli",
                    "--data",
                    '{"day": "2026-01-06", "amount": 2}',
                    "--signing-key",
                    str(key_file),
                    "--principal",
                    "erp",
                    "--bootstrap-servers",
                    kafka_bootstrap,
                    "--topic-prefix",
                    topics.prefix,
                ],
            )
            assert result.exit_code == 0, result.output
            # the two signed orders and the (dry-run) click run to the end
            await asyncio.wait_for(until_runs_succeeded(harness, 3), 90)
            letters = await asyncio.wait_for(_read(kafka_bootstrap, topics.deadletter, 3), 60)
            async with httpx.AsyncClient() as http:
                scraped = (await http.get(handle.url)).text
            # committed with the dead letters, in the same transactions
            decisions = await read_all(harness, topics.full(topology.DECISIONS))
    finally:
        handle.shutdown()

    refused = {
        decode(value, list(headers.items())).id: (  # type: ignore[arg-type]
            headers["streamcoord.dlq.reason"].decode(),
            headers["streamcoord.dlq.policy"].decode(),
        )
        for value, headers in letters
    }
    assert refused == {
        "bad-amount": ("contract_violated", "order-shape"),
        "unsigned": ("emit_unsigned", "orders-from-erp"),
        "forged": ("emit_bad_signature", "orders-from-erp"),
    }
    audit = {
        (event.data.run_id, event.data.action, event.data.reason.split(":")[0])
        for _, _, event in decisions
        if isinstance(event, DecisionRecord) and "policy" in event.data.reason
    }
    assert audit == {
        ("orders/2026-01-07", "rejected", "policy order-shape"),
        ("orders/2026-01-08", "rejected", "policy orders-from-erp"),
        ("orders/2026-01-09", "rejected", "policy orders-from-erp"),
        ("clicks/d1", "would_reject", "policy clicks-from-web"),
    }
    violations = "streamcoord_policy_violations_total"
    assert sample(scraped, violations, policy="orders-from-erp", reason="emit_unsigned") == 1
    assert sample(scraped, violations, policy="order-shape", reason="contract_violated") == 1
    assert (
        sample(
            scraped,
            violations,
            policy="clicks-from-web",
            reason="emit_source_denied",
            enforced="false",
        )
        == 1
    )
    assert sample(scraped, "streamcoord_dead_letters_total", reason="emit_bad_signature") == 1


GUARDED = """\
pipelines:
  - name: release
    run_key: event.data.build
    triggers: [{kind: event, type: build.done}]
    stages:
      - {name: quality_check}
      - {name: deploy, needs: [quality_check]}
policies:
  - kind: guard
    name: no-weekend-deploys
    pipeline: release
    stages: [deploy]
    condition: timestamp(event.time).getDayOfWeek() in [1, 2, 3, 4, 5]
"""


async def test_a_guard_holds_a_stage_on_the_broker_and_says_so(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('guards')}.")
    await create_topics(kafka_bootstrap, topics, partitions=2)
    saturday, monday = datetime(2026, 1, 10, 9, tzinfo=UTC), datetime(2026, 1, 12, 9, tzinfo=UTC)
    async with in_process(kafka_bootstrap, topics, unique_name("group"), spec=GUARDED) as harness:
        for build, when in [("sat", saturday), ("mon", monday)]:
            await harness.emit_event(
                ExternalEvent(
                    id=build, source="ci", type="build.done", time=when, data={"build": build}
                )
            )
        await asyncio.wait_for(until_runs_succeeded(harness, 1), 90)
        held = await asyncio.wait_for(_first_held(kafka_bootstrap, topics), 60)
        # the Saturday run's quality check succeeded (its hold came after): still no deploy
        triggered = sorted((t.data.run_id, t.data.stage) for t in harness.triggers)
    assert triggered == [
        ("release/mon", "deploy"),
        ("release/mon", "quality_check"),
        ("release/sat", "quality_check"),
    ]
    assert held == (
        "release/sat",
        "deploy",
        "guard no-weekend-deploys: timestamp(event.time)"
        ".getDayOfWeek() in [1, 2, 3, 4, 5] is not true",
    )


async def _first_held(bootstrap: str, topics: TopicNames) -> tuple[str, str | None, str]:
    """Follow the decisions topic to the first ``held`` decision."""
    consumer = AIOKafkaConsumer(
        topics.full(topology.DECISIONS),
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        async for message in consumer:
            event = decode(message.value, list(message.headers or ()))
            if isinstance(event, DecisionRecord) and event.data.action == "held":
                return event.data.run_id, event.data.stage, event.data.reason
    finally:
        await consumer.stop()
    raise AssertionError("the decisions topic ended")
