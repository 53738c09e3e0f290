"""A coordinator started while no broker answers waits for one instead of exiting."""

from __future__ import annotations

import asyncio
import logging

from streamcoord.core import Catalog
from streamcoord.devtools.kafka import free_port
from streamcoord.pipelines.models import Pipeline
from streamcoord.runtime.coordinator import Coordinator
from streamcoord.runtime.settings import CoordinatorSettings


class _StopWhenWaiting(logging.Handler):
    def __init__(self, stop: asyncio.Event) -> None:
        super().__init__()
        self.stop = stop
        self.waits = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("cannot reach Kafka yet"):
            self.waits += 1
            if self.waits == 2:
                self.stop.set()


async def test_a_member_started_before_the_broker_retries_then_stops_cleanly() -> None:
    catalog = Catalog.build(
        [Pipeline.model_validate({"name": "p", "run_key": "'k'", "stages": [{"name": "a"}]})]
    )
    settings = CoordinatorSettings(group_id="g")
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    coordinator = Coordinator(catalog, settings, {"bootstrap_servers": nobody})
    stop = asyncio.Event()
    handler = _StopWhenWaiting(stop)
    logger = logging.getLogger("streamcoord.runtime")
    logger.addHandler(handler)
    try:
        await asyncio.wait_for(coordinator.run(stop), 60)
    finally:
        logger.removeHandler(handler)
    assert handler.waits == 2  # it waited twice for the broker, then honoured the stop
    assert not coordinator.status.consuming
