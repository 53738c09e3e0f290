"""The projector: Kafka's run records, decisions, events and dead letters into the store.

It reads ``streamcoord.runs``, ``streamcoord.decisions``, ``streamcoord.events`` and
``streamcoord.deadletter`` (with the topic prefix) under read_committed, by manual assignment of
every partition (no consumer group). Each batch's rows and the positions it reached are written
in one database transaction, and a start resumes from the positions in the store: a crash or a
restart neither loses nor counts a record twice. ``rebuild`` empties the store first and replays
every topic from its beginning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from streamcoord.runtime.settings import TopicNames

__all__ = ["project"]


async def project(
    store: Any,
    client_kwargs: Mapping[str, Any],
    topics: TopicNames,
    stop: asyncio.Event,
    *,
    rebuild: bool = False,
    caught_up: asyncio.Event | None = None,
) -> None:
    """Project the topics into ``store`` (from :func:`open_store`) until ``stop`` is set.

    ``client_kwargs`` are aiokafka connection arguments (``KafkaSettings.client_kwargs()``);
    ``caught_up`` is set once every partition has been read to its end at least once.
    """
    raise NotImplementedError
