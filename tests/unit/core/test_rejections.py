"""Bad input never stops the coordinator: each case is a typed rejection with a useful reason.

The runtime dead-letters a rejected event with its code and reason, so both are what an
operator reads; every case checks the code and the words that point at the problem.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streamcoord.core import Catalog, CoordinatorState, Publish, Step, decide
from streamcoord.core.replay import replay
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    RunRequested,
    ScheduleTick,
    StageFailed,
    StageHeartbeat,
    StageRetry,
    StageStarted,
    StageSucceeded,
    StageTrigger,
    TimerFired,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {
                "name": "p",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
                "stages": [
                    {"name": "a", "retries": {"max_attempts": 2}},
                    {"name": "b", "needs": ["a"]},
                ],
            }
        ),
        Pipeline.model_validate(
            {
                "name": "auto",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "auto.go"}],
                "stages": [{"name": "only"}],
            }
        ),
        Pipeline.model_validate(
            {
                "name": "daily",
                "run_key": "event.data.day",
                "triggers": [
                    {"kind": "data", "datasets": ["orders"], "event_time": "event.data.at"}
                ],
                "stages": [{"name": "only"}],
            }
        ),
    ],
    [Pool(name="db", slots=1)],
)


def _go(key: str = "k") -> ExternalEvent:
    return ExternalEvent(id=f"go-{key}", source="app", type="go", data={"key": key})


def _ref(stage: str = "a", attempt: int = 1, run: str = "p/k") -> dict[str, Any]:
    return {"run_id": run, "stage": stage, "attempt": attempt}


def _failed_once() -> list[CloudEvent]:
    """Run p/k with stage a failed once, now waiting for its retry timer."""
    return [
        _go(),
        StageStarted(id="s1", source="x", data=_ref()),
        StageFailed(id="f1", source="x", data=_ref()),
    ]


def _last(events: list[CloudEvent]) -> Step:
    log = [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    return replay(CATALOG, log, fire_timers=False).records[-1].step


def _internal(type_: str, data: dict[str, Any], **extra: Any) -> CloudEvent:
    return CloudEvent(
        id=f"i-{type_}",
        source="streamcoord/coordinator",
        type=type_,
        data=data,
        sckey="p/k",
        **extra,
    )


CASES: list[tuple[str, list[CloudEvent], str, str]] = [
    (
        "report for a run that does not exist",
        [StageStarted(id="s", source="x", data=_ref(run="p/nope"))],
        "unknown_run",
        "no run 'p/nope'",
    ),
    (
        "report for a stage the run does not have",
        [_go(), StageStarted(id="s", source="x", data=_ref("zz"))],
        "unknown_stage",
        "has no stage 'zz'",
    ),
    (
        "report for an attempt never triggered",
        [_go(), StageSucceeded(id="s", source="x", data=_ref(attempt=3))],
        "unknown_attempt",
        "attempt 3 was never triggered (current attempt 1)",
    ),
    (
        "started while waiting for a retry",
        [*_failed_once(), StageStarted(id="s2", source="x", data=_ref())],
        "illegal_transition",
        "started while retry_wait",
    ),
    (
        "heartbeat while waiting for a retry",
        [*_failed_once(), StageHeartbeat(id="h", source="x", data=_ref())],
        "illegal_transition",
        "heartbeat while retry_wait",
    ),
    (
        "succeeded while waiting for a retry",
        [*_failed_once(), StageSucceeded(id="s2", source="x", data=_ref())],
        "illegal_transition",
        "succeeded while retry_wait",
    ),
    (
        "failed while waiting for a retry",
        [*_failed_once(), StageFailed(id="f2", source="x", data=_ref())],
        "illegal_transition",
        "failed while retry_wait",
    ),
    (
        "manual retry of a stage that did not fail",
        [_go(), StageRetry(id="r", source="cli", data={"run_id": "p/k", "stage": "a"})],
        "illegal_transition",
        "retry needs a failed stage, it is triggered",
    ),
    (
        "run requested for a pipeline that is not loaded",
        [RunRequested(id="r", source="cli", data={"pipeline": "nope", "run_key": "k"})],
        "unknown_pipeline",
        "no pipeline named 'nope'",
    ),
    (
        "run requested for a pipeline without a manual trigger",
        [RunRequested(id="r", source="cli", data={"pipeline": "auto", "run_key": "k"})],
        "manual_not_allowed",
        "add `- kind: manual`",
    ),
    (
        "schedule tick for a pipeline without a schedule",
        [
            ScheduleTick(
                id="t",
                source="cron",
                data={"pipeline": "p", "scheduled_time": "2026-01-01T00:00:00Z"},
            )
        ],
        "not_scheduled",
        "pipeline 'p' has no schedule trigger",
    ),
    (
        "timer that names no run",
        [
            TimerFired(
                id="t",
                source="timer",
                data={"timer_id": "x", "purpose": "wakeup", "due": "2026-01-01T00:00:00Z"},
            )
        ],
        "unknown_timer",
        "timer 'x' names no run",
    ),
    (
        "trigger event without the field the run key reads",
        [ExternalEvent(id="g", source="app", type="go", data={"other": 1})],
        "run_key_error",
        "pipeline p: run key could not be computed",
    ),
    (
        "data arrival whose event time is not a timestamp",
        [
            ExternalEvent(
                id="d",
                source="lake",
                type="dataset.landed",
                data={"dataset": "orders", "partition": "1", "day": "d", "at": "yesterday"},
            )
        ],
        "arrival_error",
        "event time 'yesterday' is not RFC 3339",
    ),
    (
        "data arrival whose event time has no UTC offset (found by fuzzing)",
        [
            ExternalEvent(
                id="d1",
                source="lake",
                type="dataset.landed",
                data={
                    "dataset": "orders",
                    "partition": "1",
                    "day": "d",
                    "at": "2024-05-01T01:00:00Z",
                },
            ),
            ExternalEvent(
                id="d2",
                source="lake",
                type="dataset.landed",
                data={
                    "dataset": "orders",
                    "partition": "2",
                    "day": "d",
                    "at": "2024-05-01T01:00:00",
                },
            ),
        ],
        "arrival_error",
        "has no UTC offset",
    ),
    (
        "pool request for a pool that is not loaded",
        [
            _internal(
                "streamcoord.pool.acquire",
                {
                    "pool": "nope",
                    "run_id": "p/k",
                    "stage": "a",
                    "attempt": 1,
                    "priority": 0,
                    "reply": "p/k",
                },
            )
        ],
        "unknown_pool",
        "no pool named 'nope'",
    ),
    # issue 13: each of these once stopped a partition for good (the core raised)
    (
        "match whose pipeline is a list",
        [
            _internal(
                "streamcoord.run.match",
                {
                    "pipeline": ["p"],
                    "run_key": "k",
                    "trigger": {},
                    "caused": [],
                    "params": {},
                    "rerun": False,
                    "dedup": "d",
                },
            )
        ],
        "invalid_data",
        "pipeline (str)",
    ),
    (
        "match whose causes are not event ids",
        [
            _internal(
                "streamcoord.run.match",
                {
                    "pipeline": "p",
                    "run_key": "k",
                    "trigger": {},
                    "caused": [1],
                    "params": {},
                    "rerun": False,
                    "dedup": "d",
                },
            )
        ],
        "invalid_data",
        "caused must list event ids",
    ),
    (
        "pool grant in a catalog without that pool",
        [
            _go(),
            _internal(
                "streamcoord.pool.grant",
                {"pool": "gpu", "run_id": "p/k", "stage": "a", "attempt": 1},
            ),
        ],
        "unknown_pool",
        "no pool named 'gpu'",
    ),
    (
        "pool grant with a boolean attempt",
        [
            _internal(
                "streamcoord.pool.grant",
                {"pool": "db", "run_id": "p/k", "stage": "a", "attempt": True},
            )
        ],
        "invalid_data",
        "attempt (int)",
    ),
    (
        "arrival naming a trigger that is not a data trigger",
        [
            _internal(
                "streamcoord.data.arrival",
                {
                    "pipeline": "p",
                    "trigger": 1,
                    "run_key": "k",
                    "dataset": "orders",
                    "partition": "1",
                    "event": {"id": "e"},
                    "dedup": "d",
                },
            )
        ],
        "unknown_trigger",
        "pipeline 'p' has no data trigger 1",
    ),
    (
        "arrival naming a trigger out of range",
        [
            _internal(
                "streamcoord.data.arrival",
                {
                    "pipeline": "daily",
                    "trigger": 7,
                    "run_key": "k",
                    "dataset": "orders",
                    "partition": "1",
                    "event": {"id": "e"},
                    "dedup": "d",
                },
            )
        ],
        "unknown_trigger",
        "pipeline 'daily' has no data trigger 7",
    ),
    (
        "arrival whose event has no id",
        [
            _internal(
                "streamcoord.data.arrival",
                {
                    "pipeline": "daily",
                    "trigger": 0,
                    "run_key": "k",
                    "dataset": "orders",
                    "partition": "1",
                    "event": {},
                    "dedup": "d",
                },
            )
        ],
        "invalid_data",
        "the event has no id",
    ),
    (
        "arrival for a pipeline that is not loaded",
        [
            _internal(
                "streamcoord.data.arrival",
                {
                    "pipeline": "gone",
                    "trigger": 0,
                    "run_key": "k",
                    "dataset": "orders",
                    "partition": "1",
                    "event": {"id": "e"},
                    "dedup": "d",
                },
            )
        ],
        "unknown_pipeline",
        "no pipeline named 'gone'",
    ),
    (
        "stage outcome without its routing attributes",
        [
            _internal(
                "streamcoord.stage.outcome",
                {
                    "run_id": "q/k",
                    "pipeline": "q",
                    "run_key": "k",
                    "stage": "s",
                    "outcome": "succeeded",
                },
            )
        ],
        "invalid_data",
        "without sctarget/scneed",
    ),
    (
        "routed match for a pipeline that is not loaded",
        [
            _internal(
                "streamcoord.run.match",
                {
                    "pipeline": "nope",
                    "run_key": "k",
                    "trigger": {},
                    "caused": [],
                    "params": {},
                    "rerun": False,
                    "dedup": "d",
                },
            )
        ],
        "unknown_pipeline",
        "no pipeline named 'nope'",
    ),
    (
        "routed arrival for a pipeline that is not loaded",
        [
            _internal(
                "streamcoord.data.arrival",
                {
                    "pipeline": "nope",
                    "trigger": 0,
                    "run_key": "k",
                    "dataset": "d",
                    "partition": "1",
                    "event": {},
                    "dedup": "d",
                },
            )
        ],
        "unknown_pipeline",
        "no pipeline named 'nope'",
    ),
    (
        "run-limit request for a pipeline that is not loaded",
        [_internal("streamcoord.limit.acquire", {"pipeline": "nope", "run_id": "nope/k"})],
        "unknown_pipeline",
        "no pipeline named 'nope'",
    ),
]


@pytest.mark.parametrize(
    ("events", "code", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_typed_rejection(events: list[CloudEvent], code: str, reason: str) -> None:
    step = _last(events)
    assert step.rejection is not None
    assert step.rejection.code == code
    assert reason in step.rejection.reason
    assert not any(
        isinstance(c, Publish) and isinstance(c.event, StageTrigger) for c in step.commands
    )


OWN_TYPES = [
    "streamcoord.stage.started",
    "streamcoord.stage.heartbeat",
    "streamcoord.stage.succeeded",
    "streamcoord.stage.failed",
    "streamcoord.stage.progress",
    "streamcoord.timer.fired",
    "streamcoord.run.cancel",
    "streamcoord.stage.retry",
    "streamcoord.run.requested",
    "streamcoord.schedule.tick",
    "streamcoord.run.finished",
    "streamcoord.pipeline.pause",
    "streamcoord.pipeline.resume",
]
INTERNAL_TYPES = [
    "streamcoord.run.match",
    "streamcoord.data.arrival",
    "streamcoord.pool.acquire",
    "streamcoord.pool.release",
    "streamcoord.pool.grant",
    "streamcoord.need.subscribe",
    "streamcoord.limit.acquire",
    "streamcoord.limit.grant",
    "streamcoord.limit.deny",
    "streamcoord.limit.release",
]


@pytest.mark.parametrize("type_", OWN_TYPES + INTERNAL_TYPES)
def test_an_own_event_with_malformed_data_is_rejected_as_invalid(type_: str) -> None:
    # The codec types own events it decodes; a CloudEvent built elsewhere may carry a raw dict.
    event = CloudEvent(id="bad", source="x", type=type_, data={"unexpected": True})
    step = decide(CATALOG, CoordinatorState.empty(), event, T0)
    assert step.rejection is not None
    assert step.rejection.code == "invalid_data"
    assert type_ in step.rejection.reason
    assert step.commands == ()


def test_an_own_event_given_as_a_plain_dict_is_accepted() -> None:
    state = CoordinatorState.empty()
    decide(CATALOG, state, _go(), T0)
    raw = CloudEvent(id="s", source="x", type="streamcoord.stage.succeeded", data=_ref())
    step = decide(CATALOG, state, raw, T0)
    assert step.rejection is None
    run = state.run("p/k")
    assert run is not None
    assert run.stages["a"].status == "succeeded"


def test_a_report_for_a_superseded_attempt_is_ignored_not_rejected() -> None:
    events = [*_failed_once()]
    log = [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    log.append((T0 + timedelta(hours=1), StageHeartbeat(id="late", source="x", data=_ref())))
    result = replay(CATALOG, log)  # the retry timer fires first: attempt 2 is current
    step = result.records[-1].step
    assert step.rejection is None
    notes = [c.event.data.reason for c in step.commands if isinstance(c, Publish)]
    assert notes == ["heartbeat for superseded attempt 1"]


def test_an_event_for_a_run_of_an_unloaded_pipeline_ends_it_and_later_ones_are_rejected() -> None:
    state = CoordinatorState.empty()
    decide(
        CATALOG, state, ExternalEvent(id="a", source="app", type="auto.go", data={"key": "k"}), T0
    )
    without = Catalog.build(
        [
            Pipeline.model_validate(
                {
                    "name": "p",
                    "run_key": "event.data.key",
                    "triggers": [{"kind": "event", "type": "go"}],
                    "stages": [{"name": "a"}],
                }
            )
        ]
    )
    step = decide(
        without, state, StageSucceeded(id="s", source="x", data=_ref("only", run="auto/k")), T0
    )
    assert step.rejection is None
    run = state.run("auto/k")
    assert run is not None
    assert run.status == "cancelled"
    assert run.stages["only"].reason == "spec_removed"
    step = decide(
        without, state, StageSucceeded(id="s2", source="x", data=_ref("only", run="auto/k")), T0
    )
    assert step.rejection is not None
    assert step.rejection.code == "unknown_pipeline"
    assert "belongs to 'auto', which spec version" in step.rejection.reason


def test_a_pool_grant_for_a_stage_without_that_pool_gives_the_slot_back_to_its_pool() -> None:
    state = CoordinatorState.empty()
    decide(CATALOG, state, _go(), T0)  # stage a takes no pool
    grant = _internal(
        "streamcoord.pool.grant", {"pool": "db", "run_id": "p/k", "stage": "a", "attempt": 1}
    )
    step = decide(CATALOG, state, grant, T0)
    assert step.rejection is None
    released = [
        c.event.data
        for c in step.commands
        if isinstance(c, Publish) and c.event.type == "streamcoord.pool.release"
    ]
    assert released == [{"pool": "db", "run_id": "p/k", "stage": "a", "attempt": 1}]


@pytest.mark.parametrize(
    ("data", "seen"),
    [
        (b"\xff\xfe not text", {"data_base64": "//4gbm90IHRleHQ="}),
        (b"plain text", {"data": "plain text"}),
    ],
)
def test_binary_data_is_seen_as_text_or_base64_never_a_crash(
    data: bytes,
    seen: dict[str, str],
) -> None:
    pipeline = Pipeline.model_validate(
        {
            "name": "bin",
            "run_key": "'k'",
            "triggers": [{"kind": "event", "type": "blob"}],
            "stages": [{"name": "s"}],
        }
    )
    event = ExternalEvent(id="b", source="x", type="blob", datacontenttype="text/plain", data=data)
    state = CoordinatorState.empty()
    step = decide(Catalog.build([pipeline]), state, event, T0)
    assert step.rejection is None
    run = state.run("bin/k")
    assert run is not None
    assert {k: v for k, v in run.trigger.items() if k in {"data", "data_base64"}} == seen
