"""Stage and run life cycles a pipeline owner would notice, beyond the golden logs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from streamcoord.core import Catalog, CoordinatorState, Publish, Step, decide
from streamcoord.core.replay import ReplayResult, replay
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    ExternalEvent,
    RunCancel,
    RunFinished,
    ScheduleTick,
    StageFailed,
    StageOutcome,
    StageProgress,
    StageRetry,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _pipeline(name: str = "p", **extra: Any) -> Pipeline:
    spec: dict[str, Any] = {
        "name": name,
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}],
        "stages": [{"name": "a"}],
    }
    spec.update(extra)
    return Pipeline.model_validate(spec)


def _replay(pipelines: list[Pipeline], events: Sequence[CloudEvent]) -> ReplayResult:
    catalog = Catalog.build(pipelines, [Pool(name="db", slots=1)])
    log = [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    return replay(catalog, log, fire_timers=False)


def _go(key: str = "k", type_: str = "go", **data: Any) -> ExternalEvent:
    return ExternalEvent(id=f"{type_}-{key}", source="app", type=type_, data={"key": key, **data})


def _ref(stage: str, attempt: int = 1, run: str = "p/k") -> dict[str, Any]:
    return {"run_id": run, "stage": stage, "attempt": attempt}


def _ok(stage: str, run: str = "p/k", attempt: int = 1, **outputs: Any) -> StageSucceeded:
    return StageSucceeded(
        id=f"ok-{run}-{stage}-{attempt}",
        source="x",
        data={**_ref(stage, attempt, run), "outputs": outputs},
    )


def _triggered(result: ReplayResult) -> list[tuple[str, str, int]]:
    return [
        (c.event.data.run_id, c.event.data.stage, c.event.data.attempt)
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


def _decisions(step: Step) -> list[tuple[str | None, str, str]]:
    return [
        (c.event.data.stage, c.event.data.action, c.event.data.reason)
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event.data, Decision)
    ]


def _stage(result: ReplayResult, stage: str, run: str = "p/k") -> tuple[str, str]:
    found = result.states[0].run(run)
    assert found is not None
    return found.stages[stage].status, found.stages[stage].reason


# --- streaming watermarks ------------------------------------------------------------------------


STREAM = _pipeline(
    stages=[
        {"name": "s", "executor": {"topic": "t", "kind": "streaming"}},
        {"name": "d", "needs": [{"stage": "s", "watermark": "'2026-01-01T10:00:00+00:00'"}]},
        {"name": "e", "needs": [{"stage": "s", "watermark": "upstream.nothing.here"}]},
    ]
)


def _progress(ident: str, mark: str) -> StageProgress:
    return StageProgress(id=ident, source="x", data={**_ref("s"), "watermark": mark})


def test_a_watermark_need_is_met_while_the_streaming_stage_keeps_running() -> None:
    early = _replay([STREAM], [_go(), _progress("p1", "2026-01-01T09:00:00Z")])
    assert _triggered(early) == [("p/k", "s", 1)]
    reached = _replay(
        [STREAM],
        [
            _go(),
            _progress("p1", "2026-01-01T09:00:00Z"),
            _progress("p2", "2026-01-01T10:00:00Z"),
            _progress("p3", "2026-01-01T09:30:00Z"),
        ],
    )
    assert _triggered(reached) == [("p/k", "s", 1), ("p/k", "d", 1)]
    assert _stage(reached, "s")[0] == "running"
    # a target that cannot be computed falls back to waiting for the stage to succeed
    assert _stage(reached, "e")[0] == "pending"
    done = _replay([STREAM], [_go(), _ok("s"), _progress("p4", "2026-01-01T11:00:00Z")])
    assert ("p/k", "e", 1) in _triggered(done)
    assert _decisions(done.records[-1].step) == [
        ("s", "ignored", "heartbeat after the stage succeeded")
    ]


# --- conditions and params that cannot be evaluated --------------------------------------------


def test_a_condition_that_cannot_be_evaluated_fails_the_stage_with_the_reason() -> None:
    pipeline = _pipeline(
        stages=[{"name": "a"}, {"name": "b", "needs": ["a"], "condition": "upstream.a.flag"}]
    )
    result = _replay([pipeline], [_go(), _ok("a")])
    status, reason = _stage(result, "b")
    assert status == "failed"
    assert reason.startswith("condition could not be evaluated: expression 'upstream.a.flag'")
    assert result.states[0].run("p/k").status == "failed"  # type: ignore[union-attr]  # exists


def test_params_that_cannot_be_rendered_fail_the_last_stage_and_the_run_once() -> None:
    pipeline = _pipeline(
        stages=[
            {"name": "a"},
            {"name": "b", "needs": ["a"], "params": {"rows": "${ upstream.a.rows }"}},
        ]
    )
    result = _replay([pipeline], [_go(), _ok("a")])
    status, reason = _stage(result, "b")
    assert (status, reason.split(":")[0]) == ("failed", "params could not be rendered")
    finished = [
        c
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, RunFinished)
    ]
    assert [c.event.data.outcome for c in finished] == ["failed"]


def test_params_render_typed_values_and_literal_dollar_braces() -> None:
    pipeline = _pipeline(
        stages=[
            {"name": "a"},
            {
                "name": "b",
                "needs": ["a"],
                "params": {
                    "rows": "${ upstream.a.rows }",
                    "n": 3,
                    "text": "day ${ run_key }, $${ kept }",
                },
            },
            {"name": "c", "params": {"raw": "$${ not an expression }"}},
        ]
    )
    result = _replay([pipeline], [_go(), _ok("a", rows=42)])
    params = {
        c.event.data.stage: c.event.data.params
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    }
    assert params["b"] == {"rows": 42, "n": 3, "text": "day k, ${ kept }"}
    assert params["c"] == {"raw": "${ not an expression }"}


# --- executor reports out of order -------------------------------------------------------------


def test_a_second_started_is_a_no_op_and_an_old_attempts_started_is_ignored() -> None:
    pipeline = _pipeline(stages=[{"name": "a", "retries": {"max_attempts": 2}}])
    started = StageStarted(id="s1", source="x", data=_ref("a"))
    again = StageStarted(id="s1-again", source="x", data=_ref("a"))
    result = _replay([pipeline], [_go(), started, again])
    assert result.records[-1].step.commands == ()
    assert result.records[-1].step.rejection is None
    failed = StageFailed(id="f", source="x", data=_ref("a"))
    retried = replay(
        Catalog.build([pipeline]),
        [(T0, _go()), (T0, started), (T0, failed), (T0 + timedelta(hours=1), again)],
    )
    assert _decisions(retried.records[-1].step) == [
        ("a", "ignored", "started for superseded attempt 1")
    ]


def test_a_pool_grant_for_a_stage_that_moved_on_gives_the_slot_back() -> None:
    pipeline = _pipeline(stages=[{"name": "a", "pool": "db"}])
    catalog = Catalog.build([pipeline], [Pool(name="db", slots=1)])
    state = CoordinatorState.empty()
    decide(catalog, state, _go(), T0)  # acquire routed (not fed back here)
    decide(catalog, state, RunCancel(id="c", source="cli", data={"run_id": "p/k"}), T0)
    grant = CloudEvent(
        id="g",
        source="streamcoord/coordinator",
        type="streamcoord.pool.grant",
        data={"pool": "db", "run_id": "p/k", "stage": "a", "attempt": 1},
    )
    step = decide(catalog, state, grant, T0)
    assert _decisions(step) == [("a", "ignored", "pool slot no longer needed")]
    release = [
        c.event
        for c in step.commands
        if isinstance(c, Publish) and c.event.type == "streamcoord.pool.release"
    ]
    assert [e.data["attempt"] for e in release] == [1]


# --- manual retry ------------------------------------------------------------------------------


def test_manual_retry_while_the_run_is_still_active_retries_only_that_stage() -> None:
    pipeline = _pipeline(
        stages=[
            {"name": "a"},
            {"name": "b"},
            {"name": "c", "needs": ["a"]},
            {"name": "d", "needs": ["a"], "trigger_rule": "all_done"},
        ]
    )
    fail = StageFailed(id="f", source="x", data={**_ref("a"), "retryable": False})
    retry = StageRetry(id="r", source="cli", data={"run_id": "p/k", "stage": "a"})
    result = _replay([pipeline], [_go(), fail, retry])
    assert _triggered(result) == [
        ("p/k", "a", 1),
        ("p/k", "b", 1),
        ("p/k", "d", 1),
        ("p/k", "a", 2),
    ]
    assert _stage(result, "c")[0] == "pending"  # reopened: waits for the new attempt
    assert _stage(result, "d")[0] == "triggered"  # already ran on all_done: left alone


def test_manual_retry_reactivates_a_failed_run_even_at_its_limit() -> None:
    pipeline = _pipeline(concurrency={"max_active_runs": 1, "over_limit": "queue"})
    fail = StageFailed(id="f", source="x", data={**_ref("a"), "retryable": False})
    retry = StageRetry(id="r", source="cli", data={"run_id": "p/k", "stage": "a"})
    result = _replay([pipeline], [_go(), fail, _go("j"), retry])
    assert _triggered(result) == [("p/k", "a", 1), ("p/j", "a", 1), ("p/k", "a", 2)]
    pipe = result.states[0].misc("pipe/p")
    assert pipe is not None
    assert pipe["active"] == ["p/j", "p/k"]


def test_cancel_keeps_finished_stages_and_ends_the_others() -> None:
    pipeline = _pipeline(stages=[{"name": "a"}, {"name": "b", "needs": ["a"]}])
    result = _replay(
        [pipeline], [_go(), _ok("a"), RunCancel(id="c", source="cli", data={"run_id": "p/k"})]
    )
    assert _stage(result, "a")[0] == "succeeded"
    assert _stage(result, "b") == ("cancelled", "cancelled on request")


# --- cross-pipeline needs ----------------------------------------------------------------------


UP = _pipeline("up", triggers=[{"kind": "event", "type": "up.go"}], stages=[{"name": "x"}])


def test_a_need_whose_run_key_cannot_be_computed_fails_the_stage_that_needs_it() -> None:
    down = _pipeline(
        stages=[{"name": "a", "needs": [{"stage": "up.x", "run_key": "params.upstream_key"}]}]
    )
    result = _replay([UP, down], [_go()])
    assert _decisions(result.records[0].step)[0][:2] == ("a", "need_failed")
    assert _stage(result, "a")[0] == "upstream_failed"


def test_a_need_is_answered_when_the_upstream_stage_ends_even_if_asked_twice() -> None:
    down = _pipeline(stages=[{"name": "a", "needs": ["up.x"]}])
    catalog = Catalog.build([UP, down])
    state = CoordinatorState.empty()
    decide(catalog, state, _go(type_="up.go"), T0)
    subscribe = CloudEvent(
        id="sub",
        source="streamcoord/coordinator",
        type="streamcoord.need.subscribe",
        data={
            "pipeline": "up",
            "run_key": "k",
            "stage": "x",
            "subscriber": "p/k",
            "reply": "p/k",
            "need": "up.x",
        },
    )
    assert decide(catalog, state, subscribe, T0).commands == ()  # x still running: no news
    decide(catalog, state, subscribe.model_copy(update={"id": "sub-again"}), T0)
    step = decide(catalog, state, _ok("x", run="up/k"), T0)
    answers = [
        c for c in step.commands if isinstance(c, Publish) and isinstance(c.event, StageOutcome)
    ]
    assert [(c.key, c.event.data.outcome) for c in answers] == [("p/k", "succeeded")]


def test_an_upstream_outcome_for_a_run_that_already_ended_changes_nothing() -> None:
    down = _pipeline(stages=[{"name": "a", "needs": ["up.x"]}])
    cancel = RunCancel(id="c", source="cli", data={"run_id": "p/k"})
    result = _replay([UP, down], [_go(), cancel, _go(type_="up.go"), _ok("x", run="up/k")])
    assert _triggered(result) == [("up/k", "x", 1)]
    assert _stage(result, "a")[0] == "cancelled"


def test_an_outcome_for_an_unknown_subscriber_is_rejected() -> None:
    outcome = StageOutcome(
        id="o",
        source="streamcoord/coordinator",
        data={
            "run_id": "up/k",
            "pipeline": "up",
            "run_key": "k",
            "stage": "x",
            "outcome": "succeeded",
        },
        sctarget="p/gone",
        scneed="up.x",
    )
    step = decide(Catalog.build([UP]), CoordinatorState.empty(), outcome, T0)
    assert step.rejection is not None
    assert step.rejection.code == "unknown_run"


def test_a_pipeline_trigger_fires_only_on_the_outcomes_it_names() -> None:
    down = _pipeline(
        run_key="event.data.run_key",
        triggers=[{"kind": "pipeline", "pipeline": "up", "outcomes": ["succeeded"]}],
    )
    fail = StageFailed(id="f", source="x", data={**_ref("x", run="up/k"), "retryable": False})
    assert _triggered(_replay([UP, down], [_go(type_="up.go"), fail])) == [("up/k", "x", 1)]
    ok = _triggered(_replay([UP, down], [_go(type_="up.go"), _ok("x", run="up/k")]))
    assert ok == [("up/k", "x", 1), ("p/k", "a", 1)]
    keyless = _pipeline(run_key="event.data.missing", triggers=down.triggers)
    result = _replay([UP, keyless], [_go(type_="up.go"), _ok("x", run="up/k")])
    rejections = [r.step.rejection.code for r in result.records if r.step.rejection]
    assert rejections == ["run_key_error"]


# --- matching ----------------------------------------------------------------------------------


def test_source_and_subject_patterns_and_filters_select_events() -> None:
    pipeline = _pipeline(
        triggers=[
            {
                "kind": "event",
                "type": "go",
                "source": "app",
                "subject": "orders/*",
                "filter": "event.data.n > 3",
            }
        ]
    )

    def go(ident: str, source: str, subject: str | None, **data: Any) -> ExternalEvent:
        return ExternalEvent(
            id=ident, source=source, type="go", subject=subject, data={"key": ident, **data}
        )

    events: list[CloudEvent] = [
        go("no-subject", "app", None, n=5),
        go("other-source", "app2", "orders/1", n=5),
        go("small", "app", "orders/1", n=1),
        go("no-n", "app", "orders/1"),
        go("yes", "app", "orders/1", n=5),
        ExternalEvent(id="u", source="app", type="unknown"),
    ]
    result = _replay([pipeline], events)
    assert _triggered(result) == [("p/yes", "a", 1)]
    assert all(r.step.rejection is None for r in result.records)


def test_a_data_trigger_without_event_time_never_calls_an_arrival_late() -> None:
    pipeline = _pipeline(
        run_key="event.data.day", triggers=[{"kind": "data", "datasets": ["orders"]}]
    )
    landed = [
        ExternalEvent(
            id=f"l{i}",
            source="lake",
            type="dataset.landed",
            data={"dataset": "orders", "partition": str(i), "day": day},
        )
        for i, day in enumerate(["d2", "d1"])
    ]
    assert _triggered(_replay([pipeline], landed)) == [("p/d2", "a", 1), ("p/d1", "a", 1)]


def test_a_schedule_tick_whose_run_key_cannot_be_computed_is_rejected() -> None:
    pipeline = _pipeline(triggers=[{"kind": "schedule", "cron": "* * * * *"}])
    tick = ScheduleTick(
        id="t", source="cron", data={"pipeline": "p", "scheduled_time": "2026-01-01T00:00:00Z"}
    )
    step = decide(Catalog.build([pipeline]), CoordinatorState.empty(), tick, T0)
    assert step.rejection is not None
    assert step.rejection.code == "run_key_error"
