"""The README's demo, end to end on the real broker: every run of the demo day succeeds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from streamcoord.demo import EXPECTED_RUNS, run_demo
from streamcoord.events.topics import PACKAGED_TOPICS_FILE
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime.specs import load_catalog

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).parents[2] / "examples"
DAY = date(2026, 1, 15)


def forget_demo_failures(day: date) -> None:
    """The flaky `load` stage fails once per partition and remembers it in /tmp; start fresh."""
    for marker in Path("/tmp").glob(f"streamcoord-demo-load-*{day.isoformat()}*"):  # noqa: S108
        marker.unlink()


async def test_demo_runs_from_first_partition_to_deployed_model(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    forget_demo_failures(DAY)
    catalog = load_catalog([EXAMPLES], topics_file=PACKAGED_TOPICS_FILE)
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name('demo')}.")
    phases: list[str] = []
    progress = await run_demo(
        kafka, catalog, topics_file=PACKAGED_TOPICS_FILE,
        on_phase=phases.append, timeout_s=240, today=DAY,
    )  # fmt: skip

    assert progress.day == DAY
    for pipeline, count in EXPECTED_RUNS.items():
        assert progress.count(pipeline, "succeeded") == count, pipeline
    ingest = [r.data for r in progress.runs.values() if r.data.pipeline == "ingest"]
    assert {r.attempts["load"] for r in ingest} == {2}, "load fails once, then its retry succeeds"
    ml = progress.runs["ml/2026-01-15"].data
    assert ml.stages == {"train": "succeeded", "evaluate": "succeeded", "deploy": "succeeded"}
    assert progress.runs["features/2026-01-15"].data.stages == {"stream_features": "succeeded"}
    assert phases[0] == "creating topics"
