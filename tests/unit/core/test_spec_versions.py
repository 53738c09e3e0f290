"""Specs changed while runs are in flight: versions, activation, and runs whose spec lost
stages or their pipeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streamcoord.core import (
    CancelTimer,
    Catalog,
    CatalogSet,
    CoordinatorState,
    Publish,
    Step,
    decide,
    explain,
    run_record,
    spec_version,
)
from streamcoord.errors import SpecError
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    ExternalEvent,
    RunCancel,
    RunFinished,
    SpecsActivate,
    StageFailed,
    StageHeartbeat,
    StageRetry,
    StageStarted,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)
POOLS = [Pool(name="db", slots=1)]


def _pipeline(stages: list[dict[str, Any]], name: str = "p", **extra: Any) -> Pipeline:
    return Pipeline.model_validate(
        {
            "name": name,
            "run_key": "event.data.key",
            "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
            "stages": stages,
            **extra,
        }
    )


V1 = Catalog.build(
    [_pipeline([{"name": "a"}, {"name": "b", "needs": ["a"]}, {"name": "c", "needs": ["b"]}])],
    POOLS,
)
# b renamed b2, d added
V2 = Catalog.build(
    [
        _pipeline(
            [
                {"name": "a"},
                {"name": "b2", "needs": ["a"]},
                {"name": "c", "needs": ["b2"]},
                {"name": "d"},
            ]
        )
    ],
    POOLS,
)
OTHER = Catalog.build([_pipeline([{"name": "x"}], name="other")], POOLS)
BOTH = CatalogSet.of(V1, V2)


class Partition:
    """One partition's state, fed events one second apart."""

    def __init__(self, partition: int = 0, partitions: int = 1) -> None:
        self.state = CoordinatorState.empty(partition, partitions)
        self.now = T0
        self.n = 0

    def feed(self, catalog: Catalog | CatalogSet, event: CloudEvent) -> Step:
        self.now += timedelta(seconds=1)
        return decide(catalog, self.state, event, self.now)

    def run(self, base: str = "p/k") -> Any:
        found = self.state.run(base)
        assert found is not None
        return found


def _go(key: str = "k") -> ExternalEvent:
    return ExternalEvent(id=f"go-{key}", source="app", type="go", data={"key": key})


def _activate(version: str, ident: str = "act") -> SpecsActivate:
    return SpecsActivate(id=f"{ident}-{version}", source="ops", data={"version": version})


def _ref(stage: str, run: str = "p/k", attempt: int = 1) -> dict[str, Any]:
    return {"run_id": run, "stage": stage, "attempt": attempt}


def _ok(stage: str, run: str = "p/k", attempt: int = 1) -> StageSucceeded:
    return StageSucceeded(
        id=f"ok-{run}-{stage}-{attempt}", source="x", data=_ref(stage, run, attempt)
    )


def _grant(stage: str, attempt: int = 1, run: str = "p/k") -> CloudEvent:
    return CloudEvent(
        id=f"grant-{stage}-{attempt}",
        source="streamcoord/coordinator",
        type="streamcoord.pool.grant",
        data={"pool": "db", "run_id": run, "stage": stage, "attempt": attempt},
    )


def _decisions(step: Step) -> list[tuple[str | None, str, str]]:
    return [
        (c.event.data.stage, c.event.data.action, c.event.data.reason)
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event.data, Decision)
    ]


def _triggered(step: Step) -> list[str]:
    return [
        c.event.data.stage
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    ]


def _routed(step: Step, type_: str) -> list[dict[str, Any]]:
    return [
        c.event.data
        for c in step.commands
        if isinstance(c, Publish) and c.topic is None and c.event.type == type_
    ]


def _statuses(run: Any) -> dict[str, str]:
    return {n: s.status for n, s in run.stages.items()}


# --- versions ------------------------------------------------------------------------------


def test_a_spec_version_is_a_content_hash_of_the_specs_whatever_their_order() -> None:
    p, q = _pipeline([{"name": "a"}]), _pipeline([{"name": "a"}], name="q")
    version = spec_version([p, q], POOLS)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", version)
    assert spec_version([q, p], POOLS) == version
    assert Catalog.build([p, q], POOLS).version == version
    assert spec_version([p, q], [Pool(name="db", slots=2)]) != version
    assert spec_version([p, _pipeline([{"name": "a", "priority": 3}], name="q")], POOLS) != version
    # an omitted default and the same value written out are one spec
    assert (
        spec_version([_pipeline([{"name": "a", "trigger_rule": "all_success"}]), q], POOLS)
        == version
    )


def test_a_catalog_set_holds_its_default_and_looks_versions_up() -> None:
    assert BOTH.get(V2.version) is V2
    assert BOTH.get(None) is None
    assert BOTH.get("sha256:unknown") is None
    assert BOTH.current("sha256:unknown") is V1
    assert CatalogSet.of(V1).versions == {V1.version: V1}
    with pytest.raises(SpecError, match=r"default spec version .* is not among"):
        CatalogSet(V1, {V2.version: V2})


def test_activating_a_loaded_version_persists_it_and_says_so() -> None:
    part = Partition()
    step = part.feed(BOTH, _activate(V2.version))
    assert step.rejection is None
    assert "spec" in step.changed_keys
    assert _decisions(step) == [
        (
            None,
            "spec_activated",
            f"spec version {V2.version} is active"
            f" for new runs (was {V1.version}); runs already started keep"
            " theirs",
        )
    ]
    restored = CoordinatorState.load(0, 1, part.state.dump())
    assert restored.spec_version == V2.version
    again = part.feed(BOTH, _activate(V2.version, "again"))
    assert [d[1] for d in _decisions(again)] == ["ignored"]
    part.state.spec_version = None
    assert part.state.spec_version is None
    assert part.state.dump_key("spec") is None


def test_activating_an_unknown_version_is_rejected_with_what_to_do() -> None:
    step = Partition().feed(BOTH, _activate("sha256:0000000000000000"))
    assert step.rejection is not None
    assert step.rejection.code == "unknown_spec_version"
    assert "load the specs of that version on every coordinator" in step.rejection.reason
    assert step.changed_keys == ()


def test_an_activation_without_a_version_is_rejected() -> None:
    bad = CloudEvent(id="bad", source="ops", type="streamcoord.specs.activate", data={})
    step = Partition().feed(BOTH, bad)
    assert step.rejection is not None
    assert step.rejection.code == "invalid_data"


def test_activation_is_forwarded_once_to_every_other_partition() -> None:
    part = Partition(partition=1, partitions=3)
    step = part.feed(BOTH, _activate(V2.version))
    forwarded = [
        c.event
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, SpecsActivate)
    ]
    assert [e.id for e in forwarded] == [f"act-{V2.version}|p0", f"act-{V2.version}|p2"]
    other = Partition(partition=0, partitions=3)
    step = other.feed(BOTH, forwarded[0])
    assert other.state.spec_version == V2.version
    assert not [
        c for c in step.commands if isinstance(c, Publish) and isinstance(c.event, SpecsActivate)
    ]


# --- a run keeps its version ------------------------------------------------------------------


def test_a_run_finishes_on_its_version_while_new_runs_use_the_active_one() -> None:
    part = Partition()
    part.feed(BOTH, _go("old"))
    assert part.run("p/old").spec_version is None  # no version activated yet: the default
    step = part.feed(BOTH, _activate(V2.version))
    assert "run/p/old" in step.changed_keys  # pinned to the version it started on
    assert part.run("p/old").spec_version == V1.version
    assert _triggered(part.feed(BOTH, _go("new"))) == ["a", "d"]
    new = part.run("p/new")
    assert new.spec_version == V2.version
    assert list(new.stages) == ["a", "d", "b2", "c"]
    assert _triggered(part.feed(BOTH, _ok("a", "p/old"))) == ["b"]
    assert _triggered(part.feed(BOTH, _ok("b", "p/old"))) == ["c"]
    step = part.feed(BOTH, _ok("c", "p/old"))
    assert part.run("p/old").status == "succeeded"
    records = [run_record(change) for change in step.changed_runs]
    assert records[0].data.spec_version == V1.version
    assert records[0].data.stages == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}


def test_a_run_version_survives_the_changelog_and_old_dumps_load_without_one() -> None:
    part = Partition()
    part.feed(BOTH, _activate(V2.version))
    part.feed(BOTH, _go())
    restored = CoordinatorState.load(0, 1, part.state.dump())
    run = restored.run("p/k")
    assert run is not None
    assert run.spec_version == V2.version
    raw = run.dump()
    del raw["sv"]
    raw["st"] = {n: s[:8] for n, s in raw["st"].items()}  # version 3: eight stage fields
    old = type(run).load(raw)
    assert old.spec_version is None
    assert old.stages["a"].pool is None


# --- a run whose version is not loaded ------------------------------------------------------


def _started_on_v1(*events: CloudEvent) -> Partition:
    part = Partition()
    part.feed(BOTH, _activate(V1.version))
    part.feed(BOTH, _go())
    for event in events:
        part.feed(BOTH, event)
    return part


def test_a_run_whose_version_is_gone_takes_the_current_stages() -> None:
    part = _started_on_v1(_ok("a"))  # b triggered, c pending
    only_v2 = CatalogSet.of(V2)  # a restart with changed spec files
    step = part.feed(only_v2, StageHeartbeat(id="hb", source="x", data=_ref("b")))
    run = part.run()
    assert _statuses(run) == {
        "a": "succeeded",
        "b2": "triggered",
        "c": "pending",
        "d": "triggered",
        "b": "cancelled",
    }
    assert run.stages["b"].reason == "spec_removed"
    assert (
        "b",
        "cancelled",
        f"spec_removed: stage b is not in pipeline p of spec version {V2.version}",
    ) in _decisions(step)
    assert _triggered(step) == ["d", "b2"]  # in the current spec's topological order
    assert step.rejection is None  # the heartbeat of the removed stage is ignored
    late = part.feed(only_v2, _ok("b"))
    assert late.rejection is None  # a report of the cancelled attempt is recorded, not acted on
    assert [(s, a) for s, a, _ in _decisions(late)] == [("b", "ignored")]
    assert run.stages["b"].status == "cancelled"
    part.feed(only_v2, _ok("b2"))
    part.feed(only_v2, _ok("d"))
    part.feed(only_v2, _ok("c"))
    assert part.run().status == "succeeded"  # a removed stage counts as cancelled, not failed


def test_a_removed_stage_gives_back_its_pool_slot_and_timers() -> None:
    pooled = Catalog.build(
        [
            _pipeline(
                [{"name": "a", "pool": "db", "timeout_seconds": 60}, {"name": "w", "pool": "db"}]
            )
        ],
        POOLS,
    )
    part = Partition()
    part.feed(pooled, _go())
    part.feed(pooled, _grant("a"))  # a triggered with a timeout, w still waits for a slot
    without = CatalogSet.of(Catalog.build([_pipeline([{"name": "z"}])], POOLS))
    step = part.feed(without, _grant("w"))
    releases = _routed(step, "streamcoord.pool.release")
    assert [(r["stage"], r["attempt"]) for r in releases] == [("a", 1), ("w", 1), ("w", 1)]
    assert any(isinstance(c, CancelTimer) for c in step.commands)
    assert ("w", "ignored", "pool slot for a stage the spec removed") in _decisions(step)
    assert _statuses(part.run()) == {"z": "triggered", "a": "cancelled", "w": "cancelled"}
    assert part.run().timers == {}


def test_a_removed_stage_cannot_be_retried() -> None:
    part = _started_on_v1(StageFailed(id="f", source="x", data={**_ref("a"), "retryable": False}))
    assert part.run().status == "failed"
    step = part.feed(
        CatalogSet.of(V2), StageRetry(id="r", source="ops", data={"run_id": "p/k", "stage": "b"})
    )
    assert step.rejection is not None
    assert step.rejection.code == "unknown_stage"
    assert "it cannot be retried" in step.rejection.reason


def test_retrying_a_finished_run_under_a_new_spec_gives_it_the_new_stages() -> None:
    part = _started_on_v1(StageFailed(id="f", source="x", data={**_ref("a"), "retryable": False}))
    step = part.feed(
        CatalogSet.of(V2), StageRetry(id="r", source="ops", data={"run_id": "p/k", "stage": "a"})
    )
    assert step.rejection is None
    assert _triggered(step) == ["a", "d"]
    # what the failure decided downstream in the new spec waits again (c needs b2 now)
    assert _statuses(part.run()) == {
        "a": "triggered",
        "b2": "pending",
        "c": "pending",
        "d": "triggered",
        "b": "upstream_failed",
    }
    refused = part.feed(
        CatalogSet.of(V2), StageRetry(id="r2", source="ops", data={"run_id": "p/k", "stage": "d"})
    )
    assert refused.rejection is not None  # not a failed stage: nothing adopted, nothing settled


def test_a_retry_under_a_new_spec_leaves_finished_downstream_stages_alone() -> None:
    done = {"name": "e", "needs": ["a"], "trigger_rule": "all_done"}
    old = Catalog.build([_pipeline([{"name": "a"}, done])], POOLS)
    new = Catalog.build([_pipeline([{"name": "a"}, done, {"name": "f"}])], POOLS)
    part = Partition()
    part.feed(old, _go())
    part.feed(old, StageFailed(id="f", source="x", data={**_ref("a"), "retryable": False}))
    part.feed(old, _ok("e"))
    assert part.run().status == "failed"
    step = part.feed(new, StageRetry(id="r", source="ops", data={"run_id": "p/k", "stage": "a"}))
    assert _triggered(step) == ["a", "f"]
    assert _statuses(part.run()) == {"a": "triggered", "e": "succeeded", "f": "triggered"}


def test_a_run_whose_pipeline_is_gone_ends_cancelled_and_frees_what_it_holds() -> None:
    limited = Catalog.build(
        [
            _pipeline(
                [{"name": "a", "pool": "db", "timeout_seconds": 60}, {"name": "b", "needs": ["a"]}],
                concurrency={"max_active_runs": 1, "over_limit": "queue"},
            )
        ],
        POOLS,
    )
    part = Partition()
    part.feed(limited, _go())
    part.feed(limited, _grant("a"))
    part.feed(limited, _go("queued"))
    step = part.feed(CatalogSet.of(OTHER), StageStarted(id="s", source="x", data=_ref("a")))
    assert step.rejection is None
    run = part.run()
    assert run.status == "cancelled"
    assert _statuses(run) == {"a": "cancelled", "b": "cancelled"}
    assert {s.reason for s in run.stages.values()} == {"spec_removed"}
    assert [(r["stage"], r["attempt"]) for r in _routed(step, "streamcoord.pool.release")] == [
        ("a", 1)
    ]
    assert any(isinstance(c, CancelTimer) for c in step.commands)
    assert any(isinstance(c.event, RunFinished) for c in step.commands if isinstance(c, Publish))
    assert (
        None,
        "cancelled",
        f"spec_removed: pipeline p is not in spec version {OTHER.version}",
    ) in _decisions(step)
    pipe = part.state.misc("pipe/p")
    assert pipe is not None
    assert pipe["active"] == []
    assert pipe["waiting"] == ["p/queued"]  # admitted by nothing: its pipeline is gone too
    cancel = part.feed(
        CatalogSet.of(OTHER), RunCancel(id="c", source="ops", data={"run_id": "p/queued"})
    )
    assert cancel.rejection is None
    assert part.run("p/queued").status == "cancelled"
    assert part.state.misc("pipe/p") == {**pipe, "waiting": []}


def test_a_queued_run_starts_on_its_own_version() -> None:
    def limited(stages: list[dict[str, Any]]) -> Catalog:
        return Catalog.build(
            [_pipeline(stages, concurrency={"max_active_runs": 1, "over_limit": "queue"})], POOLS
        )

    old, new = limited([{"name": "a"}]), limited([{"name": "a2"}])
    versions = CatalogSet.of(old, new)
    part = Partition()
    part.feed(versions, _activate(old.version))
    part.feed(versions, _go())
    part.feed(versions, _go("queued"))
    part.feed(versions, _activate(new.version))
    part.feed(versions, _go("newer"))  # queued behind both
    assert _triggered(part.feed(versions, _ok("a"))) == ["a"]  # p/queued, on the old version
    assert _statuses(part.run("p/queued")) == {"a": "triggered"}
    # a restart without the old version: the run takes the new stages, its a is cancelled
    gone = CatalogSet.of(new)
    assert _triggered(part.feed(gone, _ok("a", "p/queued"))) == ["a2"]
    assert _statuses(part.run("p/queued")) == {"a2": "triggered", "a": "cancelled"}


def test_cancel_oldest_cancels_a_run_of_another_version_with_its_own_stages() -> None:
    def oldest(stages: list[dict[str, Any]]) -> Catalog:
        return Catalog.build(
            [_pipeline(stages, concurrency={"max_active_runs": 1, "over_limit": "cancel_oldest"})],
            POOLS,
        )

    old, new = oldest([{"name": "a", "pool": "db"}]), oldest([{"name": "a2"}])
    part = Partition()
    part.feed(old, _go())
    step = part.feed(CatalogSet.of(new), _go("next"))
    assert part.run().status == "cancelled"
    assert part.run().stages["a"].reason == "spec_removed"
    assert [r["stage"] for r in _routed(step, "streamcoord.pool.release")] == ["a"]
    assert _triggered(step) == ["a2"]


def test_a_removed_stage_without_a_pool_and_finished_ones_are_left_alone() -> None:
    part = _started_on_v1(_ok("a"), StageStarted(id="s", source="x", data=_ref("b")))
    step = part.feed(CatalogSet.of(OTHER), RunCancel(id="c", source="ops", data={"run_id": "p/k"}))
    assert step.rejection is None
    assert [d[0] for d in _decisions(step)] == ["b", "c", None]  # a had succeeded already
    assert _statuses(part.run()) == {"a": "succeeded", "b": "cancelled", "c": "cancelled"}
    assert not _routed(step, "streamcoord.pool.release")


def test_a_routed_arrival_for_a_trigger_this_version_lacks_is_rejected() -> None:
    part = Partition()
    arrival = CloudEvent(
        id="arr",
        source="streamcoord/coordinator",
        type="streamcoord.data.arrival",
        data={
            "pipeline": "p",
            "trigger": 0,
            "run_key": "k",
            "dataset": "d",
            "partition": "0",
            "event": {"id": "e"},
            "dedup": "x e",
        },
    )
    step = part.feed(V1, arrival)
    assert step.rejection is not None
    assert step.rejection.code == "unknown_trigger"
    assert "activate the same version everywhere" in step.rejection.reason


def test_explain_follows_the_run_version_and_a_need_the_run_lacks_is_pending() -> None:
    part = _started_on_v1()
    why = explain(BOTH, part.state, "p/k", "b")
    assert why is not None
    assert why.needs[0].need == "a"
    assert explain(BOTH, part.state, "p/k", "b2") is None  # not in the run's version
    # the run's version unloaded: the current spec, whose c needs b2 (not yet in the run)
    why = explain(CatalogSet.of(V2), part.state, "p/k", "c")
    assert why is not None
    assert [(n.need, n.status) for n in why.needs] == [("b2", "pending")]
    assert explain(V2, part.state, "p/k", "d") is None  # in the spec, not in the run
    assert explain(OTHER, part.state, "p/k", "a") is None


def test_run_records_built_later_carry_the_version() -> None:
    part = Partition()
    part.feed(BOTH, _activate(V2.version))
    step = decide(BOTH, part.state, _go(), T0)
    assert run_record(step.changed_runs[0]).data.spec_version == V2.version


def test_the_pool_a_stage_asked_survives_the_changelog() -> None:
    pooled = Catalog.build([_pipeline([{"name": "a", "pool": "db"}, {"name": "b"}])], POOLS)
    part = Partition()
    part.feed(pooled, _go())
    run = part.run()
    assert [len(s) for s in run.dump()["st"].values()] == [9, 8]  # b never asked for a slot
    restored = CoordinatorState.load(0, 1, part.state.dump()).run("p/k")
    assert restored is not None
    assert [s.pool for s in restored.stages.values()] == ["db", None]


def test_a_stage_a_new_spec_adds_subscribes_to_its_cross_pipeline_need() -> None:
    up = _pipeline([{"name": "s"}], name="up")
    old = Catalog.build([_pipeline([{"name": "a"}, {"name": "b", "needs": ["a"]}]), up], POOLS)
    new = Catalog.build(
        [
            _pipeline(
                [{"name": "a"}, {"name": "b", "needs": ["a"]}, {"name": "x", "needs": ["up.s"]}]
            ),
            up,
        ],
        POOLS,
    )
    part = Partition()
    part.feed(old, _go())
    step = part.feed(new, _ok("a"))
    subscribed = _routed(step, "streamcoord.need.subscribe")
    assert [(d["pipeline"], d["stage"], d["subscriber"]) for d in subscribed] == [
        ("up", "s", "p/k")
    ]
    assert _statuses(part.run()) == {"a": "succeeded", "b": "triggered", "x": "pending"}
