"""Start, execution and heartbeat timeouts; the cancel command sent to executors; late reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcoord.core import (
    CancelTimer,
    Catalog,
    CoordinatorState,
    Publish,
    SetTimer,
    Step,
    decide,
)
from streamcoord.core.replay import replay
from streamcoord.errors import SpecError
from streamcoord.events import topology
from streamcoord.events.models import (
    CloudEvent,
    DecisionRecord,
    ExternalEvent,
    RunCancel,
    RunRecord,
    StageCancel,
    StageFailed,
    StageHeartbeat,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOPIC = topology.TRIGGERS


def _pipeline(stage: dict[str, Any] | None = None, **extra: Any) -> Pipeline:
    spec: dict[str, Any] = {
        "name": "p",
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}],
        "stages": [
            {
                "name": "a",
                "retries": {"max_attempts": 2, "backoff": {"initial_seconds": 1, "jitter": 0}},
                **(stage or {}),
            },
            {"name": "b", "needs": ["a"]},
        ],
    }
    spec.update(extra)
    return Pipeline.model_validate(spec)


def _go(key: str = "k") -> ExternalEvent:
    return ExternalEvent(id=f"go-{key}", source="src", type="go", data={"key": key})


def _ref(stage: str = "a", attempt: int = 1) -> dict[str, Any]:
    return {"run_id": "p/k", "stage": stage, "attempt": attempt}


def _published(step: Step) -> list[CloudEvent]:
    return [c.event for c in step.commands if isinstance(c, Publish)]


def _timeline(
    pipeline: Pipeline, events: list[tuple[float, CloudEvent]], default: float | None = None
) -> list[tuple[float, CloudEvent, str]]:
    """Every publish to the triggers topic, with its time in seconds since T0 and its key."""
    catalog = Catalog.build([pipeline], default_start_timeout_seconds=default)
    result = replay(catalog, [(T0 + timedelta(seconds=s), e) for s, e in events])
    return [
        ((r.timestamp - T0).total_seconds(), c.event, c.key)
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and c.topic == TOPIC
    ]


def _kinds(timeline: list[tuple[float, CloudEvent, str]]) -> list[tuple[float, str, int]]:
    return [
        (at, "cancel" if isinstance(e, StageCancel) else "trigger", e.data.attempt)
        for at, e, _ in timeline
    ]


def test_an_attempt_never_started_times_out_and_is_retried_after_a_cancel() -> None:
    timeline = _timeline(_pipeline({"start_timeout_seconds": 30}), [(0, _go())])
    assert _kinds(timeline) == [
        (0, "trigger", 1),
        (30, "cancel", 1),
        (31, "trigger", 2),
        (61, "cancel", 2),
    ]
    cancel = timeline[1][1]
    assert isinstance(cancel, StageCancel)
    assert cancel.data.cause == "start_timeout"
    assert cancel.data.idempotency_key == timeline[0][1].data.idempotency_key == "p/k/a/1"
    assert {key for _, _, key in timeline} == {"p/k"}  # the trigger's key: same partition


def test_the_catalog_default_applies_where_the_spec_sets_no_start_timeout() -> None:
    assert _kinds(_timeline(_pipeline(), [(0, _go())], default=600))[:2] == [
        (0, "trigger", 1),
        (600, "cancel", 1),
    ]
    defaults = {"defaults": {"start_timeout_seconds": 5}}
    assert _kinds(_timeline(_pipeline(**defaults), [(0, _go())], default=600))[1] == (
        5,
        "cancel",
        1,
    )
    assert _kinds(_timeline(_pipeline(), [(0, _go())])) == [(0, "trigger", 1)]


@pytest.mark.parametrize("value", [0, -1.5])
def test_a_default_start_timeout_must_be_positive(value: float) -> None:
    with pytest.raises(SpecError, match="default_start_timeout_seconds"):
        Catalog.build([_pipeline()], default_start_timeout_seconds=value)


@pytest.mark.parametrize("report", [StageStarted, StageHeartbeat])
def test_started_or_a_heartbeat_ends_the_start_timeout(report: type[CloudEvent]) -> None:
    catalog = Catalog.build([_pipeline({"start_timeout_seconds": 30})])
    state = CoordinatorState.empty()
    first = decide_at(catalog, state, _go(), 0)
    assert [c.timer_id for c in first.commands if isinstance(c, SetTimer)] == ["p/k|a|1|start"]
    step = decide_at(catalog, state, report(id="r", source="w", data=_ref()), 1)
    assert [c.timer_id for c in step.commands if isinstance(c, CancelTimer)] == ["p/k|a|1|start"]
    again = decide_at(catalog, state, report(id="r2", source="w", data=_ref()), 2)
    assert not [c for c in again.commands if isinstance(c, CancelTimer)]
    timeline = _timeline(
        _pipeline({"start_timeout_seconds": 30}),
        [(0, _go()), (1, report(id="r", source="w", data=_ref()))],
    )
    assert _kinds(timeline) == [(0, "trigger", 1)]


def decide_at(catalog: Catalog, state: CoordinatorState, event: CloudEvent, s: float) -> Step:
    return decide(catalog, state, event, T0 + timedelta(seconds=s))


def test_the_trigger_carries_the_execution_timeout_and_its_deadline() -> None:
    [(_, trigger, _)] = _timeline(_pipeline({"timeout_seconds": 90}), [(5, _go())])[:1]
    assert isinstance(trigger, StageTrigger)
    assert trigger.data.timeout_seconds == 90
    assert trigger.data.deadline == T0 + timedelta(seconds=95)
    [(_, plain, _)] = _timeline(_pipeline(), [(5, _go())])
    assert plain.data.timeout_seconds is None
    assert plain.data.deadline is None


@pytest.mark.parametrize(
    ("stage", "started", "cause"),
    [
        ({"timeout_seconds": 10}, False, "execution_timeout"),
        ({"heartbeat_timeout_seconds": 10}, True, "heartbeat_timeout"),
    ],
)
def test_every_timeout_sends_a_cancel_before_the_retry(
    stage: dict[str, Any], started: bool, cause: str
) -> None:
    events: list[tuple[float, CloudEvent]] = [(0, _go())]
    if started:
        events.append((0, StageStarted(id="s", source="w", data=_ref())))
    timeline = _timeline(_pipeline(stage), events)
    assert _kinds(timeline)[:3] == [(0, "trigger", 1), (10, "cancel", 1), (11, "trigger", 2)]
    assert timeline[1][1].data.cause == cause


@pytest.mark.parametrize(
    "late",
    [
        StageStarted(id="l", source="w", data=_ref()),
        StageHeartbeat(id="l", source="w", data=_ref()),
        StageSucceeded(id="l", source="w", data=_ref()),
        StageFailed(id="l", source="w", data={**_ref(), "error": "boom"}),
    ],
)
@pytest.mark.parametrize(
    ("when", "status"), [(10, "retry_wait"), (10.5, "ready"), (40, "timed_out")]
)
def test_a_late_report_of_a_timed_out_attempt_is_ignored(
    late: CloudEvent, when: float, status: str
) -> None:
    spec = {"start_timeout_seconds": 10, "retries": {"max_attempts": 1}, "pool": "one"}
    if status != "timed_out":
        spec["retries"] = {"max_attempts": 2, "backoff": {"initial_seconds": 0.5, "jitter": 0}}
    catalog = Catalog.build([_pipeline(spec)], [Pool(name="one", slots=1)])
    # run x takes the pool slot when p/k's first attempt times out: its retry then waits (ready)
    other = ExternalEvent(id="go-x", source="src", type="go", data={"key": "x"})
    result = replay(
        catalog,
        [(T0 + timedelta(seconds=s), e) for s, e in [(0.0, _go()), (0.0, other), (when, late)]],
    )
    at = next(i for i, r in enumerate(result.records) if r.event is late)
    record = result.records[at]
    assert record.step.rejection is None
    before = [
        e.data
        for r in result.records[:at]
        for e in _published(r.step)
        if isinstance(e, RunRecord) and e.data.run_id == "p/k"
    ][-1]
    assert (before.stages["a"], before.attempts["a"]) == (status, 1)
    [note] = [e for e in _published(record.step) if isinstance(e, DecisionRecord)]
    assert note.data.action == "ignored"
    assert note.data.reason.startswith("attempt_timed_out: ")


def test_cancelling_a_run_cancels_its_live_attempts_only() -> None:
    pipeline = Pipeline.model_validate(
        {
            "name": "p",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": [
                {"name": "a"},
                {"name": "b"},
                {"name": "c", "needs": ["a"]},
                {"name": "d", "executor": {"topic": "other"}},
            ],
        }
    )
    catalog = Catalog.build([pipeline])
    state = CoordinatorState.empty()
    decide_at(catalog, state, _go(), 0)
    decide_at(catalog, state, StageStarted(id="s", source="w", data=_ref("b")), 1)
    step = decide_at(
        catalog, state, RunCancel(id="c", source="cli", data={"run_id": "p/k", "reason": "stop"}), 2
    )
    cancels = [
        (c.topic, c.key, c.event.data.stage, c.event.data.cause, c.event.data.reason)
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageCancel)
    ]
    assert cancels == [
        (TOPIC, "p/k", "a", "run_cancelled", "stop"),
        (TOPIC, "p/k", "b", "run_cancelled", "stop"),
        ("other", "p/k", "d", "run_cancelled", "stop"),
    ]
    again = decide_at(catalog, state, RunCancel(id="c2", source="cli", data={"run_id": "p/k"}), 3)
    assert not [e for e in _published(again) if isinstance(e, StageCancel)]


REPORTS = st.sampled_from(["started", "heartbeat", "succeeded", "failed"])


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 60), REPORTS, st.integers(1, 3)), max_size=12),
    st.sampled_from([None, 7.0]),
    st.sampled_from([None, 5.0]),
)
def test_an_attempt_is_over_before_the_next_one_is_triggered(
    reports: list[tuple[float, str, int]], execution: float | None, heartbeat: float | None
) -> None:
    """Whatever executors report and whenever: a stage's next attempt is triggered only after
    the coordinator saw its previous attempt end on its own or sent that attempt a cancel; at
    most one cancel per attempt; and no report after a cancel changes the stage."""
    stage: dict[str, Any] = {
        "start_timeout_seconds": 3,
        "timeout_seconds": execution,
        "heartbeat_timeout_seconds": heartbeat,
        "retries": {"max_attempts": 3, "backoff": {"initial_seconds": 1, "jitter": 0}},
    }
    kinds = {
        "started": StageStarted,
        "heartbeat": StageHeartbeat,
        "succeeded": StageSucceeded,
        "failed": StageFailed,
    }
    events: list[tuple[float, CloudEvent]] = [(0, _go())]
    for i, (at, kind, attempt) in enumerate(sorted(reports, key=lambda r: r[0])):
        events.append((at, kinds[kind](id=f"r{i}", source="w", data=_ref("a", attempt))))
    catalog = Catalog.build([_pipeline({k: v for k, v in stage.items() if v is not None})])
    result = replay(catalog, [(T0 + timedelta(seconds=s), e) for s, e in events])
    over: set[int] = set()
    cancelled: set[int] = set()
    for record in result.records:
        event = record.event
        data = event.data
        for command in record.step.commands:
            published = command.event if isinstance(command, Publish) else None
            if isinstance(published, StageCancel) and published.data.stage == "a":
                assert published.data.attempt not in cancelled
                cancelled.add(published.data.attempt)
                over.add(published.data.attempt)
            if isinstance(published, StageTrigger) and published.data.stage == "a":
                assert set(range(1, published.data.attempt)) <= over
        if (
            isinstance(event, StageSucceeded | StageFailed)
            and data.stage == "a"
            and record.step.rejection is None
        ):
            over.add(data.attempt)
        if (
            isinstance(event, StageSucceeded | StageFailed | StageStarted | StageHeartbeat)
            and data.attempt in cancelled
        ):
            assert all(p.data.action == "ignored" for p in _published(record.step))
