"""State as the runtime uses it: changelog round trips, durable timers, the dedup window."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from streamcoord.core import Catalog, CoordinatorState, RunState, decide
from streamcoord.core._state import VERSION, event_digest
from streamcoord.core.replay import replay
from streamcoord.errors import EventError
from streamcoord.events.models import (
    ExternalEvent,
    PipelinePause,
    StageHeartbeat,
    StageStarted,
    StageSucceeded,
    TimerFired,
)
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {
                "name": "p",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "go"}],
                "stages": [{"name": "a", "timeout_seconds": 60, "heartbeat_timeout_seconds": 10}],
            }
        )
    ]
)
REF = {"run_id": "p/k", "stage": "a", "attempt": 1}


def _busy_state() -> CoordinatorState:
    state = CoordinatorState.empty()
    decide(CATALOG, state, ExternalEvent(id="g", source="app", type="go", data={"key": "k"}), T0)
    decide(CATALOG, state, StageStarted(id="s", source="x", data=REF), T0 + timedelta(seconds=1))
    decide(CATALOG, state, PipelinePause(id="pz", source="cli", data={"pipeline": "p"}), T0)
    return state


def test_a_state_restored_from_its_changelog_is_the_same_state() -> None:
    state = _busy_state()
    snapshot = state.dump()
    assert [k for k, _ in snapshot] == ["chain", "pipe/p", "run/p/k"]
    restored = CoordinatorState.load(0, 1, snapshot)
    assert restored.dump() == snapshot
    assert [r.run_id for r in restored] == ["p/k"]
    tombstoned = CoordinatorState.load(0, 1, [*snapshot, ("pipe/p", None)])
    assert tombstoned.keys() == ["chain", "run/p/k"]
    assert tombstoned.dump_key("pipe/p") is None


def test_restored_runs_without_timers_are_decoded_only_when_an_event_needs_them() -> None:
    # a run with pending timers (p/k) is decoded at once, to re-arm them; one without (p/q,
    # finished) waits as its changelog value, and still counts for retention
    state = CoordinatorState.empty()
    for key in ("k", "q"):
        decide(
            CATALOG, state, ExternalEvent(id=key, source="app", type="go", data={"key": key}), T0
        )
    done = {"run_id": "p/q", "stage": "a", "attempt": 1}
    decide(CATALOG, state, StageSucceeded(id="d", source="x", data=done), T0)
    snapshot = state.dump()
    restored = CoordinatorState.load(0, 1, snapshot)
    assert sorted(restored.run_statuses()) == ["active", "succeeded"]
    assert restored.dump() == snapshot  # a parked run dumps as its decoded self would
    assert [run_id for _, run_id, _ in restored.timers()] == [
        run_id for _, run_id, _ in state.timers()
    ]
    oldest = restored.oldest_finished()
    assert oldest is not None
    assert oldest[1].run_id == "p/q"
    assert [r.run_id for r in restored.runs()] == ["p/k", "p/q"]
    assert restored.dump() == snapshot


def test_a_run_stores_each_stage_as_the_stage_dumps_itself() -> None:
    # RunState.dump writes the stages' compact form inline (it is on the hot path)
    run = _busy_state().run("p/k")
    assert run is not None
    assert run.dump()["st"] == {name: stage.dump() for name, stage in run.stages.items()}
    assert run.dump()["st"]["a"][:2] == ["running", 1]


def test_timers_are_listed_by_due_time_for_re_arming_after_a_restart() -> None:
    timers = CoordinatorState.load(0, 1, _busy_state().dump()).timers()
    assert [(due - T0, tid) for due, tid, _ in timers] == [
        (timedelta(seconds=11), "p/k|a|1|heartbeat"),
        (timedelta(seconds=60), "p/k|a|1|timeout"),
    ]
    fired = timers[0][2]
    assert isinstance(fired, TimerFired)
    assert fired.data.run_id == "p/k"
    assert fired.data.purpose == "heartbeat"


def test_redeliveries_within_the_last_128_events_of_a_run_change_nothing() -> None:
    state = _busy_state()
    beats = [StageHeartbeat(id=f"h{i}", source="x", data=REF) for i in range(130)]
    for i, beat in enumerate(beats):
        decide(CATALOG, state, beat, T0 + timedelta(seconds=2 + i))
    recent = decide(CATALOG, state, beats[-1], T0 + timedelta(hours=1))
    assert recent.commands == ()
    oldest = decide(CATALOG, state, beats[0], T0 + timedelta(hours=1))
    assert [type(c).__name__ for c in oldest.commands] == ["SetTimer"]  # beyond the window


def test_replay_can_leave_timers_unfired_and_bounds_endless_firing() -> None:
    go = ExternalEvent(id="g", source="app", type="go", data={"key": "k"})
    unfired = replay(CATALOG, [(T0, go)], fire_timers=False)
    assert len(unfired.records) == 1
    fired = replay(CATALOG, [(T0, go)])
    # the stage's timeout, the run's end, and a week later the retention sweep that expires it
    assert [r.event.type for r in fired.records[1:]] == [
        "streamcoord.timer.fired",
        "streamcoord.run.finished",
        "streamcoord.timer.fired",
    ]
    assert fired.states[0].runs() == []
    with pytest.raises(EventError, match="timers kept firing past the replay's limit"):
        replay(CATALOG, [(T0, go)], max_timer_firings=0)


def test_a_version_1_changelog_keeps_its_dedup_window() -> None:
    state = _busy_state()
    raw = orjson.loads(state.dump_key("run/p/k") or b"")
    old = {**raw, "v": 1, "d": ["app g", "x s"]}  # version 1 stored "<source> <id>" strings
    restored = CoordinatorState.load(0, 1, [("run/p/k", orjson.dumps(old))])
    again = decide(CATALOG, restored, StageStarted(id="s", source="x", data=REF), T0)
    assert again.commands == ()
    assert again.changed_keys == ()
    run = restored.run("p/k")
    assert run is not None
    assert run.dump()["v"] == VERSION


def test_the_dedup_window_matches_whole_digests_only() -> None:
    digest = hashlib.blake2b(b"app e1", digest_size=8).digest()
    run = RunState("p", "k")
    run.seen = b"\0" * 4 + digest + b"\0" * 4  # the digest straddles two slots: not seen
    assert not run.has_seen(digest)
    run.seen += digest  # and now also in a slot of its own
    assert run.has_seen(digest)
    assert event_digest("app e1") == digest
