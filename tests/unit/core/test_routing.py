"""Work that crosses partitions: pause broadcasts, routed matches, schedule ticks, pools."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from streamcoord.core import Catalog, CoordinatorState, Publish, decide, partition_for
from streamcoord.core.replay import ReplayResult, replay
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    PipelinePause,
    PipelineResume,
    RunCancel,
    ScheduleTick,
    StageStarted,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEYS = [f"k{i}" for i in range(8)]


def _catalog(**extra: Any) -> Catalog:
    spec: dict[str, Any] = {
        "name": "p",
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}],
        "stages": [{"name": "a"}],
    }
    spec.update(extra)
    return Catalog.build([Pipeline.model_validate(spec)], [Pool(name="db", slots=1)])


def _replay(catalog: Catalog, events: list[CloudEvent], partitions: int) -> ReplayResult:
    log = [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    return replay(catalog, log, partitions=partitions, fire_timers=False)


def _triggered(result: ReplayResult) -> list[str]:
    return [
        c.event.data.run_id
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


def _go(key: str) -> ExternalEvent:
    return ExternalEvent(id=f"go-{key}", source="app", type="go", data={"key": key})


def test_the_keys_used_here_spread_over_several_partitions() -> None:
    assert len({partition_for(f"p/{k}", 3) for k in KEYS}) == 3  # or the tests below prove little


def test_pause_reaches_every_partition_and_resume_releases_every_held_match() -> None:
    pause = PipelinePause(id="pz", source="cli", data={"pipeline": "p"})
    resume = PipelineResume(id="rs", source="cli", data={"pipeline": "p"})
    catalog = _catalog()
    paused = _replay(catalog, [pause, *[_go(k) for k in KEYS]], partitions=3)
    assert _triggered(paused) == []
    broadcast = [c for c in paused.records[0].step.commands if isinstance(c, Publish)]
    assert len(broadcast) == 2  # once to each other partition, and not forwarded again
    assert all(
        c.topic is None and c.event.model_extra == {"sckey": c.key, "scbroadcast": "1"}
        for c in broadcast
    )
    resumed = _replay(catalog, [pause, *[_go(k) for k in KEYS], resume], partitions=3)
    assert sorted(_triggered(resumed)) == [f"p/{k}" for k in KEYS]


def test_a_match_made_on_one_partition_runs_on_the_partition_that_owns_the_run() -> None:
    result = _replay(_catalog(), [_go(k) for k in KEYS], partitions=3)
    for state in result.states:
        for run in state.runs():
            assert partition_for(run.base, 3) == state.partition
    assert sorted(_triggered(result)) == [f"p/{k}" for k in KEYS]


def test_a_schedule_tick_starts_the_run_its_time_names_once() -> None:
    catalog = _catalog(
        run_key="string(schedule.scheduled_time)",
        triggers=[{"kind": "schedule", "cron": "0 * * * *"}],
    )
    tick = ScheduleTick(
        id="t1",
        source="scheduler",
        data={"pipeline": "p", "scheduled_time": "2026-01-01T01:00:00Z"},
    )
    again = ScheduleTick(
        id="t1-redelivered",
        source="scheduler",
        data={"pipeline": "p", "scheduled_time": "2026-01-01T01:00:00Z"},
    )
    result = _replay(catalog, [tick, again], partitions=3)
    assert _triggered(result) == ["p/2026-01-01T01:00:00+00:00"]


def test_cancelling_a_run_that_holds_a_pool_slot_hands_the_slot_on() -> None:
    catalog = _catalog(stages=[{"name": "a", "pool": "db"}])
    cancel = RunCancel(id="c", source="cli", data={"run_id": "p/k0"})
    result = _replay(catalog, [_go("k0"), _go("k1"), cancel], partitions=3)
    assert _triggered(result) == ["p/k0", "p/k1"]


def test_cancelling_a_run_still_waiting_for_a_slot_withdraws_its_request() -> None:
    catalog = _catalog(stages=[{"name": "a", "pool": "db"}])
    started = StageStarted(id="s", source="x", data={"run_id": "p/k0", "stage": "a"})
    cancel = RunCancel(id="c", source="cli", data={"run_id": "p/k1"})
    result = _replay(catalog, [_go("k0"), _go("k1"), started, cancel, _go("k2")], partitions=3)
    pool = next(s.misc("pool/db") for s in result.states if s.misc("pool/db"))
    assert pool is not None
    assert [w[2] for w in pool["waiting"]] == ["p/k2"]  # k1 withdrew; k2 waits behind k0


def test_a_redelivered_pool_request_is_counted_once() -> None:
    catalog = _catalog(stages=[{"name": "a", "pool": "db"}])
    state = CoordinatorState.empty()
    acquire = CloudEvent(
        id="acq",
        source="streamcoord/coordinator",
        type="streamcoord.pool.acquire",
        sckey="pool/db",
        data={
            "pool": "db",
            "run_id": "p/x",
            "stage": "a",
            "attempt": 1,
            "priority": 0,
            "reply": "p/x",
        },
    )
    first = decide(catalog, state, acquire, T0)
    second = decide(catalog, state, acquire.model_copy(update={"id": "acq-again"}), T0)
    assert len(first.commands) == 1  # the grant
    assert second.commands == ()
    assert state.misc("pool/db") == {
        "v": 1,
        "holders": [["p/x", "a", 1, "p/x"]],
        "waiting": [],
        "seq": 0,
    }
