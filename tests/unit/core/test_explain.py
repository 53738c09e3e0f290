"""``explain``: why a stage is, or is not yet, ready (what ``streamcoord explain`` prints)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streamcoord.core import Catalog, CoordinatorState, Explanation, NeedStatus, explain
from streamcoord.core.replay import replay
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    PipelinePause,
    StageSucceeded,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {
                "name": "p",
                "run_key": "event.data.key",
                "concurrency": {"max_active_runs": 1, "over_limit": "queue"},
                "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
                "stages": [
                    {"name": "a"},
                    {"name": "pooled", "needs": ["a"], "pool": "db"},
                    {"name": "never", "needs": ["a"], "condition": "run_key == 'other'"},
                    {"name": "cross", "needs": ["up.x"]},
                ],
            }
        ),
        Pipeline.model_validate(
            {
                "name": "up",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "up.go"}],
                "stages": [{"name": "x"}],
            }
        ),
    ],
    [Pool(name="db", slots=1)],
)


def _go(key: str, type_: str = "go") -> ExternalEvent:
    return ExternalEvent(id=f"{type_}-{key}", source="app", type=type_, data={"key": key})


def _ok(run: str, stage: str) -> StageSucceeded:
    return StageSucceeded(
        id=f"ok-{run}-{stage}", source="x", data={"run_id": run, "stage": stage, "attempt": 1}
    )


def _state(events: list[CloudEvent]) -> CoordinatorState:
    log = [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    return replay(CATALOG, log, fire_timers=False).states[0]


def _why(state: CoordinatorState, run: str, stage: str) -> Explanation:
    found = explain(CATALOG, state, run, stage)
    assert found is not None
    return found


def _fields(why: Explanation) -> dict[str, Any]:
    return {"status": why.status, "holds": why.holds}


def test_a_queued_run_is_held_by_the_pipelines_limit() -> None:
    state = _state([_go("k"), _go("j")])
    assert _fields(_why(state, "p/j", "a")) == {
        "status": "pending",
        "holds": ("max_active_runs 1 of pipeline p",),
    }


def test_a_paused_pipeline_is_named_as_the_hold() -> None:
    state = _state([_go("k"), PipelinePause(id="pz", source="cli", data={"pipeline": "p"})])
    assert "pipeline p is paused" in _why(state, "p/k", "pooled").holds


def test_a_stage_waiting_for_its_needs_names_them_and_the_events_that_settled_the_others() -> None:
    state = _state([_go("k")])
    why = _why(state, "p/k", "pooled")
    assert why.needs == (NeedStatus("a", "triggered", False, None),)
    assert why.holds == ("trigger rule all_success: waiting for a",)
    cross = _why(state, "p/k", "cross")
    assert cross.needs == (NeedStatus("up.x", "unknown", False, None),)


def test_a_skipped_stage_shows_the_condition_that_was_false() -> None:
    state = _state([_go("k"), _ok("p/k", "a")])
    assert _fields(_why(state, "p/k", "never")) == {
        "status": "skipped",
        "holds": ("condition: run_key == 'other'",),
    }


def test_a_need_on_another_pipeline_shows_the_outcome_event_that_met_it() -> None:
    state = _state([_go("k"), _go("k", "up.go"), _ok("up/k", "x")])
    need = _why(state, "p/k", "cross").needs[0]
    assert (need.need, need.status, need.satisfied) == ("up.x", "succeeded", True)
    assert need.by_event == "outcome|up/k|x|succeeded|None|p/k"


def test_a_stage_waiting_for_a_pool_slot_says_so() -> None:
    pipeline = Pipeline.model_validate(
        {
            "name": "q",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": [{"name": "s", "pool": "db"}],
        }
    )
    catalog = Catalog.build([pipeline], [Pool(name="db", slots=1)])
    result = replay(catalog, [(T0, _go("k1")), (T0, _go("k2"))], fire_timers=False)
    why = explain(catalog, result.states[0], "q/k2", "s")
    assert why is not None
    assert (why.status, why.holds) == ("ready", ("waiting for a slot in pool db",))


def test_unknown_runs_stages_and_superseded_generations_have_no_explanation() -> None:
    state = _state([_go("k")])
    assert explain(CATALOG, state, "p/nope", "a") is None
    assert explain(CATALOG, state, "p/k", "nope") is None
    assert explain(CATALOG, state, "p/k#2", "a") is None
