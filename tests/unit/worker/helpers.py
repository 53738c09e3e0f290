"""A trigger factory and an in-memory sink for worker unit tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from streamcoord.events import topology
from streamcoord.events.models import CloudEvent, ExecutorBinding, StageTrigger, StageTriggerData
from streamcoord.worker import StageContext
from streamcoord.worker._attempt import AttemptRunner

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def make_trigger(
    stage: str = "extract", params: dict | None = None, **config: object
) -> StageTrigger:
    key = f"orders/2024-01-01/{stage}/1"
    return StageTrigger(
        id=key,
        source="streamcoord/coordinator",
        data=StageTriggerData(
            run_id="orders/2024-01-01", pipeline="orders", run_key="2024-01-01", stage=stage,
            attempt=1, params=params or {}, idempotency_key=key,
            executor=ExecutorBinding(topic=topology.TRIGGERS, config=config),
        ),
    )  # fmt: skip


class ListSink:
    """Keeps every event sent, in order."""

    def __init__(self) -> None:
        self.events: list[CloudEvent] = []
        self.changed = asyncio.Event()

    async def send(self, event: CloudEvent) -> CloudEvent:
        self.events.append(event)
        self.changed.set()
        return event

    async def wait_for(self, kind: type[CloudEvent], count: int) -> None:
        """Return once ``count`` events of ``kind`` were sent."""
        while sum(isinstance(e, kind) for e in self.events) < count:
            self.changed.clear()
            await self.changed.wait()


def context(trigger: StageTrigger, runner: AttemptRunner) -> StageContext:
    return StageContext(trigger, runner.reporter(trigger), asyncio.get_running_loop())
