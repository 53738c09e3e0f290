"""The events partitions route each other are built from their models (no plain dicts), and
their bytes on the internal topic are what they were when the core built them as dicts."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from streamcoord.core import Catalog, CatalogSet, CoordinatorState, Publish
from streamcoord.core._construction import build
from streamcoord.core._context import Context
from streamcoord.events.codec import decode, encode
from streamcoord.events.internal import (
    LimitAcquire,
    LimitAcquireData,
    PoolAcquire,
    PoolAcquireData,
    RunMatch,
    RunMatchData,
)
from streamcoord.events.models import ExternalEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _routed(type_: str, key: str, ident: str, data: BaseModel) -> Publish:
    ctx = Context(
        CatalogSet.of(Catalog.build([], [])),
        CoordinatorState.empty(),
        ExternalEvent(id="e", source="s", type="t"),
        T0,
    )
    ctx.route(key, type_, ident, data)
    [command] = ctx.commands
    assert isinstance(command, Publish)
    return command


def test_a_routed_limit_request_has_the_bytes_it_always_had() -> None:
    data = build(LimitAcquireData, None, pipeline="etl", run_id="etl/k", force=False)
    command = _routed(LimitAcquire.TYPE, "active/etl", "acquire|etl/k", data)
    assert isinstance(command.event, LimitAcquire)
    value, _ = encode(command.event)
    assert value == (
        b'{"specversion":"1.0","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json",'
        b'"id":"acquire|etl/k","source":"streamcoord/coordinator","type":"streamcoord.limit.acquire"'
        b',"sckey":"active/etl","data":{"pipeline":"etl","run_id":"etl/k","force":false}}'
    )


def test_routed_fields_are_typed_by_the_model_and_decode_as_the_same_data() -> None:
    fields = {
        "pool": "warehouse",
        "run_id": "p/k",
        "stage": "load",
        "attempt": 1,
        "priority": 0,
        "reply": "p/k",
    }
    data = build(PoolAcquireData, None, **fields)
    command = _routed(PoolAcquire.TYPE, "pool/warehouse", "acquire|p/k|load|1", data)
    assert isinstance(command.event.data, PoolAcquireData)
    decoded = decode(*encode(command.event))
    # the decoder leaves internal data a dict; the core validates it with the same model
    assert PoolAcquireData.model_validate(decoded.data) == command.event.data
    assert decoded.data == fields


def test_a_routed_match_has_the_bytes_it_had_as_a_dict() -> None:
    data = RunMatchData.model_construct(
        pipeline="etl", run_key="k", trigger={"id": "e", "type": "t"}, caused=["e"], params={},
        rerun=False, dedup="s|e",
    )  # fmt: skip
    command = _routed(RunMatch.TYPE, "etl/k", "match|etl|s|e", data)
    value, headers = encode(command.event)
    assert value.endswith(
        b'"data":{"pipeline":"etl","run_key":"k","trigger":{"id":"e","type":"t"},"caused":["e"],'
        b'"params":{},"rerun":false,"dedup":"s|e"}}'
    )
    assert RunMatchData.model_validate(decode(value, headers).data) == data
