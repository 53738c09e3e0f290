"""Retention: finished runs leave the state after ``catalog.retention``, decided from events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamcoord.core import (
    Catalog,
    CoordinatorState,
    Publish,
    RunState,
    SetTimer,
    Step,
    decide,
    partition_for,
    partition_key_for,
)
from streamcoord.core._audit import CHAIN_KEY
from streamcoord.core._retention import SWEEP_EVERY, SWEEP_LIMIT
from streamcoord.core._state import SWEEP_KEY, sweep_event
from streamcoord.errors import SpecError
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    ExternalEvent,
    RunRequested,
    StageFailed,
    StageOutcome,
    StageRetry,
    StageSucceeded,
    TimerFired,
)
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _spec(name: str, **extra: Any) -> Pipeline:
    spec: dict[str, Any] = {
        "name": name,
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
        "stages": [{"name": "a"}],
    }
    spec.update(extra)
    return Pipeline.model_validate(spec)


ARRIVALS = {
    "kind": "data",
    "type": "landed",
    "datasets": ["x"],
    "dataset": "event.data.ds",
    "partition": "event.data.part",
    "partitions_per_run": 1,
}
CATALOG = Catalog.build(
    [
        _spec("p"),
        _spec(
            "q",
            triggers=[{"kind": "event", "type": "go2"}],
            stages=[{"name": "b", "needs": ["p.a"]}],
        ),
        _spec("d", triggers=[ARRIVALS]),
        _spec(
            "z",
            triggers=[{"kind": "event", "type": "goz"}],
            concurrency={"max_active_runs": 1, "over_limit": "skip"},
        ),
    ],
    retention=DAY,
)


class Coordinator:
    """One partition decided at explicit times; routed events are fed back at once."""

    def __init__(self, catalog: Catalog = CATALOG) -> None:
        self.catalog = catalog
        self.state = CoordinatorState.empty()
        self.timers: dict[str, SetTimer] = {}

    def feed(self, event: CloudEvent, at: datetime) -> list[Step]:
        steps, queue = [], [event]
        while queue:
            step = decide(self.catalog, self.state, queue.pop(0), at)
            steps.append(step)
            for command in step.commands:
                if isinstance(command, SetTimer):
                    self.timers[command.timer_id] = command
                elif isinstance(command, Publish) and command.topic is None:
                    queue.append(command.event)
        return steps

    def sweep(self, at: datetime | None = None) -> Step:
        """Fire the partition's sweep timer (at its due time unless ``at`` says otherwise)."""
        timer = self.timers.pop("expiry|p0")
        return self.feed(timer.event, at or timer.due)[0]

    def finish(self, key: str, at: datetime, pipeline: str = "p") -> None:
        self.feed(ExternalEvent(id=f"go-{key}", source="app", type="go", data={"key": key}), at)
        self.feed(_ok(f"{pipeline}/{key}"), at)


def _ok(run_id: str, stage: str = "a", event_id: str | None = None) -> StageSucceeded:
    return StageSucceeded(
        id=event_id or f"ok-{run_id}",
        source="x",
        data={"run_id": run_id, "stage": stage, "attempt": 1},
    )


def _run(c: Coordinator, base: str) -> RunState:
    run = c.state.run(base)
    assert run is not None, f"{base} is not in the state"
    return run


def _ids(c: Coordinator) -> list[str]:
    return [run.run_id for run in c.state.runs()]


def _decisions(steps: list[Step]) -> list[tuple[str, str, str]]:
    return [
        (c.event.data.run_id, c.event.data.action, c.event.data.reason)
        for step in steps
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event.data, Decision)
    ]


def test_a_finished_run_leaves_the_state_a_retention_after_it_finished() -> None:
    c = Coordinator()
    c.finish("k", T0)
    assert _run(c, "p/k").status == "succeeded"
    assert _run(c, "p/k").finished_at == T0.isoformat()
    assert c.timers["expiry|p0"].due == T0 + DAY
    assert [tid for _, tid, _ in c.state.timers()] == ["expiry|p0"]  # re-armed after a restore
    step = c.sweep()
    assert c.state.run("p/k") is None
    assert c.state.dump_key("run/p/k") is None  # the runtime writes a tombstone
    assert c.state.dump_key("gen/p/k") == b'{"v":1,"g":1}'
    assert set(step.changed_keys) == {"run/p/k", "gen/p/k", SWEEP_KEY, CHAIN_KEY}
    assert _decisions([step]) == [
        ("p/k", "expired", f"succeeded at {T0.isoformat()}; kept 86400 s after it finished")
    ]
    assert c.state.misc(SWEEP_KEY) is None  # nothing left to sweep
    assert c.state.timers() == []


def test_runs_expire_oldest_first_and_sweeps_are_an_hour_apart_at_least() -> None:
    c = Coordinator()
    c.finish("k1", T0)
    c.finish("k2", T0 + timedelta(minutes=10))
    c.sweep()
    assert _ids(c) == ["p/k2"]
    assert c.timers["expiry|p0"].due == T0 + DAY + timedelta(hours=1)  # not 10 minutes on
    c.finish("k3", T0 + DAY + timedelta(hours=5))
    c.sweep()
    assert _ids(c) == ["p/k3"]
    assert c.timers["expiry|p0"].due == T0 + 2 * DAY + timedelta(hours=5)  # k3's own due


def test_a_sweep_expires_at_most_its_limit_and_goes_on_at_once() -> None:
    c = Coordinator()
    for n in range(SWEEP_LIMIT + 1):
        c.finish(f"k{n}", T0)
    first = c.sweep()
    assert len(c.state.runs()) == 1
    assert c.timers["expiry|p0"].due == T0 + DAY  # fires again right away
    assert len(_decisions([first])) == SWEEP_LIMIT
    c.sweep()
    assert c.state.runs() == []


def test_a_sweep_fired_again_or_early_changes_nothing_it_should_not() -> None:
    c = Coordinator()
    c.finish("k", T0)
    timer = c.timers["expiry|p0"]
    early = c.feed(timer.event, T0 + timedelta(hours=1))[0]  # a clock behind the due time
    assert c.state.run("p/k") is not None
    assert [type(cmd).__name__ for cmd in early.commands] == ["SetTimer"]  # the same due again
    assert c.timers["expiry|p0"].due == timer.due
    c.sweep()
    again = c.feed(timer.event, T0 + 2 * DAY)[0]  # a refire after the sweep ran
    assert (again.commands, again.changed_keys, again.rejection) == ((), (), None)


def test_a_late_event_for_an_expired_run_is_ignored_with_the_reason() -> None:
    c = Coordinator()
    c.finish("k", T0)
    c.sweep()
    late = c.feed(_ok("p/k", event_id="ok-again"), T0 + 2 * DAY)
    assert late[0].rejection is None
    assert _decisions(late) == [
        ("p/k", "ignored", "run p/k finished and left the state (retention 86400 s)")
    ]
    assert c.state.run("p/k") is None  # not resurrected
    unknown = c.feed(_ok("p/k#2"), T0 + 2 * DAY)[0]  # a generation that never existed
    assert unknown.rejection is not None
    assert unknown.rejection.code == "unknown_run"


def test_a_trigger_for_an_expired_run_is_ignored_and_a_request_takes_the_next_generation() -> None:
    c = Coordinator()
    c.finish("k", T0)
    c.sweep()
    again = c.feed(
        ExternalEvent(id="go-k-again", source="app", type="go", data={"key": "k"}), T0 + 2 * DAY
    )
    assert _decisions(again)[0][:2] == ("p/k", "ignored")
    assert c.state.run("p/k") is None
    request = RunRequested(id="r", source="cli", data={"pipeline": "p", "run_key": "k"})
    c.feed(request, T0 + 2 * DAY)
    assert _run(c, "p/k").run_id == "p/k#2"  # p/k is taken in the runs topic
    assert c.state.dump_key("gen/p/k") is None  # the run holds its generation again
    c.feed(_ok("p/k#2"), T0 + 2 * DAY)
    c.sweep()
    assert c.state.expired_gen("p/k") == 2


def test_a_subscription_to_an_expired_run_is_answered_as_expired() -> None:
    c = Coordinator()
    c.finish("k", T0)
    c.sweep()
    steps = c.feed(
        ExternalEvent(id="go2-k", source="app", type="go2", data={"key": "k"}), T0 + 2 * DAY
    )
    outcomes = [
        cmd.event
        for s in steps
        for cmd in s.commands
        if isinstance(cmd, Publish) and isinstance(cmd.event, StageOutcome)
    ]
    assert [o.data.outcome for o in outcomes] == ["expired"]
    assert (
        "q/k",
        "need_expired",
        "need p.a: upstream run p/k has expired; counted as failed",
    ) in _decisions(steps)
    assert _run(c, "q/k").stages["b"].status == "upstream_failed"
    assert c.state.misc("subs/p/k") is None  # nothing waits on it


def test_a_late_arrival_for_an_expired_run_is_ignored() -> None:
    c = Coordinator()
    land = ExternalEvent(
        id="l1", source="lake", type="landed", data={"key": "k", "ds": "x", "part": "0"}
    )
    c.feed(land, T0)
    c.feed(_ok("d/k"), T0)
    assert c.state.misc("arr/d/k") is not None
    c.sweep()
    assert c.state.misc("arr/d/k") is None
    late = ExternalEvent(
        id="l2", source="lake", type="landed", data={"key": "k", "ds": "x", "part": "1"}
    )
    steps = c.feed(late, T0 + 2 * DAY)
    assert _decisions(steps)[0][:2] == ("d/k", "ignored")
    assert c.state.misc("arr/d/k") is None


def test_a_run_skipped_over_the_pipelines_limit_expires_too() -> None:
    c = Coordinator()
    for key in ("k1", "k2"):
        c.feed(ExternalEvent(id=key, source="app", type="goz", data={"key": key}), T0)
    assert _run(c, "z/k2").status == "skipped"
    c.sweep()
    assert [run.run_id for run in c.state.runs()] == ["z/k1"]  # still active


def test_a_run_retried_after_it_finished_expires_from_its_second_end() -> None:
    c = Coordinator()
    c.feed(ExternalEvent(id="go-k", source="app", type="go", data={"key": "k"}), T0)
    c.feed(
        StageFailed(
            id="f",
            source="x",
            data={"run_id": "p/k", "stage": "a", "attempt": 1, "error": "boom", "retryable": False},
        ),
        T0,
    )
    c.feed(
        StageRetry(id="r", source="cli", data={"run_id": "p/k", "stage": "a"}),
        T0 + timedelta(hours=12),
    )
    c.feed(
        StageSucceeded(id="ok2", source="x", data={"run_id": "p/k", "stage": "a", "attempt": 2}),
        T0 + timedelta(hours=13),
    )
    c.sweep()  # due a day after the first end
    assert _run(c, "p/k").status == "succeeded"
    assert c.timers["expiry|p0"].due == T0 + DAY + timedelta(hours=13)
    c.sweep()
    assert c.state.run("p/k") is None


def test_a_sweep_that_finds_only_reopened_runs_ends() -> None:
    c = Coordinator()
    c.feed(ExternalEvent(id="go-k", source="app", type="go", data={"key": "k"}), T0)
    c.feed(
        StageFailed(
            id="f",
            source="x",
            data={"run_id": "p/k", "stage": "a", "attempt": 1, "error": "boom", "retryable": False},
        ),
        T0,
    )
    c.feed(StageRetry(id="r", source="cli", data={"run_id": "p/k", "stage": "a"}), T0)
    c.sweep()
    assert c.state.misc(SWEEP_KEY) is None  # the run is active: no sweep until it ends again


def test_a_restored_state_expires_the_same_runs() -> None:
    c = Coordinator()
    c.finish("k1", T0)
    c.finish("k2", T0 + timedelta(hours=2))
    c.sweep()
    restored = Coordinator()
    # the changelog as the runtime wrote it: values, then a tombstone for the expired run
    items: list[tuple[str, bytes | None]] = [
        *c.state.dump(),
        ("run/p/k1", None),
        ("gen/p/gone", b'{"v":1,"g":3}'),
        ("gen/p/gone", None),
    ]
    restored.state = CoordinatorState.load(0, 1, items)
    restored.timers = dict(c.timers)
    assert restored.state.dump() == c.state.dump()
    assert restored.sweep().commands == c.sweep().commands
    assert restored.state.dump() == c.state.dump()


def test_runs_finished_before_retention_existed_expire_by_their_creation_time() -> None:
    c = Coordinator()
    c.finish("k", T0)
    raw = orjson.loads(c.state.dump_key("run/p/k") or b"")
    old = {key: value for key, value in raw.items() if key != "fa"}
    restored = CoordinatorState.load(
        0,
        1,
        [
            ("run/p/k", orjson.dumps({**old, "v": 3})),
            ("run/p/j", orjson.dumps({**old, "k": "j", "at": "", "v": 2})),
        ],
    )
    found = [(run.run_key, run.finished_at) for run in restored.runs()]
    assert found == [("j", "1970-01-01T00:00:00+00:00"), ("k", T0.isoformat())]


def test_retention_must_be_positive() -> None:
    with pytest.raises(SpecError, match="retention must be positive"):
        Catalog.build([_spec("p")], retention=timedelta(0))


def test_the_sweep_event_lands_on_its_partition() -> None:
    for partition in range(4):
        event = sweep_event(partition, 4, T0)
        assert isinstance(event, TimerFired)
        assert partition_for(partition_key_for(event), 4) == partition


def test_a_sweep_that_was_not_committed_leaves_the_run_to_expire_again() -> None:
    c = Coordinator()
    c.finish("k", T0)
    timer = c.timers["expiry|p0"]
    committed = c.state.dump()
    c.sweep()
    # the runtime's transaction failed: it reloads the committed state, the sweep comes again
    c.state = CoordinatorState.load(0, 1, committed)
    assert _ids(c) == ["p/k"]
    assert c.state.expired_gen("p/k") is None
    c.feed(timer.event, timer.due)
    assert _ids(c) == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=12),
    st.sampled_from([timedelta(seconds=5), timedelta(minutes=30), DAY]),
)
def test_every_run_expires_within_a_sweep_interval_after_its_retention(
    gaps: list[int], retention: timedelta
) -> None:
    c = Coordinator(Catalog.build([_spec("p")], retention=retention))
    finishes = list(accumulate(timedelta(seconds=g) for g in gaps))
    expired: dict[str, datetime] = {}

    def sweep_until(limit: datetime | None) -> None:
        while "expiry|p0" in c.timers and (limit is None or c.timers["expiry|p0"].due <= limit):
            due = c.timers["expiry|p0"].due
            for run_id, action, _ in _decisions([c.sweep()]):
                if action == "expired":
                    expired[run_id] = due

    for n, offset in enumerate(finishes):
        sweep_until(T0 + offset)
        c.finish(f"k{n}", T0 + offset)
    sweep_until(None)
    assert c.state.runs() == []
    interval = min(retention, SWEEP_EVERY)
    for n, offset in enumerate(finishes):
        kept = expired[f"p/k{n}"] - (T0 + offset)
        assert retention <= kept <= retention + interval
