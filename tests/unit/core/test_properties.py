"""Invariants over random DAGs, trigger rules, conditions and executor interleavings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamcoord.core import Catalog, CoordinatorState, Publish, SetTimer, Step, decide
from streamcoord.core._readiness import need_outcome, verdict
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    StageFailed,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline

RULES = ["all_success", "all_done", "all_failed", "one_success", "one_failed", "none_failed"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    n = draw(st.integers(1, 7))
    stages: list[dict[str, Any]] = []
    for i in range(n):
        needs = sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
        stage: dict[str, Any] = {
            "name": f"s{i}",
            "needs": [f"s{j}" for j in needs],
            "trigger_rule": draw(st.sampled_from(RULES)),
            "retries": {"max_attempts": draw(st.integers(1, 2))},
        }
        if draw(st.booleans()):
            stage["condition"] = draw(st.sampled_from(["true", "false", "run_key == 'k0'"]))
        stages.append(stage)
    return Pipeline.model_validate(
        {
            "name": "p",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": stages,
        }
    )


class Harness:
    """Feeds events, answers triggers like an executor, and checks invariants on every step."""

    def __init__(self, pipeline: Pipeline, partitions: int = 1) -> None:
        self.catalog = Catalog.build([pipeline], [])
        self.cp = self.catalog.pipelines["p"]
        self.state = CoordinatorState.empty()
        self.now = T0
        self.triggered: set[tuple[str, str, int]] = set()
        self.log: list[tuple[datetime, CloudEvent]] = []
        self.outputs: list[Step] = []
        self.timers: list[SetTimer] = []

    def feed(self, event: CloudEvent, at: datetime | None = None) -> Step:
        self.now = self.now + timedelta(seconds=1) if at is None else at
        self.log.append((self.now, event))
        step = decide(self.catalog, self.state, event, self.now)
        self.outputs.append(step)
        for cmd in step.commands:
            if isinstance(cmd, SetTimer):
                self.timers.append(cmd)
            if isinstance(cmd, Publish) and isinstance(cmd.event, StageTrigger):
                self._check_trigger(cmd.event)
        return step

    def _check_trigger(self, trigger: StageTrigger) -> None:
        d = trigger.data
        ident = (d.run_id, d.stage, d.attempt)
        assert ident not in self.triggered, f"second trigger for {ident}"
        self.triggered.add(ident)
        run = self.state.run(d.run_id)
        assert run is not None
        cs = self.cp.stages[d.stage]
        outcomes = [need_outcome(run, n, None) for n in cs.needs]
        assert verdict(cs, outcomes) == "ready", f"{d.stage} triggered before its rule held"


def _answers(trigger: StageTrigger, fail: bool, n: int) -> list[CloudEvent]:
    ref = {
        "run_id": trigger.data.run_id,
        "stage": trigger.data.stage,
        "attempt": trigger.data.attempt,
    }
    end: CloudEvent = (
        StageFailed(id=f"f{n}", source="x", data=ref)
        if fail
        else StageSucceeded(id=f"s{n}", source="x", data=ref)
    )
    return [StageStarted(id=f"b{n}", source="x", data=ref), end]


def _drive(h: Harness, data: st.DataObject, runs: int) -> None:
    queue: list[CloudEvent] = [
        ExternalEvent(id=f"e{i}", source="src", type="go", data={"key": f"k{i}"})
        for i in range(runs)
    ]
    n = 0
    for _ in range(2000):
        if not queue and h.timers:
            # time passes to the timer's due time (the retention sweep re-arms until it is due)
            timer = h.timers.pop(0)
            h.now = max(h.now, timer.due - timedelta(seconds=1))
            queue.append(timer.event)
        if not queue:
            return
        index = data.draw(st.integers(0, len(queue) - 1), label="pick")
        event = queue.pop(index)
        if data.draw(st.booleans(), label="duplicate"):
            queue.append(event)
        for cmd in h.feed(event).commands:
            if isinstance(cmd, Publish) and isinstance(cmd.event, StageTrigger):
                n += 1
                queue.extend(_answers(cmd.event, data.draw(st.booleans(), label="fail"), n))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines(), st.data())
def test_runs_end_and_triggers_respect_rules_under_disorder(
    pipeline: Pipeline, data: st.DataObject
) -> None:
    h = Harness(pipeline)
    _drive(h, data, runs=2)
    for run in h.state.runs():
        assert run.status in {"succeeded", "failed"}, (run.run_id, run.dump())


@settings(max_examples=30, deadline=None)
@given(pipelines(), st.data())
def test_replay_and_restore_give_identical_decisions(
    pipeline: Pipeline, data: st.DataObject
) -> None:
    h = Harness(pipeline)
    _drive(h, data, runs=2)
    cut = data.draw(st.integers(0, len(h.log)), label="cut")
    again = Harness(pipeline)
    for at, event in h.log[:cut]:
        again.feed(event, at)
    restored = Harness(pipeline)
    restored.state = CoordinatorState.load(0, 1, again.state.dump())
    restored.triggered = set(again.triggered)
    restored.now = again.now
    for at, event in h.log[cut:]:
        a, b = again.feed(event, at), restored.feed(event, at)
        assert a.commands == b.commands
        assert a.rejection == b.rejection
    assert again.state.dump() == h.state.dump() == restored.state.dump()


def test_the_same_event_twice_changes_nothing() -> None:
    pipeline = Pipeline.model_validate(
        {
            "name": "p",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": [{"name": "a"}],
        }
    )
    h = Harness(pipeline)
    go = ExternalEvent(id="e", source="src", type="go", data={"key": "k"})
    first = h.feed(go)
    second = h.feed(go)
    assert first.changed_keys
    assert second.commands == ()
    assert second.changed_keys == ()
