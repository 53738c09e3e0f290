"""One run's story: every decision about it in the order it was made, and how it ended."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streamcoord.events.models import DecisionRecord, RunRecord

__all__ = ["StoryEntry", "run_story", "story_json"]


@dataclass(frozen=True)
class StoryEntry:
    """One decision: the event it was made on (type, source, principal), what was decided for
    which stage and why, and the chain link that vouches for it."""

    time: str
    seq: int | None
    event_type: str | None
    event_source: str | None
    event_id: str | None
    principal: str | None
    stage: str | None
    action: str
    reason: str
    caused_by: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "seq": self.seq,
            "event": {"type": self.event_type, "source": self.event_source, "id": self.event_id},
            "principal": self.principal,
            "stage": self.stage,
            "action": self.action,
            "reason": self.reason,
            "caused_by": list(self.caused_by),
        }


def run_story(run_id: str, decisions: Iterable[DecisionRecord]) -> list[StoryEntry]:
    """The decisions about ``run_id``, in the order its partition made them (chain seq; a record
    from before chains existed keeps its place in the topic)."""
    mine = [d for d in decisions if d.data.run_id == run_id]
    order = {id(d): i for i, d in enumerate(mine)}
    mine.sort(key=lambda d: (d.data.chain.seq if d.data.chain else 0, order[id(d)]))
    return [_entry(d) for d in mine]


def _entry(record: DecisionRecord) -> StoryEntry:
    data, cause = record.data, record.data.event
    return StoryEntry(
        time="" if record.time is None else record.time.isoformat(),
        seq=None if data.chain is None else data.chain.seq,
        event_type=None if cause is None else cause.type,
        event_source=None if cause is None else cause.source,
        event_id=None if cause is None else cause.id,
        principal=data.principal,
        stage=data.stage,
        action=data.action,
        reason=data.reason,
        caused_by=tuple(data.caused_by),
    )


def story_json(run_id: str, entries: list[StoryEntry], outcome: RunRecord | None) -> dict[str, Any]:
    """The story as one JSON object: the run's last record (its outcome) and every decision."""
    record = None if outcome is None else outcome.data
    return {
        "run_id": run_id,
        "outcome": None
        if record is None
        else {
            "status": record.status,
            "principal": record.principal,
            "stages": record.stages,
            "attempts": record.attempts,
            "spec_version": record.spec_version,
            "trace_id": record.trace_id,
            "caused_by": record.caused_by,
        },
        "decisions": [entry.as_json() for entry in entries],
    }
