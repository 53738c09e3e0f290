"""Invariants while specs change under running runs: decide never raises, a run never stays
unfinished once an event met it under a spec without its pipeline, and replay is exact."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from streamcoord.core import (
    Catalog,
    CatalogSet,
    CoordinatorState,
    Publish,
    SetTimer,
    Step,
    decide,
)
from streamcoord.core.replay import Record, step_json
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    RunCancel,
    RunRequested,
    SpecsActivate,
    StageFailed,
    StageRetry,
    StageStarted,
    StageSucceeded,
    TimerFired,
)
from streamcoord.pipelines.models import Pipeline, Pool

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAMES = ["a", "b", "c", "d", "e"]
RULES = ["all_success", "all_done", "one_success", "none_failed"]
KEYS = ["k0", "k1"]
LIMITS = [None, "queue", "skip", "cancel_oldest"]
UNFINISHED = frozenset({"active", "queued"})
ABOUT_A_RUN = frozenset(
    {
        "streamcoord.stage.started",
        "streamcoord.stage.succeeded",
        "streamcoord.stage.failed",
        "streamcoord.stage.retry",
        "streamcoord.run.cancel",
        "streamcoord.timer.fired",
        "streamcoord.pool.grant",
    }
)


@st.composite
def variants(draw: st.DrawFn) -> Catalog:
    """One version of the specs: pipeline ``p`` (random stages, needs, pools, limits) or none."""
    pipelines = [
        Pipeline.model_validate(
            {
                "name": "q",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "go"}],
                "stages": [{"name": "a", "pool": "db"}],
            }
        )
    ]
    if draw(st.integers(0, 4)):  # one version in five has lost pipeline p
        # "a" always, so that events about a run often name a stage every version has
        names = ["a", *draw(st.lists(st.sampled_from(NAMES[1:]), max_size=3, unique=True))]
        stages = []
        for i, name in enumerate(names):
            stage: dict[str, Any] = {
                "name": name,
                "needs": draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=2))
                if i
                else [],
                "trigger_rule": draw(st.sampled_from(RULES)),
                "retries": {"max_attempts": draw(st.integers(1, 2))},
            }
            if draw(st.integers(0, 3)) == 0:  # a cross-pipeline need, answered by routing
                stage["needs"] = [*stage["needs"], "q.a"]
            if draw(st.booleans()):
                stage["pool"] = "db"
            if draw(st.booleans()):
                stage["timeout_seconds"] = 30
            stages.append(stage)
        limit = draw(st.sampled_from(LIMITS))
        spec: dict[str, Any] = {
            "name": "p",
            "run_key": "event.data.key",
            "stages": stages,
            "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
        }
        if limit is not None:
            spec["concurrency"] = {"max_active_runs": 1, "over_limit": limit}
        pipelines.append(Pipeline.model_validate(spec))
    return Catalog.build(pipelines, [Pool(name="db", slots=1)])


ACTIONS = st.one_of(
    st.tuples(st.just("go"), st.sampled_from(KEYS)),
    st.tuples(st.just("request"), st.sampled_from(KEYS)),
    st.tuples(
        st.sampled_from(["started", "succeeded", "failed", "retry"]),
        st.sampled_from(KEYS),
        st.sampled_from(["a", *NAMES]),
        st.integers(1, 2),
    ),
    st.tuples(st.just("cancel"), st.sampled_from(KEYS)),
    st.tuples(st.just("timer"), st.integers(0, 3)),
    st.tuples(st.just("activate"), st.integers(0, 3)),  # 3: a version not loaded
    st.tuples(st.just("swap"), st.integers(0, 2), st.sets(st.integers(0, 2))),
    st.tuples(st.just("swap"), st.integers(0, 2), st.just(set())),  # only the new default
)


class World:
    """One partition; routed events are fed back at once, timers when an action fires them."""

    def __init__(self, versions: list[Catalog]) -> None:
        self.versions = versions
        self.catalogs = CatalogSet.of(versions[0], *versions[1:])
        self.given: Catalog | CatalogSet = self.catalogs  # what decide is called with
        self.state = CoordinatorState.empty()
        self.now = T0
        self.timers: dict[str, SetTimer] = {}
        self.log: list[tuple[Catalog | CatalogSet, datetime, CloudEvent]] = []
        self.n = 0

    def act(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "swap":  # a restart with other spec files: another default, some unloaded
            default = self.versions[action[1]]
            others = [self.versions[i] for i in sorted(action[2])]
            self.catalogs = CatalogSet.of(default, *others)
            # a plain catalog is a set of one version
            self.given = self.catalogs if len(self.catalogs.versions) > 1 else default
            return
        if kind == "timer":
            if not self.timers:
                return
            timer = sorted(self.timers.values(), key=lambda t: (t.due, t.timer_id))[
                action[1] % len(self.timers)
            ]
            del self.timers[timer.timer_id]
            self.now = max(self.now, timer.due)
            self.feed(timer.event)
            return
        self.feed(self.event(action))

    def event(self, action: tuple[Any, ...]) -> CloudEvent:
        self.n += 1
        if action[0] == "activate":
            version = (
                self.versions[action[1]].version
                if action[1] < len(self.versions)
                else "sha256:0000000000000000"
            )
            return SpecsActivate(id=f"e{self.n}", source="ops", data={"version": version})
        return _BUILD[action[0]](f"e{self.n}", action)

    def feed(self, event: CloudEvent) -> None:
        queue = deque([event])
        while queue:
            current = queue.popleft()
            self.now += timedelta(seconds=1)
            self.log.append((self.given, self.now, current))
            step = decide(self.given, self.state, current, self.now)  # must not raise
            self.check(current, step)
            for command in step.commands:
                if isinstance(command, Publish) and command.topic is None:
                    queue.append(command.event)
                elif isinstance(command, SetTimer):
                    self.timers[command.timer_id] = command
                else:
                    self.timers.pop(getattr(command, "timer_id", ""), None)

    def check(self, event: CloudEvent, step: Step) -> None:
        """The run an accepted event names follows a spec with its pipeline and stages, or ended.

        (A match folding into a run does not look at its spec: the next event about it does.)
        """
        data = event.data if isinstance(event.data, dict) else event.data.model_dump()
        if event.type not in ABOUT_A_RUN or f"run/{data['run_id']}" not in step.changed_keys:
            return
        run = self.state.run(data["run_id"])
        assert run is not None
        if run.status not in UNFINISHED:
            return
        current = self.catalogs.current(self.state.spec_version)
        own = self.catalogs.get(run.spec_version) or current
        cp = own.pipelines.get(run.pipeline)
        assert cp is not None, f"{run.run_id} is {run.status} without its pipeline"
        assert set(cp.stages) <= set(run.stages), f"{run.run_id} lacks stages of its spec"
        for name, stage in run.stages.items():
            if name not in cp.stages:
                assert stage.status in {
                    "succeeded",
                    "failed",
                    "timed_out",
                    "skipped",
                    "cancelled",
                    "upstream_failed",
                }, (run.run_id, name)


def _stage_event(cls: type[CloudEvent]) -> Callable[[str, tuple[Any, ...]], CloudEvent]:
    return lambda ident, a: cls(
        id=ident, source="x", data={"run_id": f"p/{a[1]}", "stage": a[2], "attempt": a[3]}
    )


_BUILD: dict[str, Callable[[str, tuple[Any, ...]], CloudEvent]] = {
    "go": lambda ident, a: ExternalEvent(id=ident, source="app", type="go", data={"key": a[1]}),
    "request": lambda ident, a: RunRequested(
        id=ident, source="ops", data={"pipeline": "p", "run_key": a[1]}
    ),
    "cancel": lambda ident, a: RunCancel(id=ident, source="ops", data={"run_id": f"p/{a[1]}"}),
    "retry": lambda ident, a: StageRetry(
        id=ident, source="ops", data={"run_id": f"p/{a[1]}", "stage": a[2]}
    ),
    "started": _stage_event(StageStarted),
    "succeeded": _stage_event(StageSucceeded),
    "failed": _stage_event(StageFailed),
}


def _replayed(log: list[tuple[Catalog | CatalogSet, datetime, CloudEvent]]) -> list[bytes]:
    state = CoordinatorState.empty()
    return [
        step_json(Record(now, event, decide(catalogs, state, event, now), False))
        for catalogs, now, event in log
    ]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(variants(), min_size=3, max_size=3), st.lists(ACTIONS, min_size=8, max_size=30))
def test_decide_never_raises_and_runs_end_with_their_pipeline(
    versions: list[Catalog], actions: list[tuple[Any, ...]]
) -> None:
    world = World(versions)
    for action in actions:
        world.act(action)
    ended = {
        r.status
        for r in world.state.runs()
        if any(s.reason == "spec_removed" for s in r.stages.values())
    }
    event(f"runs with a spec_removed stage: {sorted(ended)}")  # --hypothesis-show-statistics
    first = _replayed(world.log)
    assert first == _replayed(world.log)
    # the replay output is what the world saw, step for step
    assert [orjson.loads(line)["event"]["id"] for line in first] == [e.id for _, _, e in world.log]


def test_a_timer_of_a_run_whose_spec_lost_the_pipeline_ends_it() -> None:
    """A deterministic instance of the property: only a timer touches the run."""
    with_p = Catalog.build(
        [
            Pipeline.model_validate(
                {
                    "name": "p",
                    "run_key": "event.data.key",
                    "triggers": [{"kind": "event", "type": "go"}],
                    "stages": [{"name": "a", "timeout_seconds": 5}],
                }
            )
        ],
        [],
    )
    without = Catalog.build([], [])
    world = World([with_p, without])
    world.act(("go", "k0"))
    world.act(("swap", 1, set()))
    world.act(("timer", 0))
    run = world.state.run("p/k0")
    assert run is not None
    assert run.status == "cancelled"
    assert any(isinstance(event, TimerFired) for _, _, event in world.log)
