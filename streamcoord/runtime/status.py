"""What a coordinator member reports about itself: readiness, owned partitions, counters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from streamcoord.runtime.batch import BatchOutcome

__all__ = ["CoordinatorStatus"]


@dataclass
class CoordinatorStatus:
    """What the health check and the progress display report.

    ``not_ready`` says why the member cannot decide yet (None once every partition the group
    assigned it is restored and consumed): what ``/readyz`` answers 503 with.
    """

    consuming: bool = False
    not_ready: str | None = "starting: connecting to Kafka"
    assigned: list[int] = field(default_factory=list)
    batches: int = 0
    consumed: int = 0
    published: int = 0
    triggered: int = 0
    dead_letters: int = 0
    forwarded: int = 0
    timers_fired: int = 0
    last_batch_at: float | None = None
    errors: int = 0

    def count(self, outcome: BatchOutcome) -> None:
        """Add a committed batch to the counters."""
        self.batches += 1
        self.consumed += outcome.consumed
        self.published += outcome.published
        self.triggered += len(outcome.trigger_event_times)
        self.dead_letters += outcome.dead_letters
        self.forwarded += outcome.forwarded
        self.last_batch_at = time.monotonic()

    @property
    def ready(self) -> bool:
        return self.consuming and self.not_ready is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "reason": self.not_ready,
            "consuming": self.consuming,
            "assigned_partitions": self.assigned,
            "batches": self.batches,
            "consumed": self.consumed,
            "published": self.published,
            "triggered": self.triggered,
            "dead_letters": self.dead_letters,
            "forwarded": self.forwarded,
            "timers_fired": self.timers_fired,
            "errors": self.errors,
            "seconds_since_last_batch": (
                None if self.last_batch_at is None else time.monotonic() - self.last_batch_at
            ),
        }
