"""The audit trail the core writes: principals on decisions and runs, and each partition's chain."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from streamcoord.core import Catalog, CoordinatorState, Publish, Step, decide
from streamcoord.core._audit import (
    CHAIN_KEY,
    COORDINATOR_PRINCIPAL,
    link,
    principal_of,
    record_digest,
)
from streamcoord.core._records import record_of
from streamcoord.events.models import (
    CloudEvent,
    DecisionRecord,
    ExternalEvent,
    PipelinePause,
    StageRef,
    StageStarted,
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
                "stages": [{"name": "a", "timeout_seconds": 60}],
            }
        ),
        Pipeline.model_validate(
            {
                "name": "q",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "go"}],
                "stages": [{"name": "b"}],
            }
        ),
    ]
)


def _go(ident: str, key: str, **extensions: Any) -> ExternalEvent:
    return ExternalEvent(id=ident, source="app", type="go", data={"key": key}, **extensions)


def _decisions(step: Step) -> list[DecisionRecord]:
    return [
        c.event
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, DecisionRecord)
    ]


def _drive(state: CoordinatorState, events: list[CloudEvent]) -> list[Step]:
    """Decide ``events`` and everything they route back, on one partition."""
    steps, queue = [], deque(events)
    while queue:
        step = decide(CATALOG, state, queue.popleft(), T0)
        steps.append(step)
        queue.extend(c.event for c in step.commands if isinstance(c, Publish) and c.topic is None)
    return steps


def test_a_decision_names_the_principal_and_event_it_was_made_on() -> None:
    state = CoordinatorState.empty()
    step = decide(CATALOG, state, _go("e1", "k", scprincipal="alice@laptop"), T0)
    (triggered, *_) = _decisions(step)
    assert triggered.data.principal == "alice@laptop"
    assert triggered.data.event is not None
    assert (triggered.data.event.type, triggered.data.event.source, triggered.data.event.id) == (
        "go",
        "app",
        "e1",
    )
    run = state.run("p/k")
    assert run is not None
    assert run.principal == "alice@laptop"
    assert record_of(run, "app", "e1", T0).data.principal == "alice@laptop"


def test_an_event_nobody_vouched_for_has_no_principal_and_the_coordinators_own_have_its() -> None:
    state = CoordinatorState.empty()
    decide(CATALOG, state, _go("e1", "k"), T0)
    run = state.run("p/k")
    assert run is not None
    assert run.principal is None
    (timer_id,) = run.timers
    timer = state.timers()[0][2]
    assert timer.data.timer_id == timer_id
    fired = decide(CATALOG, state, timer, T0 + timedelta(minutes=5))
    assert {d.data.principal for d in _decisions(fired)} == {COORDINATOR_PRINCIPAL}
    assert principal_of(_go("x", "k", scprincipal="")) is None  # an empty claim is none


def test_routed_and_broadcast_events_carry_the_principal_of_their_cause() -> None:
    # two partitions: a match for a run owned by the other partition is routed there
    routed = []
    for partition in (0, 1):
        state = CoordinatorState.empty(partition, 2)
        step = decide(CATALOG, state, _go("e1", "k", scprincipal="svc"), T0)
        routed += [c.event for c in step.commands if isinstance(c, Publish) and c.topic is None]
    assert routed
    assert all((e.model_extra or {}).get("scprincipal") == "svc" for e in routed)
    pause = PipelinePause(id="p1", source="cli", data={"pipeline": "p"}, scprincipal="ops")
    step = decide(CATALOG, CoordinatorState.empty(0, 2), pause, T0)
    (forwarded,) = [c.event for c in step.commands if isinstance(c, Publish) and c.topic is None]
    assert (forwarded.model_extra or {})["scprincipal"] == "ops"
    assert principal_of(forwarded) == "ops"


def test_each_partitions_decisions_form_a_hash_chain() -> None:
    state = CoordinatorState.empty()
    steps = _drive(
        state,
        [
            _go("e1", "k"),
            _go("e2", "k2"),
            StageStarted(id="s1", source="exec", data=StageRef(run_id="p/k", stage="a", attempt=1)),
        ],
    )
    chain = [d for step in steps for d in _decisions(step)]
    assert len(chain) >= 4
    previous = ""
    for seq, record in enumerate(chain, start=1):
        link = record.data.chain
        assert link is not None
        assert (link.partition, link.seq, link.prev) == (0, seq, previous)
        assert link.hash == record_digest(record)
        previous = link.hash
    assert state.misc(CHAIN_KEY) == {"v": 1, "seq": len(chain), "head": previous}
    assert all(CHAIN_KEY in step.changed_keys for step in steps if _decisions(step))


def test_a_restored_partition_continues_its_chain_as_a_replay_does() -> None:
    events: list[CloudEvent] = [_go("e1", "k"), _go("e2", "k2"), _go("e3", "k3")]
    straight = [d for s in _drive(CoordinatorState.empty(), events) for d in _decisions(s)]
    state = CoordinatorState.empty()
    first = [d for s in _drive(state, events[:2]) for d in _decisions(s)]
    restored = CoordinatorState.load(0, 1, state.dump())
    rest = [d for s in _drive(restored, events[2:]) for d in _decisions(s)]
    assert [d.data.chain for d in first + rest] == [d.data.chain for d in straight]


def test_any_change_to_a_record_changes_its_digest() -> None:
    (record, *_) = _decisions(decide(CATALOG, CoordinatorState.empty(), _go("e1", "k"), T0))
    altered = record.model_copy(update={"data": record.data.model_copy(update={"reason": "x"})})
    assert record_digest(altered) != record_digest(record)
    unchained = record.model_copy(update={"data": record.data.model_copy(update={"chain": None})})
    assert record_digest(unchained) != record_digest(record)


def test_a_linked_record_verifies_whatever_attributes_it_holds() -> None:
    # the chain's hash is record_digest's whatever the record carries: every optional attribute
    # set, times in other zones, an extension attribute (the verifier recomputes it from these)
    (record, *_) = _decisions(decide(CATALOG, CoordinatorState.empty(), _go("e1", "k"), T0))
    full = record.model_copy(
        update={
            "dataschema": "urn:x",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "tracestate": "a=b",
            "time": T0.astimezone(timezone(timedelta(hours=2))),
        }
    )
    bare = record.model_copy(
        update={
            "subject": None,
            "time": None,
            "data": record.data.model_copy(update={"event": None}),
        }
    )
    extended = DecisionRecord.model_validate({**record.model_dump(), "scx": "y"})
    for original in (record, full, bare, extended):
        linked = link(CoordinatorState.empty(), original)
        assert linked.data.chain is not None
        assert linked.data.chain.hash == record_digest(linked)
