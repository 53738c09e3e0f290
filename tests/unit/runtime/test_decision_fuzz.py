"""Fuzzing the decision path (decode, decide, encode, commit) with hostile records: nothing
raises out of it, each record is decided or dead-lettered with a reason, and the committed
state always loads again.

A few seconds by default; ``STREAMCOORD_FUZZ_EXAMPLES=20000`` runs longer."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamcoord.core import CoordinatorState
from streamcoord.events.codec import encode
from streamcoord.events.models import ExternalEvent, RunRequested, RunRequestedData
from streamcoord.runtime import CoordinatorSettings
from tests.fuzz.path import OfflineProcessor, decide_records, example_catalog, record
from tests.fuzz.strategies import Raw, records

CATALOG = example_catalog()
# Smaller limits than the defaults so hostile sizes stay cheap to generate.
SETTINGS = CoordinatorSettings(max_event_bytes=16_384, max_event_string=1024)
BUGS = {"decode_failed", "decide_failed", "encode_failed"}
EXAMPLES = int(os.environ.get("STREAMCOORD_FUZZ_EXAMPLES", "60"))


def _seed() -> list[Raw]:
    """Valid records first, so hostile ones meet existing runs, pools and pauses."""
    events = [
        ExternalEvent(
            id="l1",
            source="s3://landing/a",
            type="dataset.landed",
            time=datetime(2024, 5, 1, 1, tzinfo=UTC),
            data={"dataset": "clicks", "partition": "2024-05-01T01", "date": "2024-05-01"},
        ),
        RunRequested(id="r1", source="cli", data=RunRequestedData(pipeline="ml", run_key="k")),
        RunRequested(
            id="r2", source="cli", data=RunRequestedData(pipeline="features", run_key="online")
        ),
    ]
    return [(*encode(event), b"k") for event in events]


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(records(), min_size=1, max_size=6), st.lists(records(), max_size=4))
def test_every_record_is_decided_or_dead_lettered_and_nothing_raises(
    first: list[Raw],
    second: list[Raw],
) -> None:
    worker = OfflineProcessor(CATALOG, SETTINGS)
    for raws in (_seed() + first, second):
        batch = [
            record(value, headers, key, offset) for offset, (value, headers, key) in enumerate(raws)
        ]
        decided = decide_records(worker, batch)
        assert decided.consumed == len(batch)
        # a record that was not decided has a dead letter, and each has a reason
        assert len(batch) - decided.decided <= len(decided.dead_lettered) <= len(batch)
        assert all(decided.reasons)
        # the isolation catches what raises; that something raised at all is a bug to fix
        assert not BUGS & set(decided.reasons), decided.dead_letters
        assert CoordinatorState.load(0, 1, worker.committed).dump() == worker.committed
