"""Testing without a broker: an in-memory Kafka the coordinator runtime runs on.

:class:`MemoryCluster` implements the runtime's ports (:mod:`streamcoord.kafka.ports`) in one
process: partitioned logs with offsets, ``read_committed`` transactions, fencing by
transactional id and a consumer group that assigns partitions by range and rebalances. Run a
:class:`~streamcoord.runtime.Coordinator` on it to test specs end to end in milliseconds::

    cluster = MemoryCluster()
    cluster.create_declared_topics(partitions=2)  # the packaged topics.yaml
    coordinator = Coordinator(catalog, settings, cluster.transport("member-1"))

See docs/testing.md.
"""

from streamcoord.testing.memory import (
    MemoryCluster,
    MemoryDeliveryProducer,
    MemoryPartitionReader,
    MemoryRecord,
    MemoryTransport,
    ProducerFenced,
    TransactionView,
)

__all__ = [
    "MemoryCluster",
    "MemoryDeliveryProducer",
    "MemoryPartitionReader",
    "MemoryRecord",
    "MemoryTransport",
    "ProducerFenced",
    "TransactionView",
]
