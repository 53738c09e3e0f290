"""Behaviour a pipeline owner would notice, one scenario at a time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from streamcoord.core import (
    Catalog,
    CoordinatorState,
    Publish,
    decide,
    explain,
    murmur2,
    partition_for,
    partition_key_for,
)
from streamcoord.core.replay import replay
from streamcoord.errors import SpecError
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    PipelinePause,
    PipelineResume,
    RunCancel,
    RunRequested,
    StageFailed,
    StageRetry,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pipeline(**extra: Any) -> Pipeline:
    spec: dict[str, Any] = {
        "name": "p",
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
        "stages": [{"name": "a"}, {"name": "b", "needs": ["a"]}],
    }
    spec.update(extra)
    return Pipeline.model_validate(spec)


def _go(key: str, ident: str | None = None) -> ExternalEvent:
    return ExternalEvent(id=ident or f"go-{key}", source="src", type="go", data={"key": key})


def _ref(run: str, stage: str, attempt: int = 1) -> dict[str, Any]:
    return {"run_id": run, "stage": stage, "attempt": attempt}


def _triggers(events: list[CloudEvent], pipeline: Pipeline) -> list[tuple[str, str, int]]:
    result = replay(
        Catalog.build([pipeline]), [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    )
    return [
        (c.event.data.run_id, c.event.data.stage, c.event.data.attempt)
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


@pytest.mark.parametrize("key", [b"", b"a", b"ab", b"abc", b"21", b"foobar", b"x" * 37])
def test_partitioning_matches_kafkas_default_partitioner(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_events_of_one_run_share_a_partition() -> None:
    started = StageStarted(id="1", source="x", data=_ref("p/k#2", "a"))
    request = RunRequested(id="2", source="cli", data={"pipeline": "p", "run_key": "k"})
    assert partition_key_for(started) == partition_key_for(request) == "p/k"
    assert partition_for("p/k", 12) == partition_for(partition_key_for(started), 12)


def test_a_duplicated_trigger_event_makes_one_run_and_a_new_key_another() -> None:
    assert _triggers([_go("k"), _go("k"), _go("k", "other"), _go("j")], _pipeline()) == [
        ("p/k", "a", 1),
        ("p/j", "a", 1),
    ]


def test_manual_request_after_a_finished_run_starts_a_second_generation() -> None:
    events: list[CloudEvent] = [
        _go("k"),
        StageSucceeded(id="s1", source="x", data=_ref("p/k", "a")),
        StageSucceeded(id="s2", source="x", data=_ref("p/k", "b")),
        _go("k", "late"),
        RunRequested(id="r", source="cli", data={"pipeline": "p", "run_key": "k"}),
    ]
    assert _triggers(events, _pipeline())[-1] == ("p/k#2", "a", 1)


def test_cancel_stops_the_run_and_a_later_report_of_the_attempt_is_ignored() -> None:
    catalog = Catalog.build([_pipeline()])
    state = CoordinatorState.empty()
    decide(catalog, state, _go("k"), T0)
    decide(catalog, state, RunCancel(id="c", source="cli", data={"run_id": "p/k"}), T0)
    run = state.run("p/k")
    assert run is not None
    assert run.status == "cancelled"
    late = decide(catalog, state, StageSucceeded(id="s", source="x", data=_ref("p/k", "a")), T0)
    assert late.rejection is None
    assert [c.event.data.reason for c in late.commands if isinstance(c, Publish)] == [
        "attempt_cancelled: succeeded after the attempt was cancelled"
    ]
    assert run.stages["a"].status == "cancelled"


def test_manual_retry_reopens_upstream_failed_stages() -> None:
    events: list[CloudEvent] = [
        _go("k"),
        StageFailed(id="f", source="x", data={**_ref("p/k", "a"), "retryable": False}),
        StageRetry(id="r", source="cli", data={"run_id": "p/k", "stage": "a"}),
        StageSucceeded(id="s", source="x", data=_ref("p/k", "a", 2)),
    ]
    assert _triggers(events, _pipeline()) == [("p/k", "a", 1), ("p/k", "a", 2), ("p/k", "b", 1)]


def test_matches_while_paused_wait_for_resume() -> None:
    pause = PipelinePause(id="pz", source="cli", data={"pipeline": "p"})
    resume = PipelineResume(id="rs", source="cli", data={"pipeline": "p"})
    assert _triggers([pause, _go("k")], _pipeline()) == []
    assert _triggers([pause, _go("k"), resume], _pipeline()) == [("p/k", "a", 1)]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("queue", [("p/k1", "a", 1), ("p/k2", "a", 1)]),
        ("skip", [("p/k1", "a", 1)]),
        ("cancel_oldest", [("p/k1", "a", 1), ("p/k2", "a", 1)]),
    ],
)
def test_max_active_runs_policies(policy: str, expected: list[tuple[str, str, int]]) -> None:
    pipeline = _pipeline(
        concurrency={"max_active_runs": 1, "over_limit": policy}, stages=[{"name": "a"}]
    )
    events: list[CloudEvent] = [_go("k1"), _go("k2")]
    if policy != "cancel_oldest":
        events.append(StageSucceeded(id="s", source="x", data=_ref("p/k1", "a")))
    assert _triggers(events, pipeline) == expected


def test_data_arrival_triggers_when_every_partition_landed_and_late_ones_do_not_count() -> None:
    pipeline = _pipeline(
        run_key="event.data.day",
        triggers=[
            {
                "kind": "data",
                "datasets": ["orders"],
                "partitions_per_run": 2,
                "event_time": "event.data.at",
                "allowed_lateness_seconds": 60,
            }
        ],
        stages=[{"name": "a"}],
    )

    def landed(ident: str, part: str, at: str, day: str = "d1") -> ExternalEvent:
        return ExternalEvent(
            id=ident,
            source="lake",
            type="dataset.landed",
            data={"dataset": "orders", "partition": part, "day": day, "at": at},
        )

    late = landed("old", "2", "2026-01-01T09:00:00+00:00", "d0")
    events: list[CloudEvent] = [
        landed("1", "1", "2026-01-01T10:00:00+00:00"),
        late,
        landed("1b", "1", "2026-01-01T10:00:00+00:00", "d0"),
        landed("2", "2", "2026-01-01T10:01:00+00:00"),
    ]
    assert _triggers(events, pipeline) == [("p/d1", "a", 1)]


def test_explain_names_what_a_stage_waits_for() -> None:
    catalog = Catalog.build([_pipeline()])
    state = CoordinatorState.empty()
    decide(catalog, state, _go("k"), T0)
    why = explain(catalog, state, "p/k", "b")
    assert why is not None
    assert why.status == "pending"
    assert [n.need for n in why.needs if not n.satisfied] == ["a"]
    assert any("waiting for a" in h for h in why.holds)
    assert explain(catalog, state, "p/nope", "b") is None


def test_bad_specs_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="cycle"):
        Catalog.build(
            [_pipeline(stages=[{"name": "a", "needs": ["b"]}, {"name": "b", "needs": ["a"]}])]
        )
    with pytest.raises(SpecError, match=r"run_key: invalid expression .event\.\(. at 1:7"):
        Catalog.build([_pipeline(run_key="event.(")])


@pytest.mark.parametrize(
    ("pipelines", "pools", "message"),
    [
        (
            [_pipeline(stages=[{"name": "a"}, {"name": "a"}])],
            [],
            "pipeline 'p': stage names must be unique",
        ),
        (
            [_pipeline(stages=[{"name": "a", "needs": ["zz"]}])],
            [],
            "pipeline 'p' stage 'a': needs unknown stage 'zz'",
        ),
        (
            [_pipeline(stages=[{"name": "a", "needs": ["other.x"]}])],
            [],
            "pipeline 'p' stage 'a': needs unknown pipeline 'other'",
        ),
        (
            [_pipeline(triggers=[{"kind": "pipeline", "pipeline": "other"}])],
            [],
            "pipeline 'p' triggers[0].pipeline: unknown pipeline 'other'",
        ),
        (
            [_pipeline(stages=[{"name": "a", "pool": "gpu"}])],
            [],
            "pipeline 'p' stage 'a': unknown pool 'gpu'",
        ),
        ([_pipeline(), _pipeline()], [], "pipeline 'p' is defined more than once"),
    ],
)
def test_catalog_build_lists_what_is_wrong_with_the_specs(
    pipelines: list[Pipeline], pools: list[Pool], message: str
) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        Catalog.build(pipelines, pools)
