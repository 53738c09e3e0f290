"""Producing CloudEvents onto the events topic, acknowledged by every in-sync replica.

Every event is keyed with :func:`~streamcoord.core.partition_key_for`, so one run's events share
a partition with the coordinator that owns the run. The producer is idempotent with
``acks="all"``: when :meth:`Emitter.send` returns, the broker holds the event.

One seam for telemetry: ``hooks`` are applied to each event just before it is encoded (a tracing
hook sets ``traceparent``/``tracestate``; the codec copies them into Kafka headers). Given a
``signing_key``, the emitter signs each event last, after the hooks, so the signature covers
every attribute sent (see :mod:`streamcoord.events.signing`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streamcoord.errors import StreamcoordError
from streamcoord.events import topology
from streamcoord.events.codec import EncodeMode, encode
from streamcoord.events.factory import make_event
from streamcoord.events.models import CloudEvent
from streamcoord.events.partitioning import partition_key_for
from streamcoord.events.principal import with_principal
from streamcoord.events.signing import sign_event
from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.ports import DeliveryProducer, StoredAt, Transport, TransportError
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["EVENTS_TOPIC", "Delivery", "EmitError", "Emitter", "SendHook", "emit"]

#: The declared name of the inbound events topic (the settings' prefix is put in front).
EVENTS_TOPIC: Final = topology.EVENTS

#: Applied to every event before it is encoded; returns the event to send (e.g. with trace context).
SendHook = Callable[[CloudEvent], CloudEvent]


@dataclass(frozen=True)
class Delivery:
    """An event the broker acknowledged, and where it was stored (to follow what becomes of it)."""

    event: CloudEvent
    key: str
    partition: int
    offset: int


class EmitError(StreamcoordError):
    """The broker did not acknowledge an event; nothing is known to have been stored."""

    retryable = True


class Emitter:
    """An async context manager that produces many events over one idempotent producer.

    ``async with Emitter(bootstrap_servers="127.0.0.1:9092") as out: await out.emit(...)``

    ``transport``: the Kafka clients to send with (default: aiokafka's, made with the
    settings); a :class:`streamcoord.testing.MemoryTransport` sends to an in-memory cluster,
    for tests without a broker (docs/testing.md).
    """

    def __init__(
        self,
        settings: KafkaSettings | None = None,
        *,
        bootstrap_servers: str | None = None,
        topic: str | None = None,
        mode: EncodeMode = "structured",
        hooks: Sequence[SendHook] = (),
        linger_ms: int = 5,
        signing_key: Ed25519PrivateKey | None = None,
        principal: str | None = None,
        transport: Transport | None = None,
    ) -> None:
        """``signing_key``: sign every event (Ed25519, ``scsignature``) as ``principal``
        (``scprincipal``; None: the principal the event already names, if any)."""
        self.settings = settings or KafkaSettings.load(bootstrap_servers=bootstrap_servers)
        self.topic = topic or self.settings.topic(EVENTS_TOPIC)
        self.mode: EncodeMode = mode
        self.hooks = list(hooks)
        self._linger_ms = linger_ms
        self._transport = transport or KafkaTransport(self.settings.client_kwargs())
        self._producer: DeliveryProducer | None = None
        self._signing_key = signing_key
        self._principal = principal

    async def start(self) -> None:
        """Connect to the cluster; raises :class:`EmitError` when it cannot be reached."""
        producer = self._transport.delivery_producer(linger_ms=self._linger_ms)
        try:
            await producer.start()
        except TransportError as error:
            refused = await self._transport.refusal()
            if refused is not None:  # wrong credentials or CA: retrying will not help
                raise refused from None
            raise EmitError(
                f"cannot reach Kafka at {self.settings.bootstrap_servers}: {error}",
                hint="check --bootstrap-servers and that the broker is running",
            ) from None
        self._producer = producer

    async def stop(self) -> None:
        """Flush what is pending and disconnect."""
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(self, event: CloudEvent) -> CloudEvent:
        """Produce ``event`` and wait for the broker's acknowledgement; returns what was sent."""
        (sent,) = await self.send_many([event])
        return sent

    async def send_many(self, events: Iterable[CloudEvent]) -> list[CloudEvent]:
        """Produce every event (batched by the producer) and wait until all are acknowledged."""
        return [delivery.event for delivery in await self.deliver_many(events)]

    async def deliver(self, event: CloudEvent) -> Delivery:
        """Like :meth:`send`, and say where the broker stored the event."""
        (delivery,) = await self.deliver_many([event])
        return delivery

    async def deliver_many(self, events: Iterable[CloudEvent]) -> list[Delivery]:
        """Like :meth:`send_many`, with the partition and offset of every event."""
        producer = self._require_producer()
        prepared = [self._prepare(event) for event in events]
        try:
            pending = [await self._enqueue(producer, event) for event in prepared]
            stored = await asyncio.gather(*pending)
        except TransportError as error:
            raise EmitError(
                f"the broker did not acknowledge {len(prepared)} event(s) on {self.topic}: {error}",
                hint="send again: the events carry their ids, so consumers deduplicate a resend",
            ) from None
        return [
            Delivery(event, partition_key_for(event), meta.partition, meta.offset)
            for event, meta in zip(prepared, stored, strict=True)
        ]

    async def emit(
        self,
        type: str,  # shadows a builtin on purpose: CloudEvents attribute is called "type"
        *,
        source: str,
        data: Any = None,
        subject: str | None = None,
        id: str | None = None,  # shadows a builtin on purpose: CloudEvents attribute "id"
        **extensions: Any,
    ) -> CloudEvent:
        """Build, validate and send one event; returns it (its ``id`` names it)."""
        event = make_event(type, source, data, id=id, subject=subject, **extensions)
        return await self.send(event)

    def _prepare(self, event: CloudEvent) -> CloudEvent:
        for hook in self.hooks:
            event = hook(event)
        if self._signing_key is not None:  # last: nothing may change the event once signed
            event = sign_event(event, self._signing_key, self._principal)
        elif self._principal is not None:  # the configured identity, unproven (audit trail)
            event = with_principal(event, self._principal)
        return event

    async def _enqueue(self, producer: DeliveryProducer, event: CloudEvent) -> Awaitable[StoredAt]:
        value, headers = encode(event, self.mode)
        return await producer.submit(self.topic, partition_key_for(event).encode(), value, headers)

    def _require_producer(self) -> DeliveryProducer:
        if self._producer is None:
            raise EmitError(
                "the emitter is not started", hint="use `async with Emitter(...)` or await start()"
            )
        return self._producer


async def emit(
    type: str,  # shadows a builtin on purpose: CloudEvents attribute is called "type"
    *,
    source: str,
    data: Any = None,
    subject: str | None = None,
    id: str | None = None,  # shadows a builtin on purpose: CloudEvents attribute is called "id"
    bootstrap_servers: str | None = None,
    settings: KafkaSettings | None = None,
    mode: EncodeMode = "structured",
    signing_key: Ed25519PrivateKey | None = None,
    principal: str | None = None,
    transport: Transport | None = None,
    **extensions: Any,
) -> CloudEvent:
    """Send one CloudEvent to the events topic and return it once the broker acknowledged it.

    ``signing_key``, ``principal`` and ``transport``: see :class:`Emitter`.

    For many events, keep one :class:`Emitter` open instead: this connects and disconnects.
    """
    async with Emitter(
        settings,
        bootstrap_servers=bootstrap_servers,
        mode=mode,
        signing_key=signing_key,
        principal=principal,
        transport=transport,
    ) as emitter:
        return await emitter.emit(
            type, source=source, data=data, subject=subject, id=id, **extensions
        )
