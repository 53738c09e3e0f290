"""The runtime's ports (:mod:`streamcoord.kafka.ports`) implemented with confluent-kafka.

confluent-kafka wraps librdkafka, which batches, fetches and runs the transaction protocol in C
threads of its own; its Python calls block. So each blocking call runs off the event loop:

- a group consumer owns one thread (:class:`_ClientThread`) that makes every call of its
  librdkafka consumer, in order (the consumer is not thread-safe and confluent-kafka serialises
  callers from other threads by blocking them). ``seek``, ``pause`` and ``resume`` are
  synchronous in the port: they are queued and applied by that thread before its next fetch.
  The group's assignment callbacks run on that thread too; they run the runtime's coroutine on
  the event loop and, while waiting for it, make the consumer calls it makes (a commit of the
  revoked partitions' positions), as re-entrant calls of the same thread;
- transactional and plain producers call the quick, non-blocking ``produce`` and
  ``begin_transaction`` on the event loop and the blocking ones (``init_transactions``,
  ``flush``, ``commit_transaction``, ``abort_transaction``) in a thread pool;
- the changelog and the topic reader read in a worker thread.

librdkafka's ``KafkaException`` (a fenced producer included) leaves as :class:`TransportError`,
as the aiokafka adapter's errors do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
)
from confluent_kafka import Producer as RdProducer
from confluent_kafka import TopicPartition as RdTopicPartition

from streamcoord.errors import ConfigError
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.ports import (
    AssignmentCallback,
    ChangelogContents,
    DeliveryProducer,
    OutRecord,
    PartitionReader,
    Record,
    TopicPartition,
    TransportError,
)

__all__ = [
    "ConfluentChangelog",
    "ConfluentGroupConsumer",
    "ConfluentProducer",
    "ConfluentRecord",
    "ConfluentTopicReader",
    "ConfluentTransactionalSink",
    "ConfluentTransport",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a metadata request or a plain call may take before it is a TransportError.
_REQUEST_TIMEOUT_S = 10.0
#: How long a partition count read from metadata is trusted (aiokafka refreshes every 5 min).
_METADATA_TTL_S = 30.0


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """librdkafka's errors as the ports' :class:`TransportError`."""
    try:
        yield
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        text = error.str() if isinstance(error, KafkaError) else str(exc)
        raise TransportError(text or type(exc).__name__) from exc
    except BufferError as exc:  # the local queue is full: the broker does not keep up
        raise TransportError(str(exc)) from exc
    except SystemError as exc:
        # A fatal error (a fenced producer) raised while a flush ran a delivery callback
        # reaches Python as a SystemError around the KafkaException.
        cause = exc.__cause__ or exc.__context__
        if not isinstance(cause, KafkaException):
            raise
        error = cause.args[0] if cause.args else None
        text = error.str() if isinstance(error, KafkaError) else str(cause)
        raise TransportError(text) from exc


class ConfluentRecord(NamedTuple):
    """A consumed record (the shape of :class:`~streamcoord.kafka.ports.Record`)."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


def _record(message: Message) -> ConfluentRecord:
    headers = message.headers()
    return ConfluentRecord(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.timestamp()[1],
        message.key(),
        message.value(),
        [(k, _header_bytes(v)) for k, v in headers] if isinstance(headers, list) else (),
    )


def _header_bytes(value: str | bytes | None) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value or "").encode()


def _records(messages: Sequence[Message]) -> dict[TopicPartition, list[Record]]:
    """Records grouped by partition, in offset order; end-of-partition events dropped, a fatal
    error raised."""
    batch: dict[TopicPartition, list[Record]] = {}
    for message in messages:
        error = message.error()
        if error is not None:
            if error.fatal():
                raise TransportError(error.str())
            if error.code() != KafkaError._PARTITION_EOF:
                log.debug("consumer: %s", error.str())
            continue
        record = _record(message)
        tp = TopicPartition(record.topic, record.partition)
        got = batch.get(tp)
        if got is None:
            batch[tp] = [record]
        else:
            got.append(record)
    return batch


def _take(consumer: Consumer, max_records: int, timeout_s: float) -> list[Message]:
    """Up to ``max_records`` messages, as soon as there is one: ``consume()`` would wait for a
    full batch or the whole timeout; ``poll()`` returns with the first message."""
    first = consumer.poll(timeout_s)
    if first is None:
        return []
    messages = [first]
    if max_records > 1:
        messages.extend(consumer.consume(max_records - 1, 0))
    return messages


def _partition_count(client: Consumer | RdProducer, topic: str) -> int | None:
    metadata = client.list_topics(topic, timeout=_REQUEST_TIMEOUT_S)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        return None
    return len(described.partitions)


class ConfluentTransport:
    """confluent-kafka clients made with ``config`` (librdkafka properties:
    :meth:`KafkaSettings.confluent_config`)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        refusal: Callable[[], Awaitable[Exception | None]] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        # The emitter's and the readers' ports stay on aiokafka (``client_kwargs``: the same
        # connection in its words; by default the bootstrap servers alone): only the
        # coordinator's consumer, producers and changelog run on librdkafka.
        self._edges = KafkaTransport(
            client_kwargs or {"bootstrap_servers": config["bootstrap.servers"]}
        )
        # A restarted broker is found again within a second, as aiokafka does, not after
        # librdkafka's backoff of up to 10 s.
        self.config = {"reconnect.backoff.max.ms": 1000, **config}
        self._refusal = refusal
        # Blocking producer calls (flush, commit) of every partition at once: more than the
        # default executor's few threads.
        self._pool = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="rdkafka")

    def prepare(self) -> None:
        """Nothing process-wide: librdkafka is configured per client."""

    def group_consumer(
        self, group_id: str, *, instance_id: str | None, max_records: int
    ) -> ConfluentGroupConsumer:
        return ConfluentGroupConsumer(self.config, group_id, instance_id)

    def producer(self) -> ConfluentProducer:
        return ConfluentProducer(self.config, self._pool)

    def transactional_sink(
        self, transactional_id: str, *, timeout_s: float
    ) -> ConfluentTransactionalSink:
        return ConfluentTransactionalSink(self.config, transactional_id, timeout_s, self._pool)

    def changelog(self, topic: str) -> ConfluentChangelog:
        return ConfluentChangelog(self.config, topic)

    def topic_reader(self, topic: str) -> ConfluentTopicReader:
        return ConfluentTopicReader(self.config, topic)

    def delivery_producer(self, *, linger_ms: int = 5) -> DeliveryProducer:
        return self._edges.delivery_producer(linger_ms=linger_ms)

    def partition_reader(self, *, max_records: int | None = None) -> PartitionReader:
        return self._edges.partition_reader(max_records=max_records)

    async def end_offset(self, tp: TopicPartition) -> int:
        def query() -> int:
            consumer = _reader(self.config)
            try:
                with _translated():
                    ends = consumer.get_watermark_offsets(
                        RdTopicPartition(tp.topic, tp.partition), timeout=_REQUEST_TIMEOUT_S
                    )
            finally:
                consumer.close()
            if ends is None:
                raise TransportError(f"no answer for the end of {tp.topic}[{tp.partition}]")
            return int(ends[1])

        return await asyncio.to_thread(query)

    async def refusal(self) -> Exception | None:
        return None if self._refusal is None else await self._refusal()


def _reader(config: Mapping[str, Any], **extra: Any) -> Consumer:
    """A consumer that is only assigned partitions (librdkafka wants a group id even so)."""
    return Consumer(
        {
            **config,
            "group.id": "streamcoord-reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            **extra,
        }
    )


class _ClientThread:
    """One thread that makes every call of one librdkafka client, in the order they come."""

    _WAKE: Any = object()

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._jobs.put((fn, args, future))
        return future

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def close(self) -> None:
        self._jobs.put(None)

    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def wait_serving(self, future: concurrent.futures.Future[T]) -> T:
        """On this thread: make the calls that come until ``future`` (a coroutine on the event
        loop that calls this client) is done, then its result."""
        future.add_done_callback(lambda _: self._jobs.put(self._WAKE))
        while not future.done():
            job = self._jobs.get()
            if job is None:  # closing: leave it for the outer loop
                self._jobs.put(None)
                break
            if job is not self._WAKE:
                self._run(job)
        return future.result()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job is not self._WAKE:
                self._run(job)

    @staticmethod
    def _run(
        job: tuple[Callable[..., Any], tuple[Any, ...], concurrent.futures.Future[Any]],
    ) -> None:
        fn, args, future = job
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # handed to the awaiting coroutine
            future.set_exception(exc)


_Fetched = tuple[dict[TopicPartition, list[Record]], int]


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shielded future's exception as seen (its fetch may have been cancelled)."""
    if not future.cancelled():
        future.exception()


class ConfluentGroupConsumer:
    """A librdkafka consumer in a group, ``read_committed``, assigning by range (eager)."""

    def __init__(self, config: Mapping[str, Any], group_id: str, instance_id: str | None) -> None:
        settings: dict[str, Any] = {
            **config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            # both inputs of a partition number to one member (see the coordinator's docstring)
            "partition.assignment.strategy": "range",
            # aiokafka's default: a member that died is replaced after 10 s, not librdkafka's 45
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 3_000,
            "fetch.wait.max.ms": 500,
        }
        if instance_id is not None:
            settings["group.instance.id"] = instance_id
        self._settings = settings
        self._consumer: Consumer | None = None
        self._thread: _ClientThread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # seek/pause/resume wait here for the consumer's thread (the port's calls are sync)
        self._pending: deque[tuple[str, TopicPartition, int]] = deque()
        self._seeks = 0
        self._sought: dict[TopicPartition, int] = {}  # tp -> number of the seek that moved it
        self._positions: dict[TopicPartition, int] = {}
        self._on_revoked: AssignmentCallback | None = None
        self._on_assigned: AssignmentCallback | None = None
        self._topics: list[str] = []
        # the thread call of a fetch that was cancelled, and the seeks made before it
        self._fetching: tuple[concurrent.futures.Future[_Fetched], int] | None = None
        self._rebalances = 0  # revocations so far (on the consumer's thread)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = _ClientThread(f"rdkafka-consumer-{self._settings['group.id']}")
        with _translated():
            self._consumer = await self._thread.call(Consumer, self._settings)
            # librdkafka connects lazily: ask for metadata so a missing cluster fails here
            await self._thread.call(self._consumer.list_topics, None, _REQUEST_TIMEOUT_S)
        if self._topics:  # subscribed before it started
            self._thread.submit(self._join, self._consumer)

    async def stop(self) -> None:
        thread, consumer = self._thread, self._consumer
        self._thread = self._consumer = None
        self._fetching = None
        if thread is None:
            return
        try:
            if consumer is not None:
                with _translated():
                    await thread.call(consumer.close)
        finally:
            thread.close()

    def _client(self) -> tuple[_ClientThread, Consumer]:
        if self._thread is None or self._consumer is None:
            raise TransportError("the consumer is not started")
        return self._thread, self._consumer

    async def partition_count(self, topic: str) -> int | None:
        thread, consumer = self._client()
        with _translated():
            return await thread.call(_partition_count, consumer, topic)

    # ---- the group ---------------------------------------------------------------------------

    def subscribe(
        self, topics: Sequence[str], *, on_revoked: AssignmentCallback,
        on_assigned: AssignmentCallback,
    ) -> None:  # fmt: skip
        self._on_revoked, self._on_assigned = on_revoked, on_assigned
        self._topics = list(topics)
        if self._thread is not None and self._consumer is not None:
            self._thread.submit(self._join, self._consumer)  # before any fetch: calls in order

    def _join(self, consumer: Consumer) -> None:
        consumer.subscribe(
            self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._revoked
        )

    def _run_callback(self, callback: AssignmentCallback | None, tps: set[TopicPartition]) -> None:
        """On the consumer's thread: run the runtime's callback on the event loop, making the
        consumer calls it makes meanwhile."""
        if callback is None or self._loop is None or self._thread is None:
            return

        async def run(callback: AssignmentCallback) -> None:
            await callback(tps)

        future = asyncio.run_coroutine_threadsafe(run(callback), self._loop)
        try:
            self._thread.wait_serving(future)
        except Exception:  # as aiokafka does with a failing listener: log it, go on
            log.exception("the assignment callback failed")

    def _revoked(self, consumer: Consumer, partitions: list[RdTopicPartition]) -> None:
        self._rebalances += 1
        self._run_callback(
            self._on_revoked, {TopicPartition(p.topic, p.partition) for p in partitions}
        )
        consumer.unassign()
        self._positions.clear()

    def _assigned(self, consumer: Consumer, partitions: list[RdTopicPartition]) -> None:
        tps = {TopicPartition(p.topic, p.partition) for p in partitions}
        self._run_callback(self._on_assigned, tps)
        # Seeks the callback made start the partitions at those offsets (a seek before the
        # assignment is in force would fail); the other queued calls follow the assignment.
        starts: dict[TopicPartition, int] = {}
        later: list[tuple[str, TopicPartition, int]] = []
        while self._pending:
            op = self._pending.popleft()
            if op[0] == "seek" and op[1] in tps:
                starts[op[1]] = op[2]
                self._sought.pop(op[1], None)  # records from here on are from that offset
            else:
                later.append(op)
        consumer.assign(
            [RdTopicPartition(tp.topic, tp.partition, starts.get(tp, -1001)) for tp in sorted(tps)]
        )
        self._positions.update(starts)
        self._apply(consumer, later)

    # ---- reading -----------------------------------------------------------------------------

    async def fetch(
        self, *, timeout_ms: int, max_records: int
    ) -> Mapping[TopicPartition, Sequence[Record]]:
        thread, consumer = self._client()
        # A fetch cancelled while its thread call runs would lose the records librdkafka
        # handed out (its position moved past them): the call goes on, and the next fetch
        # returns what it took, unless the partitions were revoked since (a new assignment
        # reads from the committed or sought offsets again).
        if self._fetching is None:
            job = thread.submit(self._fetch, consumer, timeout_ms / 1000, max_records)
            self._fetching = (job, self._seeks)
        job, seeks_before = self._fetching
        waited = asyncio.wrap_future(job)
        waited.add_done_callback(_retrieved)
        try:
            with _translated():
                fetched = await asyncio.shield(waited)
        except asyncio.CancelledError:
            raise  # even if the call is over meanwhile: its records are the next fetch's
        except BaseException:
            self._fetching = None
            raise
        self._fetching = None
        batch, rebalances = fetched
        if rebalances != self._rebalances:
            return {}
        for tp in [tp for tp in batch if self._sought.get(tp, 0) > seeks_before]:
            del batch[tp]  # fetched from before a seek made meanwhile: read again from there
        for tp, records in batch.items():
            self._positions[tp] = records[-1].offset + 1
        return batch

    def _fetch(self, consumer: Consumer, timeout_s: float, max_records: int) -> _Fetched:
        """Records, and how many revocations there were when they were taken."""
        self._apply(consumer, self._drain())
        batch = _records(_take(consumer, max_records, timeout_s))
        return batch, self._rebalances

    def _drain(self) -> list[tuple[str, TopicPartition, int]]:
        ops = []
        while self._pending:
            ops.append(self._pending.popleft())
        return ops

    def _apply(self, consumer: Consumer, ops: Sequence[tuple[str, TopicPartition, int]]) -> None:
        for kind, tp, offset in ops:
            partition = RdTopicPartition(tp.topic, tp.partition, offset)
            try:
                if kind == "seek":
                    consumer.seek(partition)
                elif kind == "pause":
                    consumer.pause([partition])
                else:
                    consumer.resume([partition])
            except KafkaException as exc:  # not assigned (any more): nothing to move
                log.debug("%s of %s: %s", kind, tp, exc)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._seeks += 1
        self._sought[tp] = self._seeks
        self._positions[tp] = offset
        self._pending.append(("seek", tp, offset))

    def pause(self, *tps: TopicPartition) -> None:
        self._pending.extend(("pause", tp, -1001) for tp in tps)

    def resume(self, *tps: TopicPartition) -> None:
        self._pending.extend(("resume", tp, -1001) for tp in tps)

    async def position(self, tp: TopicPartition) -> int:
        thread, consumer = self._client()
        with _translated():
            [known] = await thread.call(
                consumer.position, [RdTopicPartition(tp.topic, tp.partition)]
            )
        if known.offset >= 0 and tp not in self._pending_seeks():
            return int(known.offset)
        return self._positions.get(tp, 0)

    def _pending_seeks(self) -> set[TopicPartition]:
        return {tp for kind, tp, _ in list(self._pending) if kind == "seek"}

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        consumer = self._consumer
        if consumer is None:
            return None
        try:
            # cached: the high offset of the last fetch (the stable end under read_committed)
            ends = consumer.get_watermark_offsets(
                RdTopicPartition(tp.topic, tp.partition), cached=True
            )
        except (KafkaException, RuntimeError):
            return None
        if ends is None or ends[1] < 0:
            return None
        return int(ends[1])

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        thread, consumer = self._client()
        partitions = [RdTopicPartition(tp.topic, tp.partition, o) for tp, o in offsets.items()]

        def commit() -> None:
            consumer.commit(offsets=partitions, asynchronous=False)

        with _translated():
            if thread.on_thread():  # pragma: no cover - the runtime awaits from the loop
                commit()
            else:
                await thread.call(commit)


class _Producing:
    """What both producers share: a librdkafka producer and the pool for its blocking calls."""

    def __init__(
        self, settings: dict[str, Any], pool: concurrent.futures.ThreadPoolExecutor
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._producer: RdProducer | None = None
        self._partitions: dict[str, tuple[float, int | None]] = {}

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        with _translated():
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _client(self) -> RdProducer:
        if self._producer is None:
            raise TransportError("the producer is not started")
        return self._producer

    async def _count(self, topic: str) -> int | None:
        now = time.monotonic()
        known = self._partitions.get(topic)
        if known is not None and now - known[0] < _METADATA_TTL_S and known[1]:
            return known[1]
        count = await self._blocking(_partition_count, self._client(), topic)
        self._partitions[topic] = (now, count)
        return count

    async def _close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            # purge what is queued (nothing, after a commit or a flush), then let it go
            await self._blocking(producer.purge)
            await self._blocking(producer.close)
        except TransportError as exc:  # a fenced or failed producer: dropped all the same
            log.debug("closing a producer: %s", exc)


class ConfluentProducer(_Producing):
    """An idempotent librdkafka producer, ``acks=all``; a thread serves its delivery reports."""

    def __init__(
        self, config: Mapping[str, Any], pool: concurrent.futures.ThreadPoolExecutor
    ) -> None:
        super().__init__(
            {
                **config,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                # keyed records where the Java client (and aiokafka, and the core) put them
                "partitioner": "murmur2_random",
            },
            pool,
        )
        self._polling: threading.Thread | None = None
        self._running = False

    async def start(self) -> None:
        with _translated():
            producer = RdProducer(self._settings)
            await self._blocking(producer.list_topics, None, _REQUEST_TIMEOUT_S)
        self._producer = producer
        self._running = True
        self._polling = threading.Thread(
            target=self._serve_reports, args=(producer,), name="rdkafka-producer", daemon=True
        )
        self._polling.start()

    def _serve_reports(self, producer: RdProducer) -> None:
        while self._running:
            producer.poll(0.1)

    async def stop(self) -> None:
        producer = self._producer
        if producer is not None:
            await self._blocking(producer.flush, _REQUEST_TIMEOUT_S)
        self._running = False
        if self._polling is not None:
            await asyncio.to_thread(self._polling.join)
            self._polling = None
        await self._close()

    async def partition_count(self, topic: str) -> int | None:
        return await self._count(topic)

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (), *, partition: int | None = None,
    ) -> None:  # fmt: skip
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[None] = loop.create_future()

        def report(error: KafkaError | None, _: Message) -> None:
            loop.call_soon_threadsafe(_settle, delivered, error)

        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        with _translated():
            self._client().produce(
                topic, value, key, headers=list(headers), on_delivery=report, **extra
            )
        await delivered


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(TransportError(error.str()))


class ConfluentTransactionalSink(_Producing):
    """A transactional librdkafka producer: records are produced on the event loop (librdkafka
    batches them), the flush and the commit wait in a thread."""

    def __init__(
        self,
        config: Mapping[str, Any],
        transactional_id: str,
        timeout_s: float,
        pool: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        super().__init__(
            {
                **config,
                "transactional.id": transactional_id,
                "enable.idempotence": True,
                "acks": "all",
                # Whole batches are handed over and flushed: waiting for more only adds latency.
                "linger.ms": 0,
                # The broker answers CONCURRENT_TRANSACTIONS while the previous commit's markers
                # are written; librdkafka's 100 ms default backoff would stall the partition.
                "retry.backoff.ms": 3,
                "retry.backoff.max.ms": 100,
                "transaction.timeout.ms": int(timeout_s * 2000),
                "queue.buffering.max.messages": 1_000_000,
                # flush() waits for delivery reports, in 10 ms naps unless one arrives: without
                # a report callback none does, and every write waited the nap out
                "on_delivery": self._delivered,
            },
            pool,
        )
        self._timeout_s = timeout_s * 2
        self._failed: KafkaError | None = None

    def _delivered(self, error: KafkaError | None, _: Message) -> None:
        if error is not None and self._failed is None:
            self._failed = error

    async def start(self) -> None:
        with _translated():
            producer = RdProducer(self._settings)
        self._producer = producer
        try:
            # fences older producers of this id and aborts their open transaction
            await self._blocking(producer.init_transactions, self._timeout_s)
        except BaseException:
            self._producer = None
            with contextlib.suppress(Exception):
                await asyncio.to_thread(producer.close)
            raise

    async def stop(self) -> None:
        await self._close()

    async def partition_count(self, topic: str) -> int:
        count = await self._count(topic)
        if count is None:
            raise TransportError(f"topic {topic} has no partitions known to the producer")
        return count

    async def begin(self) -> None:
        with _translated():
            self._client().begin_transaction()  # local: no request to the broker

    async def write(self, records: Mapping[tuple[str, int], Sequence[OutRecord]]) -> None:
        producer = self._client()
        produce = producer.produce
        with _translated():
            for (topic, partition), placed in records.items():
                for record in placed:
                    produce(
                        topic,
                        record.value,
                        record.key,
                        partition=partition,
                        headers=cast(Any, record.headers) or None,
                        timestamp=record.timestamp or 0,
                    )
        remaining = await self._blocking(producer.flush, self._timeout_s)
        failed, self._failed = self._failed, None
        if failed is not None:
            raise TransportError(f"a record of the transaction was refused: {failed.str()}")
        if remaining:
            raise TransportError(f"{remaining} records not acknowledged in {self._timeout_s:.0f}s")

    async def commit(self) -> None:
        await self._blocking(self._client().commit_transaction, self._timeout_s)

    async def abort(self) -> None:
        await self._blocking(self._client().abort_transaction, self._timeout_s)


class ConfluentTopicReader:
    """A librdkafka consumer without a group, assigned every partition of one topic from its
    beginning; it is caught up once every partition reported its (stable) end."""

    def __init__(self, config: Mapping[str, Any], topic: str) -> None:
        self._config = config
        self._topic = topic
        self._consumer: Consumer | None = None
        self._behind: set[int] = set()

    async def start(self) -> None:
        consumer = _reader(self._config, **{"enable.partition.eof": True})
        try:
            with _translated():
                count = await asyncio.to_thread(_partition_count, consumer, self._topic)
        except BaseException:
            await asyncio.to_thread(consumer.close)
            raise
        if not count:
            await asyncio.to_thread(consumer.close)
            raise ConfigError(
                f"topic {self._topic} does not exist",
                hint="create it with `streamcoord topics apply`",
            )
        consumer.assign([RdTopicPartition(self._topic, p, OFFSET_BEGINNING) for p in range(count)])
        self._consumer = consumer
        self._behind = set(range(count))

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with _translated():
                await asyncio.to_thread(consumer.close)

    async def caught_up(self) -> bool:
        return not self._behind

    async def fetch(self, *, timeout_ms: int) -> Mapping[TopicPartition, Sequence[Record]]:
        consumer = self._consumer
        if consumer is None:
            raise TransportError("the topic reader is not started")
        with _translated():
            messages = await asyncio.to_thread(_take, consumer, 500, timeout_ms / 1000)
        for message in messages:
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                self._behind.discard(message.partition() or 0)
        return _records(messages)


class ConfluentChangelog:
    """Reads one changelog partition from its beginning to its last stable offset (where
    librdkafka reports the partition's end under ``read_committed``), in a worker thread."""

    def __init__(self, config: Mapping[str, Any], topic: str) -> None:
        self._config = config
        self._topic = topic

    async def read(self, partition: int, *, deadline_s: float) -> ChangelogContents:
        with _translated():
            return await asyncio.to_thread(self._read, partition, deadline_s)

    def _read(self, partition: int, deadline_s: float) -> ChangelogContents:
        started = time.monotonic()
        consumer = _reader(
            self._config,
            **{
                "enable.partition.eof": True,
                "fetch.max.bytes": 8 * 1024 * 1024,
                # the end shows as an empty fetch: a broker holding it back for new records
                # (500 ms by default) would only delay the restore
                "fetch.wait.max.ms": 5,
            },
        )
        items: dict[str, bytes] = {}
        records = 0
        try:
            # Leaders known first: an assignment without them retries its offset query only
            # after a fixed 500 ms.
            consumer.list_topics(self._topic, timeout=_REQUEST_TIMEOUT_S)
            consumer.assign([RdTopicPartition(self._topic, partition, OFFSET_BEGINNING)])
            while True:
                if time.monotonic() - started > deadline_s:
                    raise TimeoutError(
                        f"restoring {self._topic}[{partition}] took over {deadline_s:.0f}s"
                    )
                for message in _take(consumer, 10_000, 0.5):
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return ChangelogContents(items, records)
                        if error.fatal():
                            raise KafkaException(error)
                        continue
                    records += 1
                    raw_key = message.key()
                    key = raw_key.decode() if isinstance(raw_key, bytes) else ""
                    value = message.value()
                    if value is None:
                        items.pop(key, None)
                    else:
                        items[key] = value
        finally:
            consumer.close()
