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
from typing import Any

import orjson

from streamcoord.core._construction import build
from streamcoord.core._state import CoordinatorState
from streamcoord.events.models import (
    COORDINATOR_EVENT_TYPES,
    ChainLink,
    CloudEvent,
    Decision,
    DecisionRecord,
)
from streamcoord.events.principal import PRINCIPAL_ATTRIBUTE, stamped_principal

__all__ = [
    "CHAIN_KEY",
    "COORDINATOR_PRINCIPAL",
    "PRINCIPAL_ATTRIBUTE",
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
    unsealed = build(ChainLink, None, partition=state.partition, seq=seq, prev=prev, hash="")
    digest = record_digest(_with_chain(record, data, unsealed))
    head["seq"], head["head"] = seq, digest
    sealed = build(ChainLink, None, partition=state.partition, seq=seq, prev=prev, hash=digest)
    return _with_chain(record, data, sealed)


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
