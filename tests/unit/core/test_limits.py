"""max_active_runs across partitions: the partition of ``active/<pipeline>`` keeps the slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streamcoord.core import (
    Catalog,
    CatalogSet,
    CoordinatorState,
    Publish,
    decide,
    partition_for,
    partition_key_for,
)
from streamcoord.core.replay import ReplayResult, replay
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    ExternalEvent,
    RunCancel,
    StageFailed,
    StageRetry,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PARTS = 4
OWNER = partition_for("active/p", PARTS)


def _catalog(policy: str = "queue", limit: int = 1) -> Catalog:
    return Catalog.build(
        [
            Pipeline.model_validate(
                {
                    "name": "p",
                    "run_key": "event.data.key",
                    "triggers": [{"kind": "event", "type": "go"}],
                    "concurrency": {"max_active_runs": limit, "over_limit": policy},
                    "stages": [{"name": "a"}],
                }
            )
        ]
    )


def _go(key: str) -> ExternalEvent:
    return ExternalEvent(id=f"go-{key}", source="app", type="go", data={"key": key})


def _ok(key: str, attempt: int = 1) -> StageSucceeded:
    return StageSucceeded(
        id=f"ok-{key}-{attempt}",
        source="x",
        data={"run_id": f"p/{key}", "stage": "a", "attempt": attempt},
    )


def _replay(catalog: Catalog, events: list[CloudEvent]) -> ReplayResult:
    log = [(T0 + timedelta(seconds=i), e) for i, e in enumerate(events)]
    return replay(catalog, log, partitions=PARTS, fire_timers=False)


def _triggered(result: ReplayResult) -> list[str]:
    return [
        c.event.data.run_id
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


def _status(result: ReplayResult, key: str) -> str:
    run = result.states[partition_for(f"p/{key}", PARTS)].run(f"p/{key}")
    assert run is not None
    return run.status


def _decisions(result: ReplayResult, run_id: str) -> list[tuple[str, str]]:
    return [
        (c.event.data.action, c.event.data.reason)
        for r in result.records
        for c in r.step.commands
        if isinstance(c, Publish)
        and isinstance(c.event.data, Decision)
        and c.event.data.run_id == run_id
    ]


def _books(state: CoordinatorState) -> tuple[list[str], list[str]]:
    pipe = state.misc("pipe/p")
    assert pipe is not None
    return pipe["active"], pipe["waiting"]


def test_the_runs_used_here_live_apart_from_the_limit_owner() -> None:
    parts = [partition_for(f"p/{k}", PARTS) for k in ("k0", "k1", "k4", "k3")]
    assert len(set(parts[:3])) == 3
    assert OWNER not in parts[:3]
    assert parts[3] == OWNER


def test_one_run_at_a_time_over_all_partitions_and_queued_runs_start_in_request_order() -> None:
    catalog = _catalog()
    early = _replay(catalog, [_go("k0"), _go("k1"), _go("k4")])
    assert _triggered(early) == ["p/k0"]
    assert [_status(early, k) for k in ("k0", "k1", "k4")] == ["active", "queued", "queued"]
    assert ("queued", "waiting for a slot of max_active_runs 1") in _decisions(early, "p/k1")
    assert _books(early.states[OWNER]) == (["p/k0"], ["p/k1", "p/k4"])

    later = _replay(catalog, [_go("k0"), _go("k1"), _go("k4"), _ok("k0"), _ok("k1"), _ok("k4")])
    assert _triggered(later) == ["p/k0", "p/k1", "p/k4"]
    assert _books(later.states[OWNER]) == ([], [])


def test_a_cancelled_queued_run_leaves_the_queue() -> None:
    cancel = RunCancel(id="c", source="cli", data={"run_id": "p/k1"})
    result = _replay(_catalog(), [_go("k0"), _go("k1"), _go("k4"), cancel, _ok("k0")])
    assert _triggered(result) == ["p/k0", "p/k4"]
    assert _status(result, "k1") == "cancelled"
    assert _books(result.states[OWNER]) == (["p/k4"], [])


def test_a_run_on_the_owning_partition_is_told_at_once_why_it_waits() -> None:
    result = _replay(_catalog(), [_go("k0"), _go("k3")])
    assert _status(result, "k3") == "queued"
    assert ("queued", "max_active_runs 1 reached") in _decisions(result, "p/k3")


def test_skip_over_the_limit_is_answered_across_partitions() -> None:
    result = _replay(_catalog("skip"), [_go("k0"), _go("k1"), _ok("k0"), _go("k4")])
    assert _triggered(result) == ["p/k0", "p/k4"]
    assert _status(result, "k1") == "skipped"
    assert ("skipped", "max_active_runs 1 reached") in _decisions(result, "p/k1")
    assert _books(result.states[OWNER]) == (["p/k4"], [])


def test_cancel_oldest_starts_the_new_run_only_once_the_old_one_gave_its_slot_back() -> None:
    result = _replay(_catalog("cancel_oldest"), [_go("k0"), _go("k1")])
    assert _triggered(result) == ["p/k0", "p/k1"]
    assert _status(result, "k0") == "cancelled"
    assert ("cancelled", "cancelled for p/k1 (cancel_oldest)") in _decisions(result, "p/k0")
    order = [r.event.type for r in result.records]
    cancelled = order.index("streamcoord.run.cancel")
    trigger = next(
        i
        for i, r in enumerate(result.records)
        if any(
            isinstance(c, Publish)
            and isinstance(c.event, StageTrigger)
            and c.event.data.run_id == "p/k1"
            for c in r.step.commands
        )
    )
    assert cancelled < order.index("streamcoord.limit.release") < trigger


def test_a_manual_retry_takes_a_slot_above_the_limit_and_gives_it_back_once() -> None:
    fail = StageFailed(
        id="f", source="x", data={"run_id": "p/k0", "stage": "a", "retryable": False}
    )
    retry = StageRetry(id="r", source="cli", data={"run_id": "p/k0", "stage": "a"})
    result = _replay(
        _catalog(), [_go("k0"), fail, _go("k1"), retry, _go("k4"), _ok("k0", 2), _ok("k1")]
    )
    assert _triggered(result) == ["p/k0", "p/k1", "p/k0", "p/k4"]
    assert _books(result.states[OWNER]) == (["p/k4"], [])


# --- the owner's books, one routed request at a time --------------------------------------------


def _limit(type_: str, run_id: str, ident: str | None = None) -> CloudEvent:
    return CloudEvent(
        id=ident or f"{type_}-{run_id}",
        source="streamcoord/coordinator",
        type=f"streamcoord.limit.{type_}",
        sckey="active/p",
        data={"pipeline": "p", "run_id": run_id},
    )


def _routed(step: Any) -> list[tuple[str, str, str]]:
    return [
        (c.event.type.rsplit(".", 1)[1], c.key, (c.event.data or {}).get("reason", ""))
        for c in step.commands
        if isinstance(c, Publish) and c.topic is None
    ]


def test_a_redelivered_request_changes_nothing() -> None:
    catalog, state = _catalog(), CoordinatorState.empty(OWNER, PARTS)
    assert _routed(decide(catalog, state, _limit("acquire", "p/k0"), T0)) == [("grant", "p/k0", "")]
    assert decide(catalog, state, _limit("acquire", "p/k0"), T0).commands == ()
    # a second request for a run the books already hold, past the window of remembered ids
    assert decide(catalog, state, _limit("acquire", "p/k0", "other"), T0).commands == ()
    decide(catalog, state, _limit("acquire", "p/k1"), T0)
    assert _routed(decide(catalog, state, _limit("release", "p/k0"), T0)) == [("grant", "p/k1", "")]
    assert decide(catalog, state, _limit("release", "p/k0"), T0).commands == ()
    assert _books(state) == (["p/k1"], [])


def test_cancel_oldest_under_a_burst_cancels_each_holder_once() -> None:
    catalog, state = _catalog("cancel_oldest"), CoordinatorState.empty(OWNER, PARTS)
    decide(catalog, state, _limit("acquire", "p/k0"), T0)
    assert _routed(decide(catalog, state, _limit("acquire", "p/k1"), T0)) == [
        ("cancel", "p/k0", "cancelled for p/k1 (cancel_oldest)")
    ]
    # the holder is already on its way out: the run still waiting for its slot gives way
    assert _routed(decide(catalog, state, _limit("acquire", "p/k4"), T0)) == [
        ("cancel", "p/k1", "cancelled for p/k4 (cancel_oldest)")
    ]
    assert _routed(decide(catalog, state, _limit("release", "p/k0"), T0)) == [("grant", "p/k4", "")]
    assert _books(state) == (["p/k4"], [])


def test_cancel_oldest_does_not_cancel_twice_for_one_slot() -> None:
    catalog, state = _catalog("cancel_oldest", limit=2), CoordinatorState.empty(OWNER, PARTS)
    decide(catalog, state, _limit("acquire", "p/k0"), T0)
    decide(catalog, state, _limit("acquire", "p/k1"), T0)
    decide(catalog, state, _limit("acquire", "p/k4"), T0)  # k0 is asked to go
    assert _routed(decide(catalog, state, _limit("release", "p/k1"), T0)) == [
        ("grant", "p/k4", "")
    ]  # k1 ended by itself first
    assert decide(catalog, state, _limit("acquire", "p/k5"), T0).commands == ()  # k0's slot
    assert _routed(decide(catalog, state, _limit("release", "p/k0"), T0)) == [("grant", "p/k5", "")]


def test_a_holder_that_already_ended_on_the_owning_partition_frees_its_slot() -> None:
    catalog, state = _catalog("cancel_oldest"), CoordinatorState.empty(OWNER, PARTS)
    state.misc_for_update(
        "pipe/p", {"v": 1, "paused": False, "held": [], "active": ["p/k3"], "waiting": []}
    )  # books older than the run's end
    assert _routed(decide(catalog, state, _limit("acquire", "p/k0"), T0)) == [("grant", "p/k0", "")]


def test_answers_for_a_run_no_longer_queued_are_noted_and_a_grant_is_given_back() -> None:
    catalog = _catalog()
    done = _replay(catalog, [_go("k0"), _ok("k0")]).states[partition_for("p/k0", PARTS)]
    step = decide(catalog, done, _limit("grant", "p/k0", "late"), T0)
    assert _routed(step) == [("release", "active/p", "")]
    denied = decide(catalog, done, _limit("deny", "p/k0"), T0)
    assert [
        (c.event.data.action, c.event.data.reason)
        for c in denied.commands
        if isinstance(c, Publish) and isinstance(c.event.data, Decision)
    ] == [("ignored", "skip for a run no longer queued")]
    running = _replay(catalog, [_go("k0")]).states[partition_for("p/k0", PARTS)]
    assert decide(catalog, running, _limit("grant", "p/k0", "again"), T0).commands == ()


# --- property: the limit holds over all partitions under any interleaving -----------------------


class Cluster:
    """Partitions with their own inboxes: Kafka keeps order within a partition, not across."""

    def __init__(self, catalog: Catalog, partitions: int) -> None:
        self.catalog = catalog
        self.states = [CoordinatorState.empty(p, partitions) for p in range(partitions)]
        self.inboxes: list[list[CloudEvent]] = [[] for _ in range(partitions)]
        self.executor: list[CloudEvent] = []  # answers a worker has yet to send
        self.delivered: list[CloudEvent] = []
        self.now = T0

    def send(self, event: CloudEvent) -> None:
        self.inboxes[partition_for(partition_key_for(event), len(self.states))].append(event)

    def deliver(self, partition: int) -> None:
        event = self.inboxes[partition].pop(0)
        self.delivered.append(event)
        self.now += timedelta(seconds=1)
        step = decide(self.catalog, self.states[partition], event, self.now)
        assert step.rejection is None or step.rejection.code in ALLOWED, step.rejection
        for c in step.commands:
            if isinstance(c, Publish) and c.topic is None:
                self.send(c.event)
            elif isinstance(c, Publish) and isinstance(c.event, StageTrigger):
                d = c.event.data
                self.executor.append(
                    StageSucceeded(
                        id=f"ok-{d.run_id}-{d.stage}-{d.attempt}",
                        source="worker",
                        data={"run_id": d.run_id, "stage": d.stage, "attempt": d.attempt},
                    )
                )

    def active(self) -> list[str]:
        return [r.run_id for s in self.states for r in s.runs() if r.status == "active"]

    def runs(self) -> dict[str, str]:
        return {r.run_id: r.status for s in self.states for r in s.runs()}

    def drain(self) -> None:
        for _ in range(10_000):
            busy = [p for p, inbox in enumerate(self.inboxes) if inbox]
            if busy:
                self.deliver(busy[0])
            elif self.executor:
                self.send(self.executor.pop(0))
            else:
                return
        raise AssertionError("the cluster never went quiet")


# an executor's answer for a stage cancelled meanwhile; a cancel for a run not created yet
ALLOWED = {"illegal_transition", "unknown_run"}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["queue", "queue", "skip", "cancel_oldest"]),
    st.integers(1, 3),
    st.integers(2, 5),
    st.integers(2, 7),
    st.data(),
)
def test_never_more_active_runs_than_the_limit_and_every_queued_run_starts(
    policy: str, limit: int, partitions: int, runs: int, data: st.DataObject
) -> None:
    cluster = Cluster(_catalog(policy, limit), partitions)
    for i in range(runs):
        cluster.send(
            ExternalEvent(id=f"go-{i}", source=f"app{i}", type="go", data={"key": f"k{i}"})
        )
    cancels = [
        RunCancel(id=f"c{i}", source="cli", data={"run_id": f"p/k{i}"})
        for i in range(runs)
        if data.draw(st.booleans(), label=f"cancel k{i}")
    ]
    waited = False
    for _ in range(250):
        busy = [p for p, inbox in enumerate(cluster.inboxes) if inbox]
        moves = [
            *(("deliver", p) for p in busy),
            *(("answer", i) for i in range(len(cluster.executor))),
        ]
        if cancels:
            moves.append(("cancel", 0))
        if cluster.delivered:
            moves.append(("redeliver", 0))
        if not moves:
            break
        move, arg = moves[data.draw(st.integers(0, len(moves) - 1), label="move")]
        if move == "deliver":
            cluster.deliver(arg)
        elif move == "answer":
            cluster.send(cluster.executor.pop(arg))
        elif move == "cancel":
            cluster.send(cancels.pop(0))
        else:
            again = data.draw(st.integers(0, len(cluster.delivered) - 1), label="again")
            cluster.send(cluster.delivered[again])
        assert len(cluster.active()) <= limit, cluster.active()
        waited = waited or "queued" in cluster.runs().values()
    event(f"some run waited for a slot: {waited}")
    for cancel in cancels:
        cluster.send(cancel)
    cluster.drain()
    assert len(cluster.runs()) == runs
    ended = {"succeeded", "cancelled"} | ({"skipped"} if policy == "skip" else set())
    assert set(cluster.runs().values()) <= ended, cluster.runs()  # nothing left queued
    owner = cluster.states[partition_for("active/p", partitions)].misc("pipe/p")
    assert owner is not None
    assert (owner["active"], owner["waiting"], owner.get("revoked", [])) == ([], [], [])


@pytest.mark.parametrize("limit", [1, 2])
def test_runs_a_partition_counted_itself_before_the_upgrade_are_handed_to_the_owner(
    limit: int,
) -> None:
    # k0, k2 and k6 live on one partition, which used to keep its own count
    catalog = _catalog(limit=limit)
    home = partition_for("p/k0", PARTS)
    assert {partition_for(f"p/{k}", PARTS) for k in ("k2", "k6")} == {home} != {OWNER}
    alone = replay(catalog, [(T0, _go("k0")), (T0, _go("k2")), (T0, _go("k6"))]).states[0]
    active, waiting = _books(alone)
    assert len(active) == limit
    assert len(waiting) == 3 - limit
    cluster = Cluster(catalog, PARTS)
    cluster.states[home] = CoordinatorState.load(home, PARTS, alone.dump())
    cluster.send(_ok("k0"))
    cluster.drain()
    assert _books(cluster.states[home]) == ([], [])
    assert len(cluster.active()) == limit - 1
    for run_id in cluster.active():  # triggered before the upgrade: answered here
        cluster.send(_ok(run_id.split("/")[1]))
    cluster.drain()
    assert cluster.runs() == {"p/k0": "succeeded", "p/k2": "succeeded", "p/k6": "succeeded"}
    assert _books(cluster.states[OWNER]) == ([], [])


def test_a_run_of_a_removed_pipeline_gives_its_slot_back_to_the_owner() -> None:
    key = next(k for k in (f"k{i}" for i in range(100)) if partition_for(f"p/{k}", PARTS) != OWNER)
    result = _replay(_catalog(), [_go(key)])
    assert _books(result.states[OWNER])[0] == [f"p/{key}"]
    gone = CatalogSet.of(
        Catalog.build(
            [Pipeline.model_validate({"name": "q", "run_key": "'x'", "stages": [{"name": "a"}]})]
        )
    )
    home = result.states[partition_for(f"p/{key}", PARTS)]
    step = decide(gone, home, RunCancel(id="c", source="ops", data={"run_id": f"p/{key}"}), T0)
    assert step.rejection is None
    released = [
        c
        for c in step.commands
        if isinstance(c, Publish) and c.event.type == "streamcoord.limit.release"
    ]
    assert len(released) == 1
    assert partition_for(released[0].key, PARTS) == OWNER
    owner = result.states[OWNER]
    step = decide(gone, owner, released[0].event, T0)  # the owner runs the new version too
    assert step.rejection is None
    assert _books(owner)[0] == []  # nothing admitted: the pipeline is gone
