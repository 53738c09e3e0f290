"""Running one attempt: started, heartbeats while the handler runs, then one outcome.

Middleware wraps the handler call (the seam where a tracing span goes around the user's code);
sync handlers run in a thread pool with the caller's context variables, so spans nest.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from pydantic import JsonValue

from streamcoord.events.models import CloudEvent, StageTrigger
from streamcoord.worker import _outcomes
from streamcoord.worker._context import StageContext
from streamcoord.worker._errors import retryable
from streamcoord.worker._registry import Deferred, Handler, Outputs, is_async_handler

__all__ = ["SHUTDOWN_ERROR", "AttemptRunner", "Clock", "EventSink", "HandlerMiddleware"]

log = logging.getLogger(__name__)

SHUTDOWN_ERROR = "worker shut down before the attempt finished"

Clock = Callable[[], datetime]
#: ``async def middleware(ctx, call_next) -> outputs``: runs around every handler call.
HandlerMiddleware = Callable[[StageContext, Callable[[], Awaitable[Outputs]]], Awaitable[Outputs]]


class EventSink(Protocol):
    """Where reports go; :class:`streamcoord.emit.Emitter` is the Kafka one."""

    async def send(self, event: CloudEvent) -> CloudEvent:
        """Return once the event is durable."""
        ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AttemptRunner:
    """Runs handlers and reports their attempts through an :class:`EventSink`."""

    def __init__(
        self,
        sink: EventSink,
        threads: Executor,
        *,
        heartbeat_interval_s: float,
        middleware: Sequence[HandlerMiddleware] = (),
        clock: Clock = _utc_now,
    ) -> None:
        self._sink = sink
        self._threads = threads
        self._interval = heartbeat_interval_s
        self._middleware = list(middleware)
        self._clock = clock

    def reporter(self, trigger: StageTrigger) -> Callable[..., Awaitable[None]]:
        """A progress reporter for one attempt, numbering its reports from 1."""
        count = 0

        async def report(watermark: datetime | None, offsets: Mapping[str, int]) -> None:
            nonlocal count
            count += 1
            event = _outcomes.progress(
                trigger, count, self._clock(), watermark=watermark, offsets=offsets
            )
            await self._sink.send(event)

        return report

    async def run(self, ctx: StageContext, handler: Handler) -> None:
        """Report started, run the handler, report the outcome; never raises for handler errors.

        Cancelling this coroutine (worker shutdown) reports a retryable failure, then returns.
        Errors of the sink (the broker did not acknowledge) propagate: nothing was reported.
        """
        trigger = ctx.trigger
        await self._sink.send(_outcomes.started(trigger, self._clock()))
        beats = asyncio.create_task(self._heartbeats(trigger))
        deadline = self._arm_deadline(ctx)
        try:
            outcome = await self._outcome(ctx, handler)
        finally:
            if deadline is not None:
                deadline.cancel()
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats
        if outcome is not None:
            await self._sink.send(outcome)

    def _arm_deadline(self, ctx: StageContext) -> asyncio.TimerHandle | None:
        """Cancel the attempt at the trigger's deadline, as the coordinator times it out then
        (retryable: the retry policy applies, as to the coordinator's timeout)."""
        if ctx.deadline is None:
            return None
        left = (ctx.deadline - self._clock()).total_seconds()
        reason = f"execution timeout ({ctx.trigger.data.timeout_seconds:g}s)"
        return asyncio.get_running_loop().call_later(
            max(left, 0.0), partial(ctx.cancel, reason, retryable=True)
        )

    async def _outcome(self, ctx: StageContext, handler: Handler) -> CloudEvent | None:
        trigger = ctx.trigger
        try:
            outputs = await self._call_until_cancelled(ctx, handler)
        except asyncio.CancelledError:
            ctx.cancel(SHUTDOWN_ERROR)
            return _outcomes.failed(trigger, SHUTDOWN_ERROR, retryable=True, now=self._clock())
        except Exception as error:  # any handler error is the attempt's failure
            return self._failure(ctx, error)
        if isinstance(outputs, Deferred):
            log.info("%s: outcome deferred to a callback", trigger.data.idempotency_key)
            return None
        return _outcomes.succeeded(trigger, _outputs(outputs), self._clock(), ctx.lineage())

    def _failure(self, ctx: StageContext, error: Exception) -> CloudEvent:
        text = str(error) or type(error).__name__
        if not isinstance(error, ExceptionGroup) and type(error).__module__ == "builtins":
            text = f"{type(error).__name__}: {text}"
        if ctx.cancelled:
            return _outcomes.failed(
                ctx.trigger, f"cancelled ({ctx.cancel_reason}): {text}",
                retryable=ctx.cancel_retryable, now=self._clock(),
            )  # fmt: skip
        return _outcomes.failed(ctx.trigger, text, retryable=retryable(error), now=self._clock())

    async def _call_until_cancelled(self, ctx: StageContext, handler: Handler) -> Outputs:
        """Run the handler; an async one is cancelled (``CancelledError`` inside it) once the
        attempt is. A sync one runs in a thread, which cannot be interrupted: it sees
        ``ctx.cancelled`` and is waited for."""
        if ctx.cancelled:  # cancelled while waiting to start: do not start the work at all
            raise HandlerCancelled("cancelled before the handler started")
        if not is_async_handler(handler):
            return await self._call(ctx, handler)
        call = asyncio.ensure_future(self._call(ctx, handler))
        stop = asyncio.ensure_future(ctx.wait_cancelled())
        try:
            await asyncio.wait({call, stop}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the worker shuts down: stop the handler too
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
            raise
        finally:
            stop.cancel()
        if not call.done():
            call.cancel()
            try:
                return await call  # a handler may catch the cancellation and still return
            except asyncio.CancelledError:
                raise HandlerCancelled("the handler was cancelled") from None
        return call.result()

    async def _call(self, ctx: StageContext, handler: Handler) -> Outputs:
        async def innermost() -> Outputs:
            if is_async_handler(handler):
                return await handler(ctx)  # type: ignore[no-any-return,misc]  # async branch
            loop = asyncio.get_running_loop()
            call = partial(contextvars.copy_context().run, handler, ctx)
            return await loop.run_in_executor(self._threads, call)  # type: ignore[arg-type]

        call_next: Callable[[], Awaitable[Outputs]] = innermost
        for layer in reversed(self._middleware):
            call_next = partial(layer, ctx, call_next)
        return await call_next()

    async def _heartbeats(self, trigger: StageTrigger) -> None:
        sequence = 0
        while True:
            await asyncio.sleep(self._interval)
            sequence += 1
            try:
                await self._sink.send(_outcomes.heartbeat(trigger, sequence, self._clock()))
            except Exception as error:  # a lost heartbeat must not end the work
                log.warning(
                    "heartbeat for %s not sent: %s", trigger.data.idempotency_key, error,
                    extra={"retrying": True},
                )  # fmt: skip


class HandlerCancelled(Exception):  # noqa: N818  # reads as what happened to the handler
    """An async handler stopped by the cancellation of its attempt."""


def _outputs(outputs: Mapping[str, JsonValue] | None) -> Mapping[str, JsonValue]:
    if outputs is None:
        return {}
    if not isinstance(outputs, Mapping):
        raise TypeError(f"a handler must return a dict of outputs or None, not {type(outputs)}")
    return outputs
