"""The worker: consume triggers in a consumer group, run their handlers, report, then commit.

Delivery guarantee, stated plainly:

* Triggers are read ``read_committed`` in a consumer group with manual commits. A trigger's
  offset is committed only after its outcome event was acknowledged by the broker (offsets of a
  partition are committed up to the oldest attempt still running), so a crash re-delivers every
  trigger whose outcome is not durable: at-least-once.
* A handler starts as soon as its trigger has a slot; its ``started`` report is sent meanwhile
  and acknowledged before any other report of the attempt (heartbeat, progress, outcome), so
  the events topic always shows ``started`` first. If it is not acknowledged, the attempt is
  cancelled and nothing else is reported for it (the worker stops, as for any lost report).
* Within one worker's lifetime a trigger whose idempotency key was already taken (running or
  done) is skipped, never run twice.
* Across a crash or a rebalance an attempt may run again elsewhere. Its reports carry ids
  derived from the idempotency key and the core ignores a second outcome of an attempt that is
  already over, so a repeat never changes the run; make side effects idempotent on
  ``ctx.idempotency_key`` where running twice would hurt.
* Cancellation: the coordinator publishes ``streamcoord.stage.cancel`` on the trigger topic,
  after the trigger in the same partition, when it ends an attempt (run cancelled, start /
  execution / heartbeat timeout). The worker cancels that attempt if it runs here: an async
  handler gets ``CancelledError``, a sync one sees ``ctx.cancelled`` (it should return soon);
  the attempt is reported failed, not retryable, and the coordinator ignores that report.
  A trigger still waiting for a slot is dropped; a cancel delivered again changes nothing.
  The trigger's ``deadline`` cancels the attempt the same way (a retryable failure).
  To keep cancels flowing while every slot is busy, up to ``concurrency`` triggers wait in
  memory; fetching pauses beyond that and resumes the moment a slot frees (not after the poll
  timeout). A slot frees when the handler returns: its reports are delivered meanwhile (the
  offset still waits for them), and at most ``concurrency`` attempts may be delivering before
  their slots count as busy again. :meth:`Worker.cancel` cancels a run's attempts by hand.
* SIGTERM (``stop`` set): fetching stops at once, running attempts get ``shutdown_grace_s`` to
  finish; the rest are reported ``failed`` (retryable, "worker shut down") before offsets are
  committed and the group is left. Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from streamcoord.emit import Emitter, SendHook
from streamcoord.errors import ConfigError, StreamcoordError
from streamcoord.events.codec import EventDecodeError, decode
from streamcoord.events.models import CloudEvent, StageCancel, StageTrigger
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.ports import GroupConsumer, Record, TopicPartition, Transport, TransportError
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.worker._attempt import AttemptRunner, Clock, EventSink, HandlerMiddleware
from streamcoord.worker._context import StageContext
from streamcoord.worker._offsets import OffsetTracker
from streamcoord.worker._registry import Handler, HandlerRegistry, StageHandler
from streamcoord.worker._settings import WorkerSettings

__all__ = ["Worker", "WorkerError", "WorkerStatus"]

log = logging.getLogger(__name__)

H = TypeVar("H", bound=Handler)
KeyState = Literal["running", "done"]


class WorkerError(StreamcoordError):
    """The worker cannot go on (reports not acknowledged); uncommitted triggers come back."""

    retryable = True


@dataclass
class WorkerStatus:
    """Counters for health checks and tests."""

    consuming: bool = False
    started: int = 0
    finished: int = 0
    duplicates: int = 0
    skipped: int = 0
    shutdown_failures: int = 0
    cancelled: int = 0

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()

    def bump(self, counter: str) -> None:
        """Add one to ``counter`` and wake whoever waits for a change."""
        setattr(self, counter, getattr(self, counter) + 1)
        self._changed.set()

    async def wait_until(self, predicate: Callable[[WorkerStatus], bool]) -> None:
        """Return once ``predicate(self)`` holds (it is checked after every change)."""
        while not predicate(self):
            self._changed.clear()
            await self._changed.wait()

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


@dataclass(frozen=True)
class _Slot:
    """Where a trigger came from, to mark its offset finished once its outcome is durable."""

    tp: TopicPartition
    tracker: OffsetTracker
    offset: int


class Worker:
    """Runs stage handlers for the triggers on its executor topics.

    ``@worker.stage("orders.extract")`` registers a function (async, or sync run in a thread);
    ``worker.add(MyHandler())`` registers a :class:`StageHandler`; ``await worker.run(stop)``.
    """

    def __init__(
        self,
        settings: WorkerSettings | None = None,
        kafka: KafkaSettings | None = None,
        *,
        bootstrap_servers: str | None = None,
        middleware: Sequence[HandlerMiddleware] = (),
        send_hooks: Sequence[SendHook] = (),
        sink: EventSink | None = None,
        clock: Clock | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.settings = settings or WorkerSettings()
        self.kafka = kafka or KafkaSettings.load(bootstrap_servers=bootstrap_servers)
        # the Kafka clients (default: aiokafka's, made with ``kafka``); an in-memory cluster's
        # (streamcoord.testing) runs the worker without a broker
        self._transport = transport or KafkaTransport(self.kafka.client_kwargs())
        self.registry = HandlerRegistry()
        self.status = WorkerStatus()
        self.ready = asyncio.Event()
        self._middleware = list(middleware)
        self._send_hooks = list(send_hooks)
        self._sink = sink
        self._clock = clock
        self._keys: OrderedDict[str, KeyState] = OrderedDict()
        self._trackers: dict[TopicPartition, OffsetTracker] = {}
        self._assigned: set[TopicPartition] = set()  # the partitions the group gave this member
        self._running: dict[asyncio.Task[None], StageContext] = {}  # handlers running
        self._reporting: set[asyncio.Task[None]] = set()  # handlers over, reports in flight
        # triggers read while every slot was busy, in order (see the module docstring)
        self._waiting: deque[tuple[StageTrigger, Handler, _Slot]] = deque()
        self._fatal: BaseException | None = None
        # set whenever an attempt ends: wakes a consume loop whose fetching is paused
        self._slot_freed = asyncio.Event()
        self._committing: asyncio.Task[None] | None = None  # the offset commit in flight

    # ---- registration ---------------------------------------------------------------------

    def stage(self, name: str | None = None) -> Callable[[H], H]:
        """Decorator: run the function for triggers of ``name`` (``pipeline.stage`` or ``stage``;
        None for every trigger no other handler claims)."""

        def register(handler: H) -> H:
            self.registry.add(name, handler)
            return handler

        return register

    def add(self, handler: StageHandler) -> None:
        """Register a :class:`StageHandler` instance under its ``stage``."""
        self.registry.add_class(handler)

    def cancel(self, run_id: str, reason: str = "run cancelled") -> int:
        """Cancel every running attempt of ``run_id`` (see :class:`StageContext`); returns how
        many."""
        hits = [ctx for ctx in self._running.values() if ctx.run_id == run_id]
        for ctx in hits:
            ctx.cancel(reason)
        return len(hits)

    @property
    def in_flight(self) -> int:
        """Attempts running now."""
        return len(self._running)

    # ---- running --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then drain and leave the group."""
        if not len(self.registry):
            raise ConfigError("this worker has no handlers", hint="register one with @stage()")
        settings = self.settings
        consumer = self._transport.group_consumer(
            settings.group_id, instance_id=settings.instance_id, max_records=settings.concurrency
        )
        emitter = (
            None
            if self._sink is not None
            else Emitter(self.kafka, hooks=self._send_hooks, transport=self._transport)
        )
        if emitter is not None:
            await emitter.start()
        sink: EventSink = self._sink or emitter  # type: ignore[assignment]  # one of them is set
        with ThreadPoolExecutor(settings.concurrency, thread_name_prefix="stage") as threads:
            runner = AttemptRunner(
                sink, threads, heartbeat_interval_s=settings.heartbeat_interval_s,
                middleware=self._middleware, **({"clock": self._clock} if self._clock else {}),
            )  # fmt: skip
            try:
                await consumer.start()
                await self._subscribe(consumer)
                await self._consume(consumer, runner, stop)
            finally:
                self.status.consuming = False
                await self._drain(consumer)
                with contextlib.suppress(TransportError):
                    await consumer.stop()
                if emitter is not None:
                    await emitter.stop()
        if self._fatal is not None:
            raise WorkerError(
                f"reports could not be sent: {self._fatal}",
                hint="check the broker; unreported triggers are delivered again on restart",
            )

    async def _subscribe(self, consumer: GroupConsumer) -> None:
        topics = [self.kafka.topic(name) for name in self.settings.topics]
        missing = [t for t in topics if not await consumer.partition_count(t)]
        if missing:
            raise ConfigError(
                f"topic(s) {', '.join(missing)} do not exist",
                hint="create them with `streamcoord topics apply`",
            )

        async def revoked(partitions: set[TopicPartition]) -> None:
            self._assigned -= partitions
            await self.hand_over(consumer, partitions)

        async def assigned(partitions: set[TopicPartition]) -> None:
            self._assigned |= partitions
            self.ready.set()

        consumer.subscribe(topics, on_revoked=revoked, on_assigned=assigned)
        self.status.consuming = True

    async def _consume(
        self, consumer: GroupConsumer, runner: AttemptRunner, stop: asyncio.Event
    ) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set() and self._fatal is None:
                self._slot_freed.clear()
                self._start_waiting(runner)
                free = self._free_slots()
                paused = self._throttle(consumer, free)
                # as many as can start now plus as many as may wait (cancels must get through)
                room = max(free, 0) + max(self.settings.concurrency - len(self._waiting), 0)
                fetch = asyncio.ensure_future(
                    consumer.fetch(
                        timeout_ms=self.settings.poll_timeout_ms, max_records=max(room, 1)
                    )
                )
                # Paused, the poll would wait out its whole timeout: a freed slot ends it.
                freed = asyncio.ensure_future(self._slot_freed.wait()) if paused else None
                waits = {fetch, stopping} if freed is None else {fetch, stopping, freed}
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if freed is not None:
                        freed.cancel()
                if not fetch.done():
                    # Cancelling a fetch loses nothing: records are only taken on its return.
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, TransportError):
                        await fetch
                    if stop.is_set():
                        break
                else:
                    for tp, records in fetch.result().items():
                        for record in records:
                            self._accept(tp, record, runner)
                # In the background, one at a time: intake does not wait for a broker round trip
                # per poll (what is committed is durable either way; _drain commits the rest).
                if self._committing is None or self._committing.done():
                    self._committing = asyncio.create_task(self._commit(consumer))
        finally:
            stopping.cancel()
            if self._committing is not None:
                await asyncio.gather(self._committing, return_exceptions=True)

    def _throttle(self, consumer: GroupConsumer, free: int) -> bool:
        """Pause or resume fetching; returns whether it is paused."""
        # Paused partitions keep the member alive in the group without fetching more work.
        # With every slot busy, fetching goes on (one record at a time) until as many
        # triggers wait: cancels behind them must still arrive.
        assignment = sorted(self._assigned)
        if free <= 0 and len(self._waiting) >= self.settings.concurrency:
            consumer.pause(*assignment)
            return True
        consumer.resume(*assignment)
        return False

    def _accept(self, tp: TopicPartition, record: Record, runner: AttemptRunner) -> None:
        tracker = self._trackers.setdefault(tp, OffsetTracker())
        tracker.begin(record.offset)
        event = self._event_of(tp, record)
        if isinstance(event, StageCancel):
            self._on_cancel(event)
            tracker.finish(record.offset)
            return
        handler = None if event is None else self._claim(event)
        if event is None or handler is None:
            tracker.finish(record.offset)
            return
        self._waiting.append((event, handler, _Slot(tp, tracker, record.offset)))
        self._start_waiting(runner)

    def _start_waiting(self, runner: AttemptRunner) -> None:
        """Start waiting triggers, oldest first, while slots are free. A retry waits until an
        earlier attempt of its stage running here is over (its process group is gone), so one
        stage of one run never runs twice at once on this worker."""
        loop = asyncio.get_running_loop()
        for entry in list(self._waiting):
            if self._free_slots() <= 0:
                return
            trigger, handler, slot = entry
            if self._busy(trigger):
                continue
            self._waiting.remove(entry)
            if self._trackers.get(slot.tp) is not slot.tracker:  # partition handed over
                self._keys.pop(trigger.data.idempotency_key, None)
                continue
            ctx = StageContext(trigger, runner.reporter(trigger), loop)
            task = asyncio.create_task(self._attempt(runner, ctx, handler, slot))
            self._running[task] = ctx
            self.status.bump("started")

    def _free_slots(self) -> int:
        """Slots for new handlers: ``concurrency`` less the handlers running, less the
        attempts delivering their reports beyond ``concurrency`` (a slow broker slows intake)."""
        backlog = max(0, len(self._reporting) - self.settings.concurrency)
        return self.settings.concurrency - len(self._running) - backlog

    def _busy(self, trigger: StageTrigger) -> bool:
        data = trigger.data
        return any(
            ctx.run_id == data.run_id and ctx.stage == data.stage for ctx in self._running.values()
        )

    def _event_of(self, tp: TopicPartition, record: Record) -> StageTrigger | StageCancel | None:
        try:
            event: CloudEvent = decode(record.value, record.headers or ())
        except EventDecodeError as error:
            log.warning("%s@%d is not an event (%s); skipped", tp, record.offset, error)
            self.status.bump("skipped")
            return None
        if not isinstance(event, StageTrigger | StageCancel):
            log.warning("%s@%d is a %s, not a trigger; skipped", tp, record.offset, event.type)
            self.status.bump("skipped")
            return None
        return event

    def _on_cancel(self, cancel: StageCancel) -> None:
        """Stop the attempt ``cancel`` names: running here, waiting here, or not seen yet."""
        key = cancel.data.idempotency_key
        reason = f"{cancel.data.cause}: {cancel.data.reason}".rstrip(": ")
        for ctx in self._running.values():
            if ctx.idempotency_key == key:
                if not ctx.cancelled:
                    log.info("attempt %s cancelled by the coordinator (%s)", key, reason)
                    ctx.cancel(reason)
                    self.status.bump("cancelled")
                return
        for entry in list(self._waiting):
            if entry[0].data.idempotency_key == key:  # never started: nothing to report
                self._waiting.remove(entry)
                entry[2].tracker.finish(entry[2].offset)
                self.status.bump("cancelled")
        # also a trigger read again later (a rebalance) is not run
        self._remember(key, "done")

    def _claim(self, trigger: StageTrigger) -> Handler | None:
        key = trigger.data.idempotency_key
        if key in self._keys:
            log.info("trigger %s delivered again (%s here); not run twice", key, self._keys[key])
            self.status.bump("duplicates")
            return None
        handler = self.registry.resolve(trigger)
        if handler is None:
            log.warning(
                "no handler for %s.%s on this worker; trigger %s left to other worker groups",
                trigger.data.pipeline, trigger.data.stage, key,
            )  # fmt: skip
            self.status.bump("skipped")
            return None
        self._remember(key, "running")
        return handler

    def _remember(self, key: str, state: KeyState) -> None:
        self._keys[key] = state
        self._keys.move_to_end(key)
        while len(self._keys) > self.settings.remembered_keys:
            oldest = next(iter(self._keys))
            if self._keys[oldest] == "running":
                break  # running attempts are never forgotten
            del self._keys[oldest]

    async def _attempt(
        self, runner: AttemptRunner, ctx: StageContext, handler: Handler, slot: _Slot
    ) -> None:
        task: asyncio.Task[None] = asyncio.current_task()  # type: ignore[assignment]  # in a task

        def returned() -> None:  # the handler is over: its slot goes to the next trigger now
            if self._running.pop(task, None) is not None:
                self._reporting.add(task)
                self._slot_freed.set()
                self._start_waiting(runner)

        try:
            await runner.run(ctx, handler, returned)
        except Exception as error:  # the report was not acknowledged: stop, commit nothing past it
            log.exception("reports for %s were not acknowledged", ctx.idempotency_key)
            self._fatal = error
            self._keys.pop(ctx.idempotency_key, None)
            return
        finally:
            self._running.pop(task, None)
            self._reporting.discard(task)
            self._slot_freed.set()
        self._remember(ctx.idempotency_key, "done")
        self.status.bump("finished")
        if self._trackers.get(slot.tp) is slot.tracker:  # not handed over to another member
            slot.tracker.finish(slot.offset)
        self._start_waiting(runner)  # the freed slot goes to the oldest waiting trigger

    async def _commit(
        self, consumer: GroupConsumer, only: set[TopicPartition] | None = None
    ) -> None:
        offsets = {
            tp: offset
            for tp, tracker in self._trackers.items()
            if (only is None or tp in only) and (offset := tracker.committable()) is not None
        }
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except TransportError as error:  # e.g. a rebalance: the next owner re-reads, cores dedup
            log.warning(
                "offset commit failed (%s); triggers may be delivered again", error,
                extra={"retrying": True},
            )  # fmt: skip

    async def hand_over(self, consumer: GroupConsumer, revoked: set[TopicPartition]) -> None:
        """Partitions go to another member: commit what is durable, forget their offsets."""
        await self._commit(consumer, revoked)
        for tp in revoked:
            self._trackers.pop(tp, None)

    async def _drain(self, consumer: GroupConsumer) -> None:
        self._waiting.clear()  # not started: their offsets stay uncommitted, read again later
        with contextlib.suppress(Exception):
            consumer.pause(*sorted(self._assigned))
        attempts = set(self._running) | self._reporting
        if attempts:
            log.info("waiting up to %.0fs for %d attempt(s)", self.settings.shutdown_grace_s,
                     len(attempts))  # fmt: skip
            _, late = await asyncio.wait(attempts, timeout=self.settings.shutdown_grace_s or None)
            for task in late:
                task.cancel()  # the runner reports a retryable "worker shut down" failure
            for _ in late:
                self.status.bump("shutdown_failures")
            await asyncio.gather(*late, return_exceptions=True)
        await self._commit(consumer)
