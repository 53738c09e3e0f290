"""Worker SDK: run stage handlers for the coordinator's triggers and report their outcomes.

::

    worker = Worker(bootstrap_servers="127.0.0.1:9092")

    @worker.stage("orders.extract")
    async def extract(ctx: StageContext) -> dict[str, object]:
        await ctx.progress(offsets={"0": 42})      # streaming stages only
        return {"rows": 1000}                       # outputs feed downstream params

    asyncio.run(worker.run(stop_event))

A handler raising :class:`NonRetryableError` fails the stage for good; any other exception is a
retryable failure. See :mod:`streamcoord.worker._worker` for the delivery guarantee.
"""

from streamcoord.worker._attempt import SHUTDOWN_ERROR, EventSink, HandlerMiddleware
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import NonRetryableError, StageError
from streamcoord.worker._outcomes import WORKER_SOURCE
from streamcoord.worker._registry import (
    DEFERRED,
    Deferred,
    Handler,
    HandlerRegistry,
    Outputs,
    StageHandler,
)
from streamcoord.worker._settings import TRIGGERS_TOPIC, WorkerSettings
from streamcoord.worker._worker import Worker, WorkerError, WorkerStatus

__all__ = [
    "DEFERRED",
    "SHUTDOWN_ERROR",
    "TRIGGERS_TOPIC",
    "WORKER_SOURCE",
    "Deferred",
    "EventSink",
    "Handler",
    "HandlerMiddleware",
    "HandlerRegistry",
    "NonRetryableError",
    "Outputs",
    "StageContext",
    "StageError",
    "StageHandler",
    "Worker",
    "WorkerError",
    "WorkerSettings",
    "WorkerStatus",
]
