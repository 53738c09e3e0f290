"""What a handler gets: the trigger's fields, progress reporting and a cancellation flag."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from streamcoord.events.models import DatasetRef, StageLineage, StageTrigger

__all__ = ["ProgressReporter", "StageContext"]

#: Sends one progress report: ``(watermark, offsets)``; returns when the broker acknowledged it.
ProgressReporter = Callable[[datetime | None, Mapping[str, int]], Awaitable[None]]


class StageContext:
    """One attempt of one stage, as seen by the handler running it.

    Async handlers call ``await ctx.progress(...)`` and may ``await ctx.wait_cancelled()``;
    sync handlers (run in a thread) call :meth:`progress_threadsafe` and poll :attr:`cancelled`.
    """

    def __init__(
        self,
        trigger: StageTrigger,
        reporter: ProgressReporter,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.trigger = trigger
        self._reporter = reporter
        self._loop = loop
        self._cancelled = threading.Event()  # readable from handler threads
        self._cancelled_async = asyncio.Event()
        self.cancel_reason = ""
        self.cancel_retryable = False
        self._read: list[DatasetRef] = []
        self._wrote: list[DatasetRef] = []

    @property
    def run_id(self) -> str:
        return self.trigger.data.run_id

    @property
    def pipeline(self) -> str:
        return self.trigger.data.pipeline

    @property
    def stage(self) -> str:
        return self.trigger.data.stage

    @property
    def attempt(self) -> int:
        return self.trigger.data.attempt

    @property
    def run_key(self) -> str:
        return self.trigger.data.run_key

    @property
    def params(self) -> dict[str, JsonValue]:
        return self.trigger.data.params

    @property
    def idempotency_key(self) -> str:
        return self.trigger.data.idempotency_key

    @property
    def config(self) -> dict[str, JsonValue]:
        """The stage's ``executor.config`` from the spec, untouched."""
        return self.trigger.data.executor.config

    @property
    def deadline(self) -> datetime | None:
        """When the coordinator times this attempt out (None: no execution timeout); the
        worker cancels the attempt then."""
        return self.trigger.data.deadline

    @property
    def cancelled(self) -> bool:
        """Whether the attempt should stop: the coordinator cancelled it (run cancelled or timed
        out), its deadline passed, or the worker is shutting down."""
        return self._cancelled.is_set()

    async def wait_cancelled(self) -> None:
        """Return once the attempt is cancelled."""
        await self._cancelled_async.wait()

    def cancel(self, reason: str = "cancelled", *, retryable: bool = False) -> None:
        """Ask the handler to stop; call on the event loop's thread. The first reason stays.

        ``retryable``: whether the failure it causes may be retried (a missed deadline may,
        a cancelled run may not).
        """
        if self._cancelled.is_set():
            return
        self.cancel_reason = reason
        self.cancel_retryable = retryable
        self._cancelled.set()
        self._cancelled_async.set()

    async def progress(
        self, *, watermark: datetime | None = None, offsets: Mapping[str, int] | None = None
    ) -> None:
        """Report how far a streaming stage got; returns once the report is durable."""
        await self._reporter(watermark, dict(offsets or {}))

    def progress_threadsafe(
        self, *, watermark: datetime | None = None, offsets: Mapping[str, int] | None = None
    ) -> None:
        """:meth:`progress` for sync handlers running in a worker thread (blocks until sent)."""
        if self._loop is None:
            raise RuntimeError("this context has no event loop to report progress through")
        future = asyncio.run_coroutine_threadsafe(
            self.progress(watermark=watermark, offsets=offsets), self._loop
        )
        future.result()

    def reads(self, name: str, namespace: str | None = None) -> None:
        """Report a dataset the attempt read: an input of its OpenLineage events (beside the
        spec's ``params.inputs``); ``namespace`` defaults to the lineage's own."""
        self._read.append(DatasetRef(name=name, namespace=namespace))

    def writes(self, name: str, namespace: str | None = None) -> None:
        """Report a dataset the attempt wrote: an output of its OpenLineage events."""
        self._wrote.append(DatasetRef(name=name, namespace=namespace))

    def lineage(self) -> StageLineage | None:
        """The datasets reported with :meth:`reads` and :meth:`writes`; None when none were."""
        if not self._read and not self._wrote:
            return None
        return StageLineage(inputs=list(self._read), outputs=list(self._wrote))

    def as_template_values(self) -> dict[str, Any]:
        """Params plus ``run_id``, ``run_key``, ``pipeline``, ``stage``, ``attempt``."""
        return {
            **self.params,
            "run_id": self.run_id,
            "run_key": self.run_key,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "attempt": self.attempt,
        }
