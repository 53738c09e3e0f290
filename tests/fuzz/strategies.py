"""Hypothesis strategies for events-topic records: CloudEvents in both content modes, every
event type's data valid-ish or hostile (wrong types, deep nesting, long strings, non-UTF-8,
NaN, big integers), odd headers and keys."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from streamcoord.events.models import OWN_EVENT_TYPES

Headers = list[tuple[str, bytes]]
Raw = tuple[bytes | None, Headers, bytes | None]  # value, headers, key

INTERNAL_TYPES = (
    "streamcoord.run.match",
    "streamcoord.data.arrival",
    "streamcoord.pool.acquire",
    "streamcoord.pool.release",
    "streamcoord.pool.grant",
    "streamcoord.need.subscribe",
)
EXTERNAL_TYPES = ("dataset.landed", "streamcoord.stage.outcome", "other.thing")
TYPES = (*sorted(OWN_EVENT_TYPES), *INTERNAL_TYPES, *EXTERNAL_TYPES)
PIPELINES = ("ingest", "daily", "ml", "features", "nope")
STAGES = (
    "check_raw",
    "load",
    "index",
    "transform",
    "quality_check",
    "publish",
    "train",
    "evaluate",
    "deploy",
    "stream_features",
    "nope",
)
RUN_KEYS = ("clicks/2024-05-01T01", "2024-05-01", "online", "k")
RUN_IDS = (*(f"{p}/{k}" for p in PIPELINES[:4] for k in RUN_KEYS), "ingest/k#2", "x")
# Field names the data of streamcoord's events use, to be filled with right or wrong values.
FIELDS = (
    "run_id",
    "stage",
    "attempt",
    "pipeline",
    "run_key",
    "params",
    "outputs",
    "error",
    "retryable",
    "watermark",
    "reason",
    "timer_id",
    "purpose",
    "due",
    "scheduled_time",
    "outcome",
    "trigger",
    "caused",
    "rerun",
    "dedup",
    "dataset",
    "partition",
    "event",
    "pool",
    "priority",
    "reply",
    "subscriber",
    "need",
    "date",
    "uri",
    "x",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),  # beyond 64 bits too
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "2024-05-01",
            "2026-01-01T00:00:00Z",
            "yesterday",
            "retry",
            "succeeded",
            "clicks",
            "orders",
            *PIPELINES,
            *STAGES,
            *RUN_IDS,
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(levels: int, leaf: Any) -> Any:
    for _ in range(levels):
        leaf = [leaf]
    return leaf


hostile = st.one_of(
    st.integers(40, 400).map(lambda n: _nested(n, 1)),
    st.integers(1000, 3000).map(lambda n: "x" * n),  # over the test settings' string limit
    st.sampled_from([float("nan"), float("inf"), 2**80, -(2**80), "\ud800"]),
)
values = st.one_of(
    st.sampled_from(RUN_IDS),
    st.sampled_from(STAGES),
    st.sampled_from(PIPELINES),
    st.integers(1, 3),
    json_values,
    hostile,
)
data_strategy = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=8),
    json_values,
    hostile,
    st.binary(max_size=30),
)


@st.composite
def attributes(draw: st.DrawFn) -> dict[str, Any]:
    """A CloudEvent's attributes, usually complete, sometimes missing or wrong."""
    attrs: dict[str, Any] = {
        "specversion": draw(st.sampled_from(["1.0", "1.0", "0.3", 1])),
        "id": draw(st.text(min_size=1, max_size=8) | st.sampled_from(["e1", "e2", ""])),
        "source": draw(st.sampled_from(["s3://landing/a", "cli", "streamcoord/coordinator", ""])),
        "type": draw(st.sampled_from(TYPES) | st.text(max_size=10) | json_values),
    }
    for name in draw(
        st.lists(st.sampled_from(["specversion", "id", "source", "type"]), max_size=1)
    ):
        attrs.pop(name, None)
    optional = {
        "time": st.sampled_from(["2024-05-01T03:00:00Z", "not a time", 5]),
        "subject": st.text(max_size=8),
        "datacontenttype": st.sampled_from(
            ["application/json", "text/plain", "application/octet-stream", "application/x+json"]
        ),
        "sckey": st.sampled_from(RUN_IDS),
        "sctarget": st.sampled_from(RUN_IDS),
        "scneed": st.text(max_size=5),
        "traceparent": st.text(max_size=60),
        "ext": json_values,
    }
    for name in draw(st.lists(st.sampled_from(sorted(optional)), max_size=3, unique=True)):
        attrs[name] = draw(optional[name])
    return attrs


def _json(value: Any) -> bytes:
    """JSON as a careless producer writes it: NaN, Infinity and big integers included."""
    try:
        return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
    except (RecursionError, ValueError):
        return b"[]"


@st.composite
def records(draw: st.DrawFn) -> Raw:
    """One events-topic record: structured, binary, or bytes that are neither."""
    key = draw(st.none() | st.sampled_from([b"k", b"ingest/k"]) | st.binary(max_size=8))
    extra = draw(st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=12)), max_size=3))
    mode = draw(st.sampled_from(["structured", "binary", "binary", "raw"]))
    if mode == "raw":
        return draw(st.none() | st.binary(max_size=64)), extra, key
    attrs = draw(attributes())
    data = draw(data_strategy)
    if mode == "structured":
        if isinstance(data, bytes):
            attrs["data_base64"] = draw(st.sampled_from(["!!", "aGk="]))
        else:
            attrs["data"] = data
        return _json(attrs), [("content-type", b"application/cloudevents+json"), *extra], key
    headers: Headers = []
    for name, attribute in attrs.items():
        text = attribute if isinstance(attribute, str) else json.dumps(attribute)
        raw = text.encode("utf-8", "surrogatepass")
        if name == "datacontenttype":
            headers.append(("content-type", raw))
        else:
            headers.append(
                (
                    f"ce_{name}",
                    draw(st.just(raw) | st.binary(max_size=6))
                    if draw(st.integers(0, 9)) == 0
                    else raw,
                )
            )
    value = data if isinstance(data, bytes) else _json(data)
    return value, [*headers, *extra], key
