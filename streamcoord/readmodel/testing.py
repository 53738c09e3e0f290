"""Records of whole runs as the coordinator and a worker write them, without Kafka.

For tests and benchmarks of the projection: :func:`run_story` gives the records one run leaves
on the four topics (a request, run records, decisions, workers' reports), positioned by a
shared :class:`Offsets` as a consumer would see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from streamcoord.events import topology
from streamcoord.events.models import (
    CloudEvent,
    Decision,
    DecisionRecord,
    RunFinished,
    RunFinishedData,
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
    TimerFired,
    TimerFiredData,
)
from streamcoord.readmodel._projection import Consumed, TopicKind

__all__ = ["Offsets", "dead_letter", "run_story"]

_COORDINATOR = "streamcoord/coordinator"
_TOPICS: dict[TopicKind, str] = {
    "runs": topology.RUNS, "decisions": topology.DECISIONS,
    "events": topology.EVENTS, "deadletter": topology.DEADLETTER,
}  # fmt: skip


@dataclass
class Offsets:
    """The next offset of each (kind, partition): hands out consecutive positions."""

    prefix: str = ""
    next: dict[tuple[TopicKind, int], int] = field(default_factory=dict)

    def record(
        self, kind: TopicKind, partition: int, event: CloudEvent | None, **raw: object
    ) -> Consumed:
        key = (kind, partition)
        offset = self.next.get(key, 0)
        self.next[key] = offset + 1
        millis = int(event.time.timestamp() * 1000) if event and event.time else 0
        return Consumed(kind, self.prefix + _TOPICS[kind], partition, offset, millis, event, **raw)  # type: ignore[arg-type]  # key, value, headers

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
    """The records of one requested run whose stages run in order, step by step as the
    coordinator writes them when it decides one event per batch: each event, then the step's
    decisions and the run's record (a record per status change). ``fail_first`` names a stage
    whose first attempt fails and is retried (after a timer); a ``failed`` outcome fails the
    last stage."""
    story = _Story(offsets, f"{pipeline}/{run_key}", pipeline, run_key, partition, start)
    request = RunRequested(
        id=f"req-{story.run_id}",
        source="streamcoord/api",
        time=story.tick(),
        data=RunRequestedData(pipeline=pipeline, run_key=run_key, params={"day": run_key}),
        scprincipal=principal,
    )
    story.cause = request.id
    story.trigger(stages[0])
    story.step(request, "active")
    for index, stage in enumerate(stages):
        tries = 2 if stage == fail_first else 1
        for attempt in range(1, tries + 1):
            ref = {"run_id": story.run_id, "stage": stage, "attempt": attempt}
            key = f"{story.run_id}-{stage}-{attempt}"
            story.status[stage] = "running"
            story.step(
                StageStarted(
                    id=f"s-{key}", source="worker/w1", time=story.tick(), data=StageRef(**ref)
                ),
                "active",
            )
            last = index == len(stages) - 1
            if attempt < tries or (last and outcome == "failed"):
                story.fail(
                    StageFailed(
                        id=f"f-{key}",
                        source="worker/w1",
                        time=story.tick(),
                        data=StageFailedData(**ref, error="disk full"),
                    ),
                    retry=attempt < tries,
                )
                continue
            story.status[stage] = "succeeded"  # a success is recorded, not decided
            if not last:
                story.trigger(stages[index + 1])
            story.step(StageSucceeded(
                id=f"ok-{key}", source="worker/w1", time=story.tick(),
                data=StageSucceededData(**ref, outputs={"rows": 10 * attempt}),
            ), "active" if not last else outcome)  # fmt: skip
    return story.out


class _Story:
    """One run's records as they accumulate; the outputs of a step share its event's time."""

    def __init__(  # noqa: PLR0917  # private, called once above
        self,
        offsets: Offsets,
        run_id: str,
        pipeline: str,
        run_key: str,
        partition: int,
        start: datetime,
    ) -> None:
        self.offsets, self.run_id, self.pipeline, self.run_key = offsets, run_id, pipeline, run_key
        self.partition, self.now = partition, start
        self.cause = ""
        self.status: dict[str, str] = {}
        self.attempts: dict[str, int] = {}
        self.out: list[Consumed] = []
        self.decisions: list[tuple[str, str, str]] = []

    def tick(self) -> datetime:
        self.now += timedelta(milliseconds=250)
        return self.now

    def trigger(self, stage: str) -> None:
        self.attempts[stage] = self.attempts.get(stage, 0) + 1
        self.status[stage] = "triggered"
        self.decisions.append((stage, "triggered", f"attempt {self.attempts[stage]}"))

    def fail(self, failed: StageFailed, *, retry: bool) -> None:
        stage = failed.data.stage
        self.status[stage] = "retry_wait" if retry else "failed"
        self.decisions.append((stage, "retry_wait" if retry else "failed", "disk full"))
        self.step(failed, "active" if retry else "failed")
        if retry:
            timer = TimerFired(
                id=f"t-{self.run_id}-{stage}", source="streamcoord/timer", time=self.tick(),
                data=TimerFiredData(timer_id=f"{self.run_id}|{stage}|retry", purpose="retry",
                                    run_id=self.run_id, stage=stage,
                                    attempt=failed.data.attempt, due=self.now),
            )  # fmt: skip
            self.trigger(stage)
            self.step(timer, "active")

    def step(self, event: CloudEvent, run_status: str) -> None:
        """``event`` on the events topic, then what deciding it wrote."""
        self.out.append(self.offsets.record("events", self.partition, event))
        for n, (stage, action, reason) in enumerate(self.decisions):
            self.out.append(self.offsets.record("decisions", self.partition, DecisionRecord(
                id=f"{event.source}|{event.id}|{self.run_id}|{stage}|{action}|{n}",
                source=_COORDINATOR, time=event.time, subject=self.run_id,
                data=Decision(run_id=self.run_id, stage=stage, action=action, reason=reason,
                              caused_by=[event.id]),
            )))  # fmt: skip
        self.decisions = []
        self.out.append(self.offsets.record("runs", self.partition, RunRecord(
            id=f"{self.run_id}|{run_status}|{event.source}|{event.id}", source=_COORDINATOR,
            time=event.time, subject=self.run_id,
            data=RunRecordData(run_id=self.run_id, pipeline=self.pipeline,
                               run_key=self.run_key, status=run_status,
                               stages=dict(self.status), attempts=dict(self.attempts),
                               caused_by=[self.cause], trace_id="ab" * 16),
        )))  # fmt: skip
        if run_status in {"succeeded", "failed"}:
            self.out.append(self.offsets.record("events", self.partition, RunFinished(
                id=f"finished-{self.run_id}", source=_COORDINATOR, time=event.time,
                data=RunFinishedData(run_id=self.run_id, pipeline=self.pipeline,
                                     run_key=self.run_key, outcome=run_status),
            )))  # fmt: skip


def dead_letter(
    offsets: Offsets,
    reason: str,
    value: bytes,
    when: datetime,
    headers: tuple[tuple[str, bytes], ...] = (),
) -> Consumed:
    """A dead letter as the coordinator writes one: the refused record's value and ``headers``,
    then the reason and origin in headers of its own."""
    headers = (
        *headers,
        ("streamcoord.dlq.reason", reason.encode()), ("streamcoord.dlq.error", b"bad record"),
        ("streamcoord.dlq.topic", topology.EVENTS.encode()), ("streamcoord.dlq.partition", b"3"),
        ("streamcoord.dlq.offset", b"17"),
    )  # fmt: skip
    record = offsets.record("deadletter", 0, None, key=b"k", value=value, headers=headers)
    return Consumed(
        record.kind,
        record.topic,
        record.partition,
        record.offset,
        int(when.timestamp() * 1000),
        None,
        b"k",
        value,
        headers,
    )
