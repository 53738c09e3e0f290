"""How a worker process behaves (``STREAMCOORD_WORKER_*``); Kafka settings are separate."""

from __future__ import annotations

from typing import Final

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamcoord.events import topology

__all__ = ["TRIGGERS_TOPIC", "WorkerSettings"]

#: The default executor topic of batch stages, before any topic prefix.
TRIGGERS_TOPIC: Final = topology.TRIGGERS


class WorkerSettings(BaseSettings):
    """Consumer group, topics, concurrency, heartbeat and shutdown timing of one worker."""

    model_config = SettingsConfigDict(env_prefix="STREAMCOORD_WORKER_", extra="forbid")

    group_id: str = Field(
        "streamcoord-worker",
        description="Workers of one kind share a group; each trigger goes to one of them.",
    )
    topics: list[str] = Field(
        default_factory=lambda: [TRIGGERS_TOPIC],
        min_length=1,
        description="Executor topics to consume, as declared (the Kafka topic prefix is added).",
    )
    concurrency: int = Field(4, ge=1, le=10_000, description="Attempts running at once.")
    heartbeat_interval_s: float = Field(
        10.0, gt=0, description="Seconds between the heartbeats a running attempt reports."
    )
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="How long in-flight attempts may finish after SIGTERM."
    )
    poll_timeout_ms: int = Field(
        200, ge=1, le=60_000, description="How long one poll of the executor topics waits."
    )
    remembered_keys: int = Field(
        100_000, ge=1, description="Idempotency keys kept in memory to skip redelivered triggers."
    )
    instance_id: str | None = Field(
        None, description="Static group membership: a quick restart keeps its partitions."
    )
    health_host: str = Field(
        "127.0.0.1", description="Address the health endpoints bind (0.0.0.0 in a container)."
    )
    health_port: int | None = Field(
        None, ge=0, le=65535,
        description="Serve GET /livez (the process runs) and /readyz (it consumes its topics) "
        "at this port; unset serves none.",
    )  # fmt: skip
