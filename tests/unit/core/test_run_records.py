"""Run records built per batch with :func:`run_record` agree with those built per step.

``decide`` lists the runs a step changed; the runtime builds the record of each run's last change
after the batch, the replay after each step (:func:`publish_run_records`). These tests pin that a
batch yields the last per-step record of each run, byte for byte, except that the record shows
the run as the batch leaves it (``caused_by`` grows when a match folds into the run later).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamcoord.core import (
    Catalog,
    CoordinatorState,
    Publish,
    RunChange,
    SetTimer,
    Step,
    decide,
    publish_run_records,
    run_record,
)
from streamcoord.core._step import RUNS_TOPIC
from streamcoord.events.codec import encode
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    RunRecord,
    StageFailed,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    n = draw(st.integers(1, 5))
    stages: list[dict[str, Any]] = []
    for i in range(n):
        needs = sorted(draw(st.sets(st.integers(0, i - 1), max_size=2))) if i else []
        stages.append(
            {
                "name": f"s{i}",
                "needs": [f"s{j}" for j in needs],
                "retries": {
                    "max_attempts": draw(st.integers(1, 3)),
                    "backoff": {"initial_seconds": 1},
                },
            }
        )
    limit = draw(st.sampled_from([None, 1]))
    return Pipeline.model_validate(
        {
            "name": "p",
            "run_key": "event.data.key",
            "concurrency": {"max_active_runs": limit},
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": stages,
        }
    )


class TwoPaths:
    """The same events decided on two states: records per step (a batch of one event, as the
    replay shows them) and one record per run per batch (as the runtime builds them)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.catalog = Catalog.build([pipeline], [])
        self.per_step = CoordinatorState.empty()
        self.coalesced = CoordinatorState.empty()
        self.now = T0
        self.timers: list[SetTimer] = []
        # per batch: run id -> the last per-step record / the last change
        self.records: dict[str, RunRecord] = {}
        self.changes: dict[str, RunChange] = {}

    def feed(self, event: CloudEvent) -> Step:
        self.now += timedelta(seconds=1)
        full = publish_run_records(decide(self.catalog, self.per_step, event, self.now))
        lean = decide(self.catalog, self.coalesced, event, self.now)
        assert full.changed_runs == ()
        assert [c for c in full.commands if not _is_run_record(c)] == list(lean.commands)
        assert not any(_is_run_record(c) for c in lean.commands)
        published = [c.event for c in full.commands if _is_run_record(c)]
        # built right after the step, the records are the per-step ones
        assert [_bytes(r) for r in published] == [_bytes(run_record(c)) for c in lean.changed_runs]
        for record in published:
            assert isinstance(record, RunRecord)
            self.records[record.subject or ""] = record
        for change in lean.changed_runs:
            self.changes[change.run.run_id] = change
        self.timers.extend(c for c in full.commands if isinstance(c, SetTimer))
        return full

    def end_batch(self) -> tuple[int, int]:
        """Compare the batch's records as the runtime builds them; (records, byte-identical)."""
        assert list(self.records) == list(self.changes)
        identical = 0
        for run_id, expected in self.records.items():
            built = run_record(self.changes[run_id])
            run = self.changes[run_id].run
            want, got = orjson.loads(_bytes(expected)[0]), orjson.loads(_bytes(built)[0])
            assert got["data"]["caused_by"] == run.caused_by
            assert run.caused_by[: len(want["data"]["caused_by"])] == want["data"]["caused_by"]
            want["data"]["caused_by"] = got["data"]["caused_by"]
            assert got == want
            if run.caused_by == expected.data.caused_by:
                assert _bytes(built) == _bytes(expected)
                identical += 1
        count = len(self.records)
        self.records, self.changes = {}, {}
        return count, identical


def _is_run_record(command: object) -> bool:
    return isinstance(command, Publish) and command.topic == RUNS_TOPIC


def _bytes(record: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    return encode(record)


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


def _go(ident: str, key: str) -> CloudEvent:
    return ExternalEvent(id=ident, source="src", type="go", data={"key": key})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pipelines(), st.data())
def test_one_record_per_run_per_batch_matches_the_last_per_step_record(
    pipeline: Pipeline, data: st.DataObject
) -> None:
    paths = TwoPaths(pipeline)
    queue = [_go(f"e{i}", f"k{i}") for i in range(3)]
    batch = data.draw(st.integers(1, 40), label="batch size")
    n = decided = records = identical = 0
    while queue or paths.timers:
        if not queue:
            # time passes to the timer's due time (the retention sweep re-arms until it is due)
            timer = paths.timers.pop(0)
            paths.now = max(paths.now, timer.due - timedelta(seconds=1))
            queue.append(timer.event)
        event = queue.pop(data.draw(st.integers(0, len(queue) - 1), label="pick"))
        for cmd in paths.feed(event).commands:
            if isinstance(cmd, Publish) and isinstance(cmd.event, StageTrigger):
                n += 1
                queue.extend(_answers(cmd.event, data.draw(st.booleans(), label="fail"), n))
                if data.draw(st.booleans(), label="fold"):  # a second match for the run
                    queue.append(_go(f"again{n}", cmd.event.data.run_key))
        decided += 1
        if decided % batch == 0:
            counted = paths.end_batch()
            records, identical = records + counted[0], identical + counted[1]
    counted = paths.end_batch()
    assert records + counted[0] > 0
    assert identical + counted[1] > 0  # each run's last batch: nothing folds into an ended run


def test_a_fold_after_the_last_change_shows_in_the_batchs_record() -> None:
    pipeline = Pipeline.model_validate(
        {
            "name": "p",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": [{"name": "a"}],
        }
    )
    paths = TwoPaths(pipeline)
    paths.feed(_go("first", "k"))
    paths.feed(_go("second", "k"))
    record = run_record(paths.changes["p/k"])
    assert paths.records["p/k"].data.caused_by == ["first"]
    assert record.data.caused_by == ["first", "second"]
    assert record.id == paths.records["p/k"].id == "p/k|active|src|first"
    assert paths.end_batch() == (1, 0)


def test_a_step_lists_its_changed_runs_and_publishes_no_record_itself() -> None:
    pipeline = Pipeline.model_validate(
        {
            "name": "p",
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}],
            "stages": [{"name": "a"}],
        }
    )
    state = CoordinatorState.empty()
    catalog = Catalog.build([pipeline], [])
    step = decide(catalog, state, _go("e", "k"), T0)
    assert not any(isinstance(c.event, RunRecord) for c in step.commands if isinstance(c, Publish))
    (change,) = step.changed_runs
    assert (change.run.run_id, change.source, change.event_id, change.now) == (
        "p/k",
        "src",
        "e",
        T0,
    )
    assert run_record(change).data.stages == {"a": "triggered"}
