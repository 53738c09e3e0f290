"""The Kafka client of the coordinator runtime, chosen by the ``client`` setting."""

from __future__ import annotations

from streamcoord.kafka.client import KafkaTransport
from streamcoord.kafka.ports import Transport
from streamcoord.kafka.refusal import refusal
from streamcoord.kafka.settings import KafkaSettings

__all__ = ["make_transport"]


def make_transport(settings: KafkaSettings) -> Transport:
    """aiokafka or confluent-kafka clients (``settings.client``) for the same connection."""
    if settings.client == "confluent":
        # imported here: a process on the default client does not load librdkafka
        from streamcoord.kafka.confluent import ConfluentTransport  # noqa: PLC0415

        client_kwargs = settings.client_kwargs()

        async def refused() -> Exception | None:
            # the same probe as aiokafka's: it names the refused user or the untrusted CA
            return await refusal(client_kwargs)

        return ConfluentTransport(
            settings.confluent_config(), refusal=refused, client_kwargs=client_kwargs
        )
    return KafkaTransport(settings.client_kwargs())
