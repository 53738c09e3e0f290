"""``explain`` from the coordinator's changelog: the state of the run's partition, restored as
the coordinator restores it, then asked :func:`streamcoord.core.explain`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamcoord.core import Catalog, CatalogSet, CoordinatorState, Explanation, partition_for
from streamcoord.core import explain as explain_in_state
from streamcoord.errors import ConfigError
from streamcoord.events.partitioning import run_base
from streamcoord.kafka.client import as_transport
from streamcoord.kafka.ports import Transport
from streamcoord.runtime.changelog import read_changelog, state_items
from streamcoord.runtime.settings import TopicNames

__all__ = ["explain_stage", "partitions_of"]


async def partitions_of(connection: Transport | Mapping[str, Any], topic: str) -> int:
    """How many partitions ``topic`` has (0 when it does not exist)."""
    reader = as_transport(connection).partition_reader()
    await reader.start()
    try:
        return len(await reader.partitions(topic))
    except ConfigError:  # no such topic
        return 0
    finally:
        await reader.stop()


async def explain_stage(
    connection: Transport | Mapping[str, Any], topics: TopicNames, catalog: Catalog | CatalogSet,
    run_id: str, stage: str,
) -> Explanation | None:  # fmt: skip
    """Why ``stage`` of ``run_id`` is, or is not yet, ready; None when the coordinator's state
    holds no such run or stage (finished runs leave it after the retention period).
    ``connection``: a transport or aiokafka client keyword arguments."""
    transport = as_transport(connection)
    partitions = await partitions_of(transport, topics.state)
    if not partitions:
        return None
    home = partition_for(run_base(run_id), partitions)
    restored = await read_changelog(transport.changelog(topics.state), home)
    state = CoordinatorState.load(home, partitions, state_items(restored.items.items()))
    return explain_in_state(catalog, state, run_id, stage)
