"""Handler dispatch and the reports of one attempt, with an in-memory sink."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from streamcoord.errors import ConfigError
from streamcoord.events.models import (
    CloudEvent,
    StageFailed,
    StageHeartbeat,
    StageProgress,
    StageStarted,
    StageSucceeded,
)
from streamcoord.worker import (
    DEFERRED,
    SHUTDOWN_ERROR,
    HandlerRegistry,
    NonRetryableError,
    Outputs,
    StageContext,
    StageHandler,
)
from streamcoord.worker._attempt import AttemptRunner, HandlerMiddleware
from tests.unit.worker.helpers import NOW, ListSink, context, make_trigger


@pytest.fixture
def threads() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2) as pool:
        yield pool


def runner(sink: ListSink, threads: ThreadPoolExecutor, **options: object) -> AttemptRunner:
    options.setdefault("heartbeat_interval_s", 60.0)
    return AttemptRunner(sink, threads, clock=lambda: NOW, **options)  # type: ignore[arg-type]


async def test_outputs_of_an_async_handler_become_the_succeeded_event(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)

    async def handler(ctx: StageContext) -> Outputs:
        return {"rows": 3, "day": ctx.params["day"]}

    trigger = make_trigger(params={"day": "2024-01-01"})
    await run.run(context(trigger, run), handler)
    started, succeeded = sink.events
    assert isinstance(started, StageStarted)
    assert isinstance(succeeded, StageSucceeded)
    assert started.id == "orders/2024-01-01/extract/1/started"
    assert succeeded.id == "orders/2024-01-01/extract/1/succeeded"
    assert succeeded.data.outputs == {"rows": 3, "day": "2024-01-01"}


async def test_a_sync_handler_runs_in_a_thread_and_may_report_progress(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)

    def handler(ctx: StageContext) -> Outputs:
        ctx.progress_threadsafe(offsets={"0": 10})
        ctx.progress_threadsafe(offsets={"0": 20}, watermark=NOW)
        return None

    await run.run(context(make_trigger(), run), handler)
    progress = [e for e in sink.events if isinstance(e, StageProgress)]
    assert [p.data.offsets for p in progress] == [{"0": 10}, {"0": 20}]
    assert progress[1].data.watermark == NOW
    assert [p.id.rsplit("/", 1)[1] for p in progress] == ["1", "2"]
    assert isinstance(sink.events[-1], StageSucceeded)
    assert sink.events[-1].data.outputs == {}


@pytest.mark.parametrize(
    ("error", "retryable", "text"),
    [
        (RuntimeError("disk full"), True, "RuntimeError: disk full"),
        (NonRetryableError("bad input"), False, "bad input"),
    ],
)
async def test_an_exception_fails_the_attempt_saying_whether_to_retry(
    threads: ThreadPoolExecutor, error: Exception, retryable: bool, text: str
) -> None:
    sink = ListSink()
    run = runner(sink, threads)

    async def handler(ctx: StageContext) -> Outputs:
        raise error

    await run.run(context(make_trigger(), run), handler)
    failed = sink.events[-1]
    assert isinstance(failed, StageFailed)
    assert (failed.data.retryable, failed.data.error) == (retryable, text)


async def test_deferred_leaves_the_outcome_to_a_callback(threads: ThreadPoolExecutor) -> None:
    sink = ListSink()
    run = runner(sink, threads)

    async def handler(ctx: StageContext) -> Outputs:
        return DEFERRED

    await run.run(context(make_trigger(), run), handler)
    assert [type(e) for e in sink.events] == [StageStarted]


async def test_heartbeats_flow_while_the_handler_runs(threads: ThreadPoolExecutor) -> None:
    sink = ListSink()
    run = runner(sink, threads, heartbeat_interval_s=0.01)
    beats = asyncio.Event()

    async def handler(ctx: StageContext) -> Outputs:
        await sink.wait_for(StageHeartbeat, 2)
        beats.set()
        return None

    await run.run(context(make_trigger(), run), handler)
    assert beats.is_set()
    ids = [e.id for e in sink.events if isinstance(e, StageHeartbeat)]
    assert ids[:2] == [
        "orders/2024-01-01/extract/1/heartbeat/1",
        "orders/2024-01-01/extract/1/heartbeat/2",
    ]


async def test_cancelling_an_attempt_reports_a_retryable_shutdown_failure(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)
    entered = asyncio.Event()

    async def handler(ctx: StageContext) -> Outputs:
        entered.set()
        await asyncio.Event().wait()
        return None

    ctx = context(make_trigger(), run)
    task = asyncio.create_task(run.run(ctx, handler))
    await entered.wait()
    task.cancel()
    await task
    failed = sink.events[-1]
    assert isinstance(failed, StageFailed)
    assert (failed.data.error, failed.data.retryable) == (SHUTDOWN_ERROR, True)
    assert ctx.cancelled


async def test_a_cancelled_attempt_that_gives_up_fails_for_good(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)

    async def handler(ctx: StageContext) -> Outputs:
        ctx.cancel("run cancelled")
        await ctx.wait_cancelled()
        raise RuntimeError("stopped early")

    await run.run(context(make_trigger(), run), handler)
    failed = sink.events[-1]
    assert isinstance(failed, StageFailed)
    assert failed.data.retryable is False
    assert failed.data.error.startswith("cancelled (run cancelled)")


async def test_middleware_wraps_the_handler_in_order(threads: ThreadPoolExecutor) -> None:
    sink = ListSink()
    calls: list[str] = []

    def layer(name: str) -> HandlerMiddleware:
        async def middleware(ctx: StageContext, call_next: object) -> Outputs:
            calls.append(f"{name}>")
            result: Outputs = await call_next()  # type: ignore[operator]
            calls.append(f"<{name}")
            return result

        return middleware

    run = runner(sink, threads, middleware=[layer("outer"), layer("inner")])

    def handler(ctx: StageContext) -> Outputs:
        calls.append("handler")
        return None

    await run.run(context(make_trigger(), run), handler)
    assert calls == ["outer>", "inner>", "handler", "<inner", "<outer"]


def test_registry_prefers_pipeline_stage_then_stage_then_catch_all() -> None:
    registry = HandlerRegistry()

    def specific(ctx: StageContext) -> Outputs: ...
    def by_stage(ctx: StageContext) -> Outputs: ...
    def fallback(ctx: StageContext) -> Outputs: ...

    registry.add("orders.extract", specific)
    registry.add("extract", by_stage)
    assert registry.resolve(make_trigger("load")) is None
    registry.add(None, fallback)
    assert registry.resolve(make_trigger("extract")) is specific
    assert registry.resolve(make_trigger("load")) is fallback
    with pytest.raises(ConfigError, match="already has a handler"):
        registry.add("extract", fallback)


def test_class_handlers_register_under_their_stage() -> None:
    class Load(StageHandler):
        stage = "orders.load"

        async def run(self, ctx: StageContext) -> Outputs:
            return {"loaded": True}

    registry = HandlerRegistry()
    registry.add_class(Load())
    assert registry.resolve(make_trigger("load")) is not None
    assert registry.resolve(make_trigger("extract")) is None


async def test_a_cancelled_async_handler_is_interrupted_and_fails_for_good(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)
    entered, interrupted = asyncio.Event(), asyncio.Event()

    async def handler(ctx: StageContext) -> Outputs:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return None

    ctx = context(make_trigger(), run)
    task = asyncio.create_task(run.run(ctx, handler))
    await entered.wait()
    ctx.cancel("start_timeout: start timeout")
    ctx.cancel("a second cancel changes nothing")
    await task
    assert interrupted.is_set()
    failed = sink.events[-1]
    assert isinstance(failed, StageFailed)
    assert failed.data.retryable is False
    assert failed.data.error == (
        "cancelled (start_timeout: start timeout): the handler was cancelled"
    )


async def test_a_sync_handler_sees_the_cancellation_and_is_waited_for(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)
    entered = threading.Event()

    def handler(ctx: StageContext) -> Outputs:
        entered.set()
        while not ctx.cancelled:  # the documented way for sync handlers: check the flag
            time.sleep(0.005)
        raise RuntimeError("stopped on request")

    ctx = context(make_trigger(), run)
    task = asyncio.create_task(run.run(ctx, handler))
    await asyncio.to_thread(entered.wait, 10)
    ctx.cancel("run_cancelled: stop")
    async with asyncio.timeout(10):
        await task
    failed = sink.events[-1]
    assert isinstance(failed, StageFailed)
    assert failed.data.error == "cancelled (run_cancelled: stop): RuntimeError: stopped on request"


async def test_the_triggers_deadline_cancels_the_attempt_retryably(
    threads: ThreadPoolExecutor,
) -> None:
    sink = ListSink()
    run = runner(sink, threads)

    async def handler(ctx: StageContext) -> Outputs:
        await asyncio.Event().wait()
        return None

    base = make_trigger()
    data = base.data.model_copy(
        update={"timeout_seconds": 0.05, "deadline": NOW + timedelta(seconds=0.05)}
    )
    ctx = context(base.model_copy(update={"data": data}), run)
    assert ctx.deadline == NOW + timedelta(seconds=0.05)
    async with asyncio.timeout(10):
        await run.run(ctx, handler)
    failed = sink.events[-1]
    assert isinstance(failed, StageFailed)
    assert failed.data.retryable is True
    assert failed.data.error.startswith("cancelled (execution timeout (0.05s))")


class HeldStartedSink(ListSink):
    """Acknowledges ``started`` only once ``release`` is set (or fails it with ``error``)."""

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.error = error

    async def send(self, event: CloudEvent) -> CloudEvent:
        if isinstance(event, StageStarted):
            await self.release.wait()
            if self.error is not None:
                raise self.error
        return await super().send(event)


async def test_the_handler_starts_before_started_is_acknowledged_and_reports_wait_for_it(
    threads: ThreadPoolExecutor,
) -> None:
    sink = HeldStartedSink()
    run = runner(sink, threads)
    entered = asyncio.Event()

    async def handler(ctx: StageContext) -> Outputs:
        entered.set()  # runs while the broker has not acknowledged `started` yet
        await ctx.progress(offsets={"0": 1})  # waits for `started`, then goes out
        return {"rows": 1}

    task = asyncio.create_task(run.run(context(make_trigger(), run), handler))
    async with asyncio.timeout(10):
        await entered.wait()
    assert sink.events == []
    sink.release.set()
    await task
    assert [type(e) for e in sink.events] == [StageStarted, StageProgress, StageSucceeded]


async def test_an_unacknowledged_started_cancels_the_handler_and_sends_no_outcome(
    threads: ThreadPoolExecutor,
) -> None:
    sink = HeldStartedSink(error=RuntimeError("broker unreachable"))
    run = runner(sink, threads)
    entered = asyncio.Event()

    async def handler(ctx: StageContext) -> Outputs:
        entered.set()
        await asyncio.Event().wait()  # long work, stopped by the cancellation
        return None

    ctx = context(make_trigger(), run)
    task = asyncio.create_task(run.run(ctx, handler))
    async with asyncio.timeout(10):
        await entered.wait()
    sink.release.set()
    with pytest.raises(RuntimeError, match="broker unreachable"):
        await task
    assert ctx.cancelled
    assert sink.events == []  # no outcome without a durable `started` before it
