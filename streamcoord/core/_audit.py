"""The audit trail: who caused each decision, and the hash chain that makes the log tamper-evident.

Principals. The edges that can vouch for a sender stamp it on the event as the CloudEvents
extension ``scprincipal`` (the API's and ingest's authenticated caller, the CLI's
``user@host``, an emitter's configured identity). The coordinator's own messages (timers,
schedule ticks, routed matches) are the coordinator's unless they carry the principal of the
event that caused them. A decision record names the principal of the event it was made on, and a
run the principal of the event that started it.

Chain. Each coordinator partition's decision records form a chain: record ``seq`` carries the
hash of record ``seq - 1`` (``prev``) and its own (``hash``: sha256 of the record's canonical
JSON without that field). The head (last seq and hash) is the partition's ``chain`` state key,
so a replay of the partition's log reproduces the chain byte for byte, and a restored
coordinator continues it. :func:`record_digest` is the one definition of the hash; the
verifier recomputes it from the records it reads.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

import orjson
from pydantic import TypeAdapter

from streamcoord.core._construction import build
from streamcoord.core._state import CoordinatorState
from streamcoord.events.models import (
    COORDINATOR_EVENT_TYPES,
    ChainLink,
    CloudEvent,
    Decision,
    DecisionCause,
    DecisionRecord,
)
from streamcoord.events.principal import PRINCIPAL_ATTRIBUTE, stamped_principal

__all__ = [
    "CHAIN_KEY",
    "COORDINATOR_PRINCIPAL",
    "PRINCIPAL_ATTRIBUTE",
    "chained_decision",
    "link",
    "principal_extra",
    "principal_of",
    "record_digest",
]

COORDINATOR_PRINCIPAL = "streamcoord/coordinator"
CHAIN_KEY = "chain"  # {"v": 1, "seq": last seq, "head": last hash}


def principal_of(event: CloudEvent) -> str | None:
    """Who vouches for ``event``: its stamped principal; the coordinator for its own messages
    that carry none; None when nobody does."""
    stamped = stamped_principal(event)
    if stamped is not None:
        return stamped
    return COORDINATOR_PRINCIPAL if event.type in COORDINATOR_EVENT_TYPES else None


def principal_extra(event: CloudEvent) -> dict[str, Any]:
    """The extension attributes that carry ``event``'s stamped principal on to the events the
    coordinator routes for it (nothing when it has none)."""
    stamped = stamped_principal(event)
    return {} if stamped is None else {PRINCIPAL_ATTRIBUTE: stamped}


def record_digest(record: DecisionRecord) -> str:
    """sha256 (hex) of ``record``'s canonical JSON (sorted keys, no nulls) without its hash.

    Fields added to decision records later must default to None (left out here), so that the
    records written before them keep their digest."""
    body = record.model_dump(mode="json", exclude_none=True)
    chain = body["data"].get("chain")
    if chain is not None:
        chain.pop("hash", None)
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def link(state: CoordinatorState, record: DecisionRecord) -> DecisionRecord:
    """``record`` as the next link of ``state``'s chain; the chain head moves to it."""
    head = state.misc_for_update(CHAIN_KEY, {"v": 1, "seq": 0, "head": ""})
    seq, prev, data = head["seq"] + 1, str(head["head"]), record.data
    body = _canonical(record, data)
    if body is None:  # extension attributes: the model's own dump words them
        unsealed = build(ChainLink, None, partition=state.partition, seq=seq, prev=prev, hash="")
        digest = record_digest(_with_chain(record, data, unsealed))
    else:
        body["data"]["chain"] = {"partition": state.partition, "seq": seq, "prev": prev}
        digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    head["seq"], head["head"] = seq, digest
    sealed = build(ChainLink, None, partition=state.partition, seq=seq, prev=prev, hash=digest)
    return _with_chain(record, data, sealed)


def chained_decision(
    state: CoordinatorState,
    *,
    ident: str,
    source: str,
    time: datetime,
    run_id: str,
    stage: str | None,
    action: str,
    reason: str,
    caused_by: list[str],
    principal: str | None,
    cause: DecisionCause,
) -> DecisionRecord:
    """The decision record of these fields (subject: the run) as the next link of ``state``'s
    chain: what :func:`link` makes of it, hashed from the fields without building the record
    twice (the core notes a decision or more per event)."""
    head = state.misc_for_update(CHAIN_KEY, {"v": 1, "seq": 0, "head": ""})
    seq, prev, partition = head["seq"] + 1, str(head["head"]), state.partition
    data: dict[str, Any] = {
        "run_id": run_id,
        "action": action,
        "reason": reason,
        "caused_by": caused_by,
        "event": cause.__dict__,  # three strings
        "chain": {"partition": partition, "seq": seq, "prev": prev},
    }
    if stage is not None:
        data["stage"] = stage
    if principal is not None:
        data["principal"] = principal
    body = {
        **_DEFAULT_ATTRIBUTES,
        "id": ident,
        "source": source,
        "subject": run_id,
        "time": _json_time(time, time.tzinfo),
        "data": data,
    }
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    head["seq"], head["head"] = seq, digest
    return build(
        DecisionRecord,
        None,
        id=ident,
        source=source,
        time=time,
        subject=run_id,
        data=build(
            Decision,
            None,
            run_id=run_id,
            stage=stage,
            action=action,
            reason=reason,
            caused_by=caused_by,
            principal=principal,
            event=cause,
            chain=build(ChainLink, None, partition=partition, seq=seq, prev=prev, hash=digest),
        ),
    )


def _canonical(record: DecisionRecord, data: Decision) -> dict[str, Any] | None:
    """What :func:`record_digest` hashes, chain aside, put together from the fields (a third of
    the cost of the model's dump); None for a record with extension attributes."""
    if record.__pydantic_extra__:
        return None
    cause = data.event
    decision = {
        "run_id": data.run_id,
        "stage": data.stage,
        "action": data.action,
        "reason": data.reason,
        "caused_by": data.caused_by,
        "principal": data.principal,
        "event": None if cause is None else cause.__dict__,  # three strings
    }
    # the attributes _with_chain keeps; the others take their defaults (the None ones drop out)
    body = {
        **_DEFAULT_ATTRIBUTES,
        "id": record.id,
        "source": record.source,
        "subject": record.subject,
        "time": None if record.time is None else _json_time(record.time, record.time.tzinfo),
        "data": {name: value for name, value in decision.items() if value is not None},
    }
    return {name: value for name, value in body.items() if value is not None}


_DEFAULT_ATTRIBUTES: dict[str, Any] = {
    name: field.default
    for name, field in DecisionRecord.model_fields.items()
    if name not in {"id", "source", "subject", "time", "data"} and field.default is not None
}


_DATETIME = TypeAdapter(datetime)


@lru_cache(maxsize=256)  # the decisions of one event share its time
def _json_time(value: datetime, zone: tzinfo | None) -> str:
    """``value`` as the model's JSON dump writes it (equal instants in other ``zone``s are
    equal keys: the zone keeps their texts apart)."""
    text: str = _DATETIME.dump_python(value, mode="json")
    return text


def _with_chain(record: DecisionRecord, data: Decision, chain: ChainLink) -> DecisionRecord:
    return build(
        DecisionRecord,
        record.__pydantic_extra__,
        id=record.id,
        source=record.source,
        time=record.time,
        subject=record.subject,
        data=build(Decision, None, **{**data.__dict__, "chain": chain}),
    )
