"""Records of whole runs as the coordinator and an executor write them, without Kafka.

For tests and benchmarks of the projection: :func:`run_story` gives the records one run leaves
on the four topics (a request, run records, decisions, executor reports), positioned by a
shared :class:`Offsets` as a consumer would see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streamcoord.events.models import (
    CloudEvent,
    Decision,
    DecisionRecord,
    RunRecord,
    RunRecordData,
    RunRequested,
    RunRequestedData,
    StageFailed,
    StageFailedData,
    StageRef,
    StageStarted,
    StageSucceeded,
    StageSucceededData,
)
from streamcoord.readmodel._projection import Consumed, TopicKind

__all__ = ["Offsets", "dead_letter", "run_story"]

_COORDINATOR = "streamcoord/coordinator"
_TOPICS: dict[TopicKind, str] = {
    "runs": "streamcoord.runs", "decisions": "streamcoord.decisions",
    "events": "streamcoord.events", "deadletter": "streamcoord.deadletter",
}  # fmt: skip


@dataclass
class Offsets:
    """The next offset of each (kind, partition): hands out consecutive positions."""

    prefix: str = ""
    next: dict[tuple[TopicKind, int], int] = field(default_factory=dict)

    def record(self, kind: TopicKind, partition: int, event: CloudEvent | None,
               **raw: object) -> Consumed:
        key = (kind, partition)
        offset = self.next.get(key, 0)
        self.next[key] = offset + 1
        millis = int(event.time.timestamp() * 1000) if event and event.time else 0
        return Consumed(kind, self.prefix + _TOPICS[kind], partition, offset, millis, event,
                        **raw)  # type: ignore[arg-type]  # key, value, headers

    def positions(self) -> dict[tuple[str, int], int]:
        return {(self.prefix + _TOPICS[kind], p): n for (kind, p), n in self.next.items()}


def run_story(
    offsets: Offsets,
    pipeline: str,
    run_key: str,
    start: datetime,
    *,
    stages: Sequence[str] = ("extract", "load"),
    fail_first: str | None = None,
    outcome: str = "succeeded",
    principal: str = "user:alice",
    partition: int = 0,
) -> list[Consumed]:
    """The records of one requested run whose stages run in order; ``fail_first`` names a
    stage whose first attempt fails and is retried; a ``failed`` outcome fails the last stage."""
    run_id = f"{pipeline}/{run_key}"
    clock = _Clock(start)
    request = RunRequested(
        id=f"req-{run_id}", source="streamcoord/api", time=clock.tick(),
        data=RunRequestedData(pipeline=pipeline, run_key=run_key, params={"day": run_key}),
        principal=principal,
    )
    out = [offsets.record("events", partition, request)]
    status = dict.fromkeys(stages, "pending")
    attempts = dict.fromkeys(stages, 0)

    def record(run_status: str) -> None:
        out.append(offsets.record("runs", partition, RunRecord(
            id=f"{run_id}|{run_status}|streamcoord/api|{request.id}", source=_COORDINATOR,
            time=clock.tick(), subject=run_id,
            data=RunRecordData(run_id=run_id, pipeline=pipeline, run_key=run_key,
                               status=run_status, stages=dict(status), attempts=dict(attempts),
                               caused_by=[request.id], trace_id="ab" * 16),
        )))  # fmt: skip

    def decide(stage: str, action: str, reason: str, caused: list[str]) -> None:
        out.append(offsets.record("decisions", partition, DecisionRecord(
            id=f"{run_id}|{stage}|{action}|{len(out)}", source=_COORDINATOR, time=clock.tick(),
            subject=run_id, data=Decision(run_id=run_id, stage=stage, action=action,
                                          reason=reason, caused_by=caused),
        )))  # fmt: skip

    record("active")
    for index, stage in enumerate(stages):
        tries = 2 if stage == fail_first else 1
        for attempt in range(1, tries + 1):
            attempts[stage], status[stage] = attempt, "triggered"
            decide(stage, "triggered", f"attempt {attempt}", [request.id])
            ref = {"run_id": run_id, "stage": stage, "attempt": attempt}
            started = StageStarted(id=f"s-{run_id}-{stage}-{attempt}", source="worker/w1",
                                   time=clock.tick(), data=StageRef(**ref))
            out.append(offsets.record("events", partition, started))
            last = index == len(stages) - 1
            if attempt < tries or (last and outcome == "failed"):
                failed = StageFailed(id=f"f-{run_id}-{stage}-{attempt}", source="worker/w1",
                                     time=clock.tick(),
                                     data=StageFailedData(**ref, error="disk full"))
                out.append(offsets.record("events", partition, failed))
                final = attempt == tries
                status[stage] = "failed" if final else "retry_wait"
                decide(stage, "failed" if final else "retry_wait", "disk full", [failed.id])
                continue
            done = StageSucceeded(id=f"ok-{run_id}-{stage}-{attempt}", source="worker/w1",
                                  time=clock.tick(),
                                  data=StageSucceededData(**ref, outputs={"rows": 10 * attempt}))
            out.append(offsets.record("events", partition, done))
            status[stage] = "succeeded"  # a success is recorded, not decided
            if not last:
                record("active")
    record(outcome)
    return out


def dead_letter(offsets: Offsets, reason: str, value: bytes, when: datetime) -> Consumed:
    """A dead letter as the coordinator writes one (reason and origin in headers)."""
    headers = (
        ("streamcoord.dlq.reason", reason.encode()), ("streamcoord.dlq.error", b"bad record"),
        ("streamcoord.dlq.topic", b"streamcoord.events"), ("streamcoord.dlq.partition", b"3"),
        ("streamcoord.dlq.offset", b"17"),
    )  # fmt: skip
    record = offsets.record("deadletter", 0, None, key=b"k", value=value, headers=headers)
    return Consumed(record.kind, record.topic, record.partition, record.offset,
                    int(when.timestamp() * 1000), None, b"k", value, headers)


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=250)
        return self.now
