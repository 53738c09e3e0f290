"""Which partition must decide an event (issue 13): producers whose partitioner is not murmur2
(kcat, librdkafka clients) put a run's events elsewhere, and the runtime forwards them home."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamcoord.core import (
    Catalog,
    CoordinatorState,
    Publish,
    decide,
    home_partition,
    partition_for,
    partition_key_for,
)
from streamcoord.core._retention import sweep_event
from streamcoord.events.models import (
    CloudEvent,
    ExternalEvent,
    PipelinePause,
    PipelineResume,
    RunCancel,
    RunFinished,
    RunRequested,
    ScheduleTick,
    SpecsActivate,
    StageFailed,
    StageHeartbeat,
    StageProgress,
    StageRetry,
    StageStarted,
    StageSucceeded,
    StageTrigger,
    TimerFired,
)
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
N = 3


def _ref(run: str, stage: str = "a", attempt: int = 1) -> dict[str, Any]:
    return {"run_id": run, "stage": stage, "attempt": attempt}


def test_events_naming_a_run_belong_to_the_run_s_partition() -> None:
    events: list[CloudEvent] = [
        StageStarted(id="1", source="w", data=_ref("p/k#3")),
        StageHeartbeat(id="2", source="w", data=_ref("p/k")),
        StageSucceeded(id="3", source="w", data=_ref("p/k")),
        StageFailed(id="4", source="w", data={**_ref("p/k"), "error": "boom"}),
        StageProgress(id="5", source="w", data={**_ref("p/k"), "watermark": T0}),
        RunCancel(id="6", source="cli", data={"run_id": "p/k"}),
        StageRetry(id="7", source="cli", data={"run_id": "p/k#2", "stage": "a"}),
        TimerFired(
            id="8",
            source="sc",
            data={
                "timer_id": "t",
                "purpose": "start",
                "due": T0,
                "run_id": "p/k",
                "stage": "a",
                "attempt": 1,
            },
        ),
    ]
    for partitions in (1, 2, 7, 12):
        for event in events:
            assert home_partition(event, partitions) == partition_for("p/k", partitions)


def test_routed_events_belong_where_their_key_hashes() -> None:
    routed = CloudEvent(
        id="m", source="sc", type="streamcoord.run.match", data={}, sckey="pool/gpu"
    )
    assert home_partition(routed, 12) == partition_for("pool/gpu", 12)
    for partition in range(4):  # broadcast copies and sweeps are anchored to one partition each
        assert home_partition(sweep_event(partition, 4, T0), 4) == partition


def test_events_the_core_routes_itself_are_decidable_anywhere() -> None:
    anywhere: list[CloudEvent] = [
        RunRequested(id="1", source="cli", data={"pipeline": "p", "run_key": "k"}),
        ScheduleTick(id="2", source="sc", data={"pipeline": "p", "scheduled_time": T0}),
        RunFinished(
            id="3",
            source="sc",
            data={"run_id": "q/k", "pipeline": "q", "run_key": "k", "outcome": "succeeded"},
        ),
        PipelinePause(id="4", source="cli", data={"pipeline": "p"}),
        PipelineResume(id="5", source="cli", data={"pipeline": "p"}),
        SpecsActivate(id="6", source="cli", data={"version": "v"}),
        ExternalEvent(id="7", source="shop", type="order.placed", data={"run_id": "p/k"}),
    ]
    for event in anywhere:
        assert home_partition(event, 12) is None


def test_an_event_without_a_run_id_is_left_to_the_core_to_reject() -> None:
    no_run = TimerFired(id="t", source="sc", data={"timer_id": "t", "purpose": "start", "due": T0})
    malformed = CloudEvent(id="x", source="w", type=StageStarted.TYPE, data={"stage": "a"})
    assert home_partition(no_run, 12) is None
    assert home_partition(malformed, 12) is None


@given(
    run=st.text(min_size=1, max_size=20).filter(lambda s: "#" not in s),
    gen=st.integers(1, 5),
    partitions=st.integers(1, 64),
)
def test_home_agrees_with_the_key_the_runtime_gives(run: str, gen: int, partitions: int) -> None:
    run_id = run if gen == 1 else f"{run}#{gen}"
    event = StageSucceeded(id="e", source="w", data=_ref(run_id))
    assert home_partition(event, partitions) == partition_for(partition_key_for(event), partitions)


# --- the rule is enough: every event a producer makes lands on a wrong partition ---------------

_PIPELINE = Pipeline.model_validate(
    {
        "name": "p",
        "run_key": "event.data.key",
        "triggers": [{"kind": "event", "type": "go"}, {"kind": "manual"}],
        "stages": [{"name": "a"}, {"name": "b", "needs": ["a"]}],
    }
)


class _Partitions:
    """N partitions delivering in order; the core's own publishes are keyed with murmur2."""

    def __init__(self, *, forward: bool) -> None:
        self.catalog = Catalog.build([_PIPELINE])
        self.states = [CoordinatorState.empty(p, N) for p in range(N)]
        self.inboxes: list[deque[CloudEvent]] = [deque() for _ in range(N)]
        self.forward = forward
        self.rejections: list[str] = []
        self.triggers: list[StageTrigger] = []
        self.forwarded = 0
        self.clock = T0

    def produce_misplaced(self, event: CloudEvent) -> None:
        """As a non-murmur2 partitioner might: never the partition the key hashes to."""
        self.inboxes[(partition_for(partition_key_for(event), N) + 1) % N].append(event)

    def drain(self) -> None:
        while any(self.inboxes):
            for p, inbox in enumerate(self.inboxes):
                if inbox:
                    self._one(p, inbox.popleft())

    def _one(self, p: int, event: CloudEvent) -> None:
        home = home_partition(event, N)
        if self.forward and home is not None and home != p:
            self.forwarded += 1
            self.inboxes[home].append(event)
            return
        self.clock += timedelta(seconds=1)
        step = decide(self.catalog, self.states[p], event, self.clock)
        if step.rejection is not None:
            self.rejections.append(step.rejection.code)
        for command in step.commands:
            if isinstance(command, Publish) and isinstance(command.event, StageTrigger):
                self.triggers.append(command.event)
            elif isinstance(command, Publish) and command.topic is None:
                self.inboxes[partition_for(command.key, N)].append(command.event)


def _run_everything_misplaced(*, forward: bool) -> _Partitions:
    world = _Partitions(forward=forward)
    for key in ("k1", "k2", "k3", "k4"):
        world.produce_misplaced(
            ExternalEvent(id=f"go-{key}", source="s", type="go", data={"key": key})
        )
    world.produce_misplaced(
        RunRequested(id="req", source="cli", data={"pipeline": "p", "run_key": "k5"})
    )
    world.drain()
    done = 0
    for _ in range(2):  # stage a, then stage b once a succeeded
        triggers, done = world.triggers[done:], len(world.triggers)
        for trigger in triggers:
            ref = _ref(trigger.data.run_id, trigger.data.stage, trigger.data.attempt)
            world.produce_misplaced(StageStarted(id=f"s-{trigger.id}", source="w", data=ref))
            world.produce_misplaced(StageSucceeded(id=f"ok-{trigger.id}", source="w", data=ref))
        world.drain()
    return world


def test_forwarding_home_makes_every_misplaced_run_succeed() -> None:
    world = _run_everything_misplaced(forward=True)
    assert world.rejections == []
    keys = [(t.data.run_id, t.data.stage) for t in world.triggers]
    assert sorted(keys) == sorted({(f"p/k{i}", s) for i in range(1, 6) for s in "ab"})
    for p, state in enumerate(world.states):
        for run in state.runs():
            assert partition_for(run.base, N) == p
            assert run.status == "succeeded"
    assert world.forwarded > 0


def test_without_forwarding_misplaced_stage_reports_are_unknown_runs() -> None:
    world = _run_everything_misplaced(forward=False)
    assert "unknown_run" in world.rejections
