"""``verify_chains`` over decision records as the topic stores them: intact, and each kind of
tampering named at the record where the chain breaks."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime

import orjson

from streamcoord.audit import run_story, story_json, verify_chains
from streamcoord.core import Catalog, CoordinatorState, Publish, decide
from streamcoord.core._audit import record_digest
from streamcoord.events.codec import decode, encode
from streamcoord.events.models import CloudEvent, DecisionRecord, ExternalEvent
from streamcoord.kafka.records import StoredRecord
from streamcoord.pipelines.models import Pipeline

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CATALOG = Catalog.build(
    [
        Pipeline.model_validate(
            {
                "name": "p",
                "run_key": "event.data.key",
                "triggers": [{"kind": "event", "type": "go"}],
                "stages": [{"name": "a"}, {"name": "b", "needs": ["a"]}],
            }
        )
    ]
)


def _topic(partitions: int = 2) -> list[StoredRecord]:
    """The decision records of a few runs over ``partitions`` coordinator partitions, stored
    on a one-partition decisions topic in the order they were made."""
    states = [CoordinatorState.empty(p, partitions) for p in range(partitions)]
    queue: deque[CloudEvent] = deque(
        ExternalEvent(id=f"e{n}", source="app", type="go", data={"key": f"k{n}"}, scprincipal="svc")
        for n in range(6)
    )
    stored: list[StoredRecord] = []
    while queue:
        event = queue.popleft()
        for state in states:
            step = decide(CATALOG, state, event, T0)
            for command in step.commands:
                if isinstance(command, Publish) and isinstance(command.event, DecisionRecord):
                    value, headers = encode(command.event)
                    stored.append(StoredRecord(0, len(stored), 0, b"k", value, headers))
                elif isinstance(command, Publish) and command.topic is None:
                    queue.append(command.event)
    return stored


def _replace(stored: list[StoredRecord], index: int, value: bytes | None) -> list[StoredRecord]:
    old = stored[index]
    return [
        *stored[:index],
        StoredRecord(old.partition, old.offset, old.timestamp, old.key, value, old.headers),
        *stored[index + 1 :],
    ]


def _edit(record: StoredRecord, reason: str, *, rehash: bool = False) -> bytes:
    body = orjson.loads(record.value or b"")
    body["data"]["reason"] = reason
    if rehash:  # a forger who recomputes the record's own hash
        forged = DecisionRecord.model_validate(body)
        body["data"]["chain"]["hash"] = record_digest(forged)
    return orjson.dumps(body)


def test_an_untouched_topic_verifies() -> None:
    report = verify_chains(_topic())
    assert report.ok
    assert [c.chain for c in report.chains] == [0, 1]
    assert sum(c.records for c in report.chains) == len(_topic())


def test_an_altered_record_is_named() -> None:
    stored = _topic()
    report = verify_chains(_replace(stored, 3, _edit(stored[3], "nothing happened")))
    (broken,) = report.breaks
    assert (broken.partition, broken.offset) == (0, 3)
    assert "altered" in broken.problem
    assert broken.describe("t").startswith("t[0]@3")


def test_an_altered_record_with_a_recomputed_hash_breaks_the_next_link() -> None:
    stored = _topic(1)
    report = verify_chains(_replace(stored, 2, _edit(stored[2], "forged", rehash=True)))
    (broken,) = report.breaks
    assert (broken.offset, broken.seq) == (3, 4)
    assert "rewritten" in broken.problem


def test_a_deleted_or_duplicated_record_and_an_unreadable_one_break_the_chain() -> None:
    stored = _topic(1)
    (gap,) = verify_chains(stored[:2] + stored[3:]).breaks
    assert (gap.seq, gap.problem) == (4, "seq 3 to 3 are missing")
    (twice,) = verify_chains([*stored[:3], stored[2], *stored[3:]]).breaks
    assert twice.problem == "a second record with seq 3"
    report = verify_chains(_replace(stored, 1, b"{not json"))
    assert [b.offset for b in report.unreadable] == [1]
    assert not report.ok


def test_a_chain_whose_oldest_records_expired_still_verifies() -> None:
    stored = _topic(1)
    report = verify_chains(stored[4:])
    assert report.ok
    assert report.chains[0].first_seq == 5


def test_a_runs_story_lists_its_decisions_in_order_with_their_principal() -> None:
    decisions = [decode(r.value, r.headers) for r in _topic(1)]
    entries = run_story("p/k1", [d for d in decisions if isinstance(d, DecisionRecord)])
    assert [e.action for e in entries] == ["triggered"]
    assert entries[0].principal == "svc"
    assert (entries[0].event_type, entries[0].event_id, entries[0].stage) == ("go", "e1", "a")
    document = story_json("p/k1", entries, None)
    assert document["decisions"][0]["event"] == {"type": "go", "source": "app", "id": "e1"}
