"""Verifying the hash chains of a decisions topic: every link, and the first that breaks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streamcoord.core._audit import record_digest
from streamcoord.errors import EventError
from streamcoord.events.codec import decode
from streamcoord.events.models import ChainLink, DecisionRecord
from streamcoord.kafka.records import StoredRecord

__all__ = ["Break", "ChainReport", "ChainSummary", "verify_chains"]


@dataclass(frozen=True)
class Break:
    """The first record of a chain that does not fit it, where it is stored, and why."""

    chain: int | None  # the coordinator partition; None when the record cannot even be read
    seq: int | None
    partition: int  # where it is stored on the decisions topic
    offset: int
    record_id: str | None
    problem: str

    def describe(self, topic: str) -> str:
        where = f"{topic}[{self.partition}]@{self.offset}"
        which = "" if self.chain is None else f" (chain of partition {self.chain}, seq {self.seq})"
        named = "" if self.record_id is None else f" id {self.record_id!r}"
        return f"{where}{which}{named}: {self.problem}"


@dataclass(frozen=True)
class ChainSummary:
    """One coordinator partition's chain as found: its seq range and whether it held."""

    chain: int
    first_seq: int
    last_seq: int
    records: int
    head: str
    broken: Break | None


@dataclass
class ChainReport:
    chains: list[ChainSummary] = field(default_factory=list)
    unreadable: list[Break] = field(default_factory=list)
    unchained: int = 0  # decision records written before chains existed (state format < 6)

    @property
    def breaks(self) -> list[Break]:
        return self.unreadable + [c.broken for c in self.chains if c.broken is not None]

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify_chains(stored: Iterable[StoredRecord]) -> ChainReport:
    """Check every decision record of ``stored`` (a decisions topic, any partition order).

    A chain is one coordinator partition's records in seq order; it may start after seq 1 (the
    topic's retention dropped the oldest). Each record's hash must be its content's, and its
    ``prev`` the hash of the record one seq before; a missing seq, a second record with a seq
    already seen, or an unreadable record is a break too.
    """
    report = ChainReport()
    links: dict[int, list[tuple[StoredRecord, DecisionRecord]]] = {}
    for record in stored:
        try:
            event = decode(record.value, record.headers)
        except EventError as error:
            report.unreadable.append(
                Break(
                    None,
                    None,
                    record.partition,
                    record.offset,
                    None,
                    f"not a readable event: {error.message}",
                )
            )
            continue
        if not isinstance(event, DecisionRecord):
            report.unreadable.append(
                Break(
                    None,
                    None,
                    record.partition,
                    record.offset,
                    event.id,
                    f"a {event.type} event, not a decision record",
                )
            )
        elif event.data.chain is None:
            report.unchained += 1
        else:
            links.setdefault(event.data.chain.partition, []).append((record, event))
    for chain in sorted(links):
        report.chains.append(_verify_one(chain, links[chain]))
    return report


def _verify_one(chain: int, links: list[tuple[StoredRecord, DecisionRecord]]) -> ChainSummary:
    links.sort(key=lambda item: (_link(item[1]).seq, item[0].partition, item[0].offset))
    broken: Break | None = None
    previous: DecisionRecord | None = None
    for stored, event in links:
        problem = _problem(event, previous)
        if problem is not None:
            broken = Break(
                chain, _link(event).seq, stored.partition, stored.offset, event.id, problem
            )
            break
        previous = event
    first, last = _link(links[0][1]), _link(links[-1][1])
    return ChainSummary(chain, first.seq, last.seq, len(links), last.hash, broken)


def _problem(event: DecisionRecord, previous: DecisionRecord | None) -> str | None:
    link = _link(event)
    if record_digest(event) != link.hash:
        return "its content does not match its hash: the record was altered"
    if previous is None:
        return None
    before = _link(previous)
    if link.seq == before.seq:
        return f"a second record with seq {link.seq}"
    if link.seq != before.seq + 1:
        return f"seq {before.seq + 1} to {link.seq - 1} are missing"
    if link.prev != before.hash:
        return f"its prev does not match the hash of seq {before.seq}: the chain was rewritten"
    return None


def _link(event: DecisionRecord) -> ChainLink:
    chain = event.data.chain
    assert chain is not None  # only chained records are grouped
    return chain
