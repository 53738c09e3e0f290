"""OpenLineage RunEvents from run records: the parent links of a cross-pipeline run, attempts,
the trace facet, declared datasets and those an executor reports, sent through the official
client and its serializer."""

from __future__ import annotations

import os
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest.importorskip("openlineage.client", reason="the lineage extra is not installed")

from openlineage.client import OpenLineageClient
from openlineage.client.serde import Serde
from openlineage.client.transport.transport import Transport

from streamcoord.core import Catalog, CoordinatorState, Publish, decide, publish_run_records
from streamcoord.events.models import (
    CloudEvent,
    DatasetRef,
    ExternalEvent,
    RunRecord,
    StageFailed,
    StageFailedData,
    StageLineage,
    StageSucceeded,
    StageSucceededData,
    StageTrigger,
)
from streamcoord.lineage import LineageTracker, attempt_uuid, run_uuid
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
#: The OpenLineage JSON Schema (spec/OpenLineage.json of the OpenLineage project), beside this
#: file or where STREAMCOORD_OPENLINEAGE_SCHEMA says. No package a registry we reach serves ships
#: it (checked 2026-12): openlineage-python (wheel and sdist), openlineage-integration-common,
#: -airflow, -dbt, -sql and Airflow's provider ship code and their own facets' schemas only; the
#: Maven artifact openlineage-java holds classes generated from it (no sources jar is served);
#: the npm registry has no OpenLineage package; the Rust crate openlineage-client has none; the
#: Go module of the project's Go client is not served by the module proxy.
SCHEMA = Path(
    os.environ.get("STREAMCOORD_OPENLINEAGE_SCHEMA", Path(__file__).parent / "OpenLineage.json")
)
PIPELINES = [
    Pipeline.model_validate(
        {
            "name": "up",
            "run_key": "event.data.day",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": [
                {
                    "name": "load",
                    "params": {"inputs": ["raw/${ run_key }"], "outputs": ["clean/${ run_key }"]},
                    "retries": {"max_attempts": 2},
                }
            ],
        }
    ),
    Pipeline.model_validate(
        {
            "name": "down",
            "run_key": "event.data.run_key",
            "triggers": [{"kind": "pipeline", "pipeline": "up", "outcomes": ["succeeded"]}],
            "stages": [{"name": "report"}],
        }
    ),
]


class Captured(Transport):
    """The client's transport seam: keep each event as the client serializes it."""

    kind = "captured"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        self.sent.append(orjson.loads(Serde.to_json(event)))


def _records() -> list[RunRecord | StageSucceeded]:
    """Run records of: up/d1 (load fails once, then succeeds), which starts down/d1 (succeeds),
    and the executor's success reports, each before the records it caused."""
    catalog = Catalog.build(PIPELINES)
    state, now = CoordinatorState.empty(), T0
    records: list[RunRecord | StageSucceeded] = []
    queue: deque[CloudEvent] = deque(
        [ExternalEvent(id="e1", source="app", type="go", data={"day": "d1"}, scprincipal="svc")]
    )
    while queue:
        event = queue.popleft()
        if isinstance(event, StageSucceeded):
            records.append(event)
        now += timedelta(seconds=1)
        step = publish_run_records(decide(catalog, state, event, now))
        for command in step.commands:
            if not isinstance(command, Publish):
                continue
            sent = command.event
            if isinstance(sent, RunRecord):
                records.append(sent)
            elif command.topic is None:
                queue.append(sent)
            elif isinstance(sent, StageTrigger):
                queue.append(_answer(sent))
        if not queue:  # the retry timer: fire what is due
            queue.extend(timer for _, _, timer in state.timers() if timer.data.purpose == "retry")
    return records


def _answer(trigger: StageTrigger) -> CloudEvent:
    d = trigger.data
    ref = {"run_id": d.run_id, "stage": d.stage, "attempt": d.attempt}
    if d.pipeline == "up" and d.attempt == 1:
        return StageFailed(
            id=f"{d.idempotency_key}/f", source="exec", data=StageFailedData(**ref, error="flaky")
        )
    lineage = None
    if d.pipeline == "down":  # the executor names what it read and wrote
        lineage = StageLineage(
            inputs=[DatasetRef(name="clean/d1"), DatasetRef(name="dim/customers")],
            outputs=[DatasetRef(namespace="s3://reports", name="daily/d1.pdf")],
        )
    elif d.pipeline == "up":  # what its spec declares too
        lineage = StageLineage(outputs=[DatasetRef(name="clean/d1")])
    return StageSucceeded(
        id=f"{d.idempotency_key}/s", source="exec", data=StageSucceededData(**ref, lineage=lineage)
    )


@pytest.fixture(scope="module")
def sent() -> list[dict[str, Any]]:
    transport = Captured()
    client = OpenLineageClient(transport=transport)
    tracker = LineageTracker("shop", PIPELINES)
    for record in _records():
        if isinstance(record, StageSucceeded):
            tracker.reported(record)
            continue
        for event in tracker.events(record):
            client.emit(event)
    return transport.sent


def _of(sent: list[dict[str, Any]], job: str) -> list[dict[str, Any]]:
    return [e for e in sent if e["job"]["name"] == job]


def test_runs_and_attempts_start_and_end(sent: list[dict[str, Any]]) -> None:
    assert [e["eventType"] for e in _of(sent, "up")] == ["START", "COMPLETE"]
    assert [(e["eventType"], e["run"]["runId"]) for e in _of(sent, "up.load")] == [
        ("START", attempt_uuid("up/d1", "load", 1)),
        ("FAIL", attempt_uuid("up/d1", "load", 1)),
        ("START", attempt_uuid("up/d1", "load", 2)),
        ("COMPLETE", attempt_uuid("up/d1", "load", 2)),
    ]
    assert [e["eventType"] for e in _of(sent, "down")] == ["START", "COMPLETE"]
    assert all(e["job"]["namespace"] == "shop" for e in sent)
    assert all(uuid.UUID(e["run"]["runId"]) for e in sent)


def test_a_stage_attempts_parent_is_its_run_and_a_runs_is_the_upstream_run(
    sent: list[dict[str, Any]],
) -> None:
    for event in _of(sent, "up.load"):
        parent = event["run"]["facets"]["parent"]
        assert parent["run"]["runId"] == run_uuid("up/d1")
        assert (parent["job"]["namespace"], parent["job"]["name"]) == ("shop", "up")
    (start, _) = _of(sent, "down")
    parent = start["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == run_uuid("up/d1")  # down/d1 was caused by up/d1's end
    assert parent["job"]["name"] == "up"
    assert "parent" not in _of(sent, "up")[0]["run"]["facets"]  # nothing caused up/d1's run
    (report, *_) = _of(sent, "down.report")
    assert report["run"]["facets"]["parent"]["run"]["runId"] == run_uuid("down/d1")


def test_the_trace_principal_and_declared_datasets_are_facets(sent: list[dict[str, Any]]) -> None:
    facet = _of(sent, "up")[0]["run"]["facets"]["streamcoord"]
    assert (facet["runId"], facet["principal"]) == ("up/d1", "svc")
    assert len(facet["traceId"]) == 32
    (start, *_) = _of(sent, "up.load")
    assert [d["name"] for d in start["inputs"]] == ["raw/d1"]
    assert [d["name"] for d in start["outputs"]] == ["clean/d1"]


def test_datasets_an_executor_reports_join_its_attempts_end(sent: list[dict[str, Any]]) -> None:
    start, complete = _of(sent, "down.report")
    assert (start["inputs"], start["outputs"]) == ([], [])  # nothing declared, nothing known yet
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [
        ("shop", "clean/d1"),
        ("shop", "dim/customers"),
    ]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == [
        ("s3://reports", "daily/d1.pdf")
    ]
    # declared and reported together, each once: up.load declares raw/d1 -> clean/d1
    (*_, load_complete) = _of(sent, "up.load")
    assert [d["name"] for d in load_complete["outputs"]] == ["clean/d1"]


def test_every_event_is_valid_against_the_openlineage_schema(sent: list[dict[str, Any]]) -> None:
    if not SCHEMA.is_file():
        pytest.skip(
            f"no OpenLineage JSON Schema at {SCHEMA}: no package of a registry we reach ships "
            "it; set STREAMCOORD_OPENLINEAGE_SCHEMA to a copy of spec/OpenLineage.json"
        )
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        orjson.loads(SCHEMA.read_bytes()), format_checker=jsonschema.FormatChecker()
    )
    for event in sent:
        validator.validate(event)  # its root $ref is the RunEvent
