"""The structured encode fast path writes exactly the bytes and headers of the model-based path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streamcoord.core._construction import build
from streamcoord.events import encoding as codec
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    DecisionRecord,
    ExecutorBinding,
    RunRecord,
    RunRecordData,
    StageTrigger,
    StageTriggerData,
)

_text = st.text(max_size=12)
# 64-bit integers only: orjson (the model-based path) refuses larger ones.
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)
_times = (
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3, minutes=-30))]))
    | st.none()
)


def _model_based(event: CloudEvent) -> tuple[bytes, list[tuple[str, bytes]]]:
    """What encode produced before the fast path (and still does when it declines)."""
    attributes, json_data = codec._attributes(event)
    trace = [
        (n, str(attributes[n]).encode()) for n in ("traceparent", "tracestate") if n in attributes
    ]
    headers = [("content-type", b"application/cloudevents+json"), *trace]
    return codec._encode_structured(event, attributes, json_data), headers


def _same(event: CloudEvent) -> None:
    assert codec._structured_fast(event) is not None  # the case under test takes the fast path
    assert codec.encode(event) == _model_based(event)


@settings(max_examples=300)
@given(
    ident=st.text(min_size=1, max_size=8),
    time=_times,
    trace=_text | st.none(),
    params=st.dictionaries(_text, _json, max_size=3),
    caused=st.lists(_text, max_size=3),
    links=_text | st.none(),
    attempt=st.integers(1, 2**40),
)
def test_triggers_built_by_the_core(  # noqa: PLR0917  # hypothesis passes them by name
    ident: str,
    time: datetime | None,
    trace: str | None,
    params: dict[str, Any],
    caused: list[str],
    links: str | None,
    attempt: int,
) -> None:
    data = build(
        StageTriggerData,
        None,
        run_id=ident,
        pipeline="p",
        run_key=ident,
        stage="s",
        attempt=attempt,
        params=params,
        idempotency_key=ident,
        caused_by=caused,
        executor=ExecutorBinding(topic="t", config=params),
    )
    extra = None if links is None else {"sclinks": links, "scnone": None}
    _same(
        build(
            StageTrigger,
            extra,
            id=ident,
            source="src",
            time=time,
            subject=ident,
            traceparent=trace,
            tracestate=trace,
            data=data,
        )
    )


@settings(max_examples=200)
@given(
    stages=st.dictionaries(_text, _text, max_size=5),
    trace_id=_text | st.none(),
    stage=_text | st.none(),
    time=_times,
)
def test_run_records_and_decisions_with_null_data_fields(
    stages: dict[str, str],
    trace_id: str | None,
    stage: str | None,
    time: datetime | None,
) -> None:
    record = build(
        RunRecordData,
        None,
        run_id="r",
        pipeline="p",
        run_key="k",
        status="active",
        stages=stages,
        attempts={n: 1 for n in stages},
        caused_by=["e"],
        trace_id=trace_id,
    )
    _same(build(RunRecord, None, id="i", source="s", time=time, data=record))
    decision = build(
        Decision, None, run_id="r", stage=stage, action="a", reason="why", caused_by=[]
    )
    _same(build(DecisionRecord, None, id="i", source="s", time=time, data=decision))


@given(data=_json)
def test_validated_events_with_their_field_order(data: Any) -> None:
    event = StageTrigger.model_validate(
        {
            "id": "i",
            "source": "s",
            "time": "2024-05-01T12:30:00.123456+02:00",
            "sclinks": "l",
            "data": {
                "run_id": "r",
                "pipeline": "p",
                "run_key": "k",
                "stage": "s",
                "attempt": 1,
                "params": {"x": data},
                "idempotency_key": "k",
                "executor": {"topic": "t"},
            },
        }
    )
    _same(event)


def test_events_it_declines_go_the_model_based_way() -> None:
    untyped = CloudEvent(id="i", source="s", type="t", data={"a": 1})
    binary = CloudEvent(id="i", source="s", type="t", data=b"\x00")
    extended = build(
        StageTrigger,
        {"scnumber": 3},
        id="i",
        source="s",
        data=StageTriggerData.model_validate(
            {
                "run_id": "r",
                "pipeline": "p",
                "run_key": "k",
                "stage": "s",
                "attempt": 1,
                "idempotency_key": "k",
                "executor": {"topic": "t"},
            }
        ),
    )
    for event in (untyped, binary, extended):
        assert codec._structured_fast(event) is None
        assert codec.encode(event) == _model_based(event)
