"""The coordinator's Prometheus endpoint shows its work: scraped values move as a run goes by."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from streamcoord.events.models import ExternalEvent
from streamcoord.runtime import TopicNames
from streamcoord.telemetry import configure_metrics
from tests.integration.coordination import (
    create_topics,
    in_process,
    until_runs_succeeded,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_scraped_metrics_move_as_runs_complete(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topics = TopicNames(prefix=f"{unique_name('metrics')}.")
    await create_topics(kafka_bootstrap, topics, partitions=1)
    handle = configure_metrics("streamcoord-test", port=0, set_global=False)
    try:
        async with (
            in_process(
                kafka_bootstrap, topics, unique_name("group"), instruments=handle.instruments
            ) as harness,
            httpx.AsyncClient() as http,
        ):
            before = (await http.get(handle.url)).text
            for n in range(3):
                await harness.emit_event(
                    ExternalEvent(id=f"m-{n}", source="clock", type="steady.tick", data={"n": n})
                )
            await harness.emit(b"not json at all")
            await asyncio.wait_for(until_runs_succeeded(harness, 3), 60)
            after = (await http.get(handle.url)).text
    finally:
        handle.shutdown()

    consumed = "streamcoord_events_consumed_total"
    assert sample(before, consumed, type="steady.tick") == 0
    assert sample(after, consumed, type="steady.tick") == 3
    assert sample(after, consumed, type="streamcoord.stage.succeeded") == 6
    assert sample(after, "streamcoord_triggers_published_total") == 6
    assert sample(after, "streamcoord_dead_letters_total", reason="not_json") == 1
    outcomes = "streamcoord_stage_outcomes_total"
    assert sample(after, outcomes, stage="second", outcome="succeeded") == 3
    assert sample(after, "streamcoord_decision_duration_seconds_count") >= 9
    assert sample(after, "streamcoord_trigger_latency_seconds_count") == 6
    assert sample(after, "streamcoord_restore_duration_seconds_count") == 1
    assert re.search(r"streamcoord_stage_duration_seconds_count\{[^}]*\} 3", after)
