"""A run is one trace: deterministic ids, triggers carrying the attempt's context, span records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from streamcoord.core import Catalog, CoordinatorState, Publish, Step, decide, run_record
from streamcoord.core._tracing import (
    attempt_span_id,
    format_traceparent,
    parse_traceparent,
    run_span_id,
    run_trace_id,
)
from streamcoord.events.models import (
    ExternalEvent,
    RunCancel,
    StageFailed,
    StageSucceeded,
    StageTrigger,
)
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
EMITTER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {
                "name": "p",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "go"}],
                "stages": [
                    {"name": "a"},
                    {"name": "b", "needs": ["a"], "retries": {"max_attempts": 2}},
                    {"name": "c", "needs": ["a"]},
                    {"name": "d", "needs": ["b", "c"]},
                ],
            }
        )
    ]
)


def _triggers(step: Step) -> dict[str, StageTrigger]:
    return {
        c.event.data.stage: c.event
        for c in step.commands
        if isinstance(c, Publish) and isinstance(c.event, StageTrigger)
    }


def _done(stage: str, attempt: int = 1) -> StageSucceeded:
    return StageSucceeded(
        id=f"{stage}{attempt}",
        source="w",
        data={"run_id": "p/k", "stage": stage, "attempt": attempt},
    )


def _start(state: CoordinatorState, traceparent: str | None = EMITTER) -> Step:
    go = ExternalEvent(id="g", source="app", type="go", data={"key": "k"}, traceparent=traceparent)
    return decide(CATALOG, state, go, T0)


def test_a_run_joins_the_emitters_trace_and_its_triggers_carry_the_attempt_span() -> None:
    step = _start(CoordinatorState.empty())
    trigger = _triggers(step)["a"]
    assert trigger.traceparent == format_traceparent(
        "0af7651916cd43dd8448eb211c80319c", attempt_span_id("p/k", "a", 1)
    )
    records = [run_record(change) for change in step.changed_runs]
    assert records[-1].data.trace_id == "0af7651916cd43dd8448eb211c80319c"


def test_attempts_and_runs_end_as_spans_with_deterministic_ids_and_fan_in_links() -> None:
    state = CoordinatorState.empty()
    _start(state)
    later = T0 + timedelta(seconds=5)
    after_a = decide(CATALOG, state, _done("a"), later)
    (a_span,) = after_a.spans
    assert a_span.span_id == attempt_span_id("p/k", "a", 1)
    assert a_span.parent_id == run_span_id("p/k")
    assert (a_span.start, a_span.end, a_span.status) == (T0, later, "succeeded")
    decide(CATALOG, state, _done("b"), later)
    d_trigger = _triggers(decide(CATALOG, state, _done("c"), later))["d"]
    links = (d_trigger.model_extra or {})["sclinks"].split(",")
    assert [parse_traceparent(link)[1] for link in links] == [  # type: ignore[index]
        attempt_span_id("p/k", "b", 1),
        attempt_span_id("p/k", "c", 1),
    ]
    end = decide(CATALOG, state, _done("d"), later + timedelta(seconds=1))
    d_span, run_span = end.spans
    assert d_span.links == (attempt_span_id("p/k", "b", 1), attempt_span_id("p/k", "c", 1))
    assert (run_span.kind, run_span.span_id, run_span.parent_id) == (
        "run",
        run_span_id("p/k"),
        "b7ad6b7169203331",
    )
    assert (run_span.start, run_span.status) == (T0, "succeeded")


def test_failures_retries_and_cancels_end_the_attempt_span() -> None:
    state = CoordinatorState.empty()
    _start(state, None)
    decide(CATALOG, state, _done("a"), T0)
    failed = StageFailed(
        id="f", source="w", data={"run_id": "p/k", "stage": "b", "attempt": 1, "error": "boom"}
    )
    (retry_span,) = decide(CATALOG, state, failed, T0).spans
    assert retry_span.status == "failed"
    cancel = RunCancel(id="x", source="cli", data={"run_id": "p/k"})
    spans = decide(CATALOG, state, cancel, T0).spans
    assert [(s.kind, s.name, s.status) for s in spans] == [
        ("attempt", "stage c", "cancelled"),
        ("run", "run p", "cancelled"),
    ]
    assert spans[-1].parent_id is None
    assert spans[-1].trace_id == run_trace_id("p/k", None)


def test_state_written_before_traces_still_loads_and_ends_its_spans() -> None:
    state = CoordinatorState.empty()
    _start(state)
    raw = orjson.loads(state.dump_key("run/p/k") or b"")
    for key in ("tr", "tp", "at"):
        del raw[key]
    raw["st"] = {name: stage[:7] for name, stage in raw["st"].items()}  # version 2 stages
    old = CoordinatorState.load(0, 1, [("run/p/k", orjson.dumps({**raw, "v": 2}))])
    run = old.run("p/k")
    assert run is not None
    assert run.trace_id == run_trace_id("p/k", None)
    spans = decide(CATALOG, old, _done("a"), T0).spans
    assert spans == ()  # the attempt began before its start was recorded: no span to end
    cancel = RunCancel(id="x", source="cli", data={"run_id": "p/k"})
    (run_span,) = [s for s in decide(CATALOG, old, cancel, T0).spans if s.kind == "run"]
    assert run_span.start == T0


def test_trace_context_parsing_rejects_what_w3c_rejects() -> None:
    assert parse_traceparent(None) is None
    assert parse_traceparent("00-" + "0" * 32 + "-b7ad6b7169203331-01") is None
    assert parse_traceparent("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") is None
    assert parse_traceparent("00-xyz") is None
    assert run_trace_id("r", "garbage") == run_trace_id("r", None)
    assert len(run_span_id("r")) == 16
    assert run_span_id("r") != attempt_span_id("r", "a", 1)
