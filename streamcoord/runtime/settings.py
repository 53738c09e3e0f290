"""Settings of the coordinator service (environment ``STREAMCOORD_*`` or a config file)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamcoord.events import topology
from streamcoord.events.codec import DecodeLimits
from streamcoord.kafka.transactions import TRANSACTION_RETRY_BACKOFF_MS

__all__ = ["TRANSACTION_RETRY_BACKOFF_MS", "CoordinatorSettings", "TopicNames"]


@dataclass(frozen=True)
class TopicNames:
    """The topics the coordinator touches (:mod:`streamcoord.events.topology`), with the
    shared-cluster prefix applied."""

    prefix: str = ""

    def full(self, name: str) -> str:
        """A declared topic name as it exists on the cluster."""
        return f"{self.prefix}{name}"

    @property
    def events(self) -> str:
        return self.full(topology.EVENTS)

    @property
    def internal(self) -> str:
        """What coordinators decide, in order: admitted events and their own messages."""
        return self.full(topology.INTERNAL)

    @property
    def state(self) -> str:
        return self.full(topology.STATE)

    @property
    def runs(self) -> str:
        return self.full(topology.RUNS)

    @property
    def deadletter(self) -> str:
        return self.full(topology.DEADLETTER)

    @property
    def specs(self) -> str:
        return self.full(topology.SPECS)


class CoordinatorSettings(BaseSettings):
    """How one coordinator process behaves; Kafka connection settings live in KafkaSettings."""

    model_config = SettingsConfigDict(env_prefix="STREAMCOORD_", extra="ignore")

    group_id: str = Field(
        "streamcoord-coordinator",
        description="Consumer group of the coordinators; it also prefixes their transactional "
        "ids. One group per set of topics.",
    )
    topic_prefix: str = Field(
        "", description="Prefix of every topic name (`streamcoord run` takes the Kafka "
        "settings' topic_prefix, or --topic-prefix).",
    )  # fmt: skip
    max_batch: int = Field(500, ge=1, le=100_000, description="Records fed to the core per batch.")
    poll_timeout_ms: int = Field(
        200, ge=1, description="How long one poll of the events and internal topics waits for "
        "records (shorter when a timer is due sooner).",
    )  # fmt: skip
    max_event_bytes: int = Field(
        1_048_576, ge=1024, description="Largest events record the coordinator admits; larger "
        "ones go to the dead-letter topic (`oversized`).",
    )  # fmt: skip
    max_event_depth: int = Field(
        64, ge=4, le=200, description="How deeply an event's JSON may nest (docs/edges.md)."
    )
    max_event_string: int = Field(
        65_536, ge=256, description="Characters in any one string of an event."
    )
    max_event_attributes: int = Field(
        64, ge=8, description="Attributes of a structured event; headers of a record."
    )
    transaction_timeout_s: float = Field(
        30.0, gt=0, description="How long a partition waits for its transaction's commit or "
        "abort; the broker's transaction.timeout.ms is twice it.",
    )  # fmt: skip
    group_offsets_interval_s: float = Field(
        0.5, gt=0, description="How often decided positions are also committed to the group."
    )
    default_start_timeout_seconds: float | None = Field(
        600.0,
        gt=0,
        description=(
            "Start timeout of stages whose spec sets no start_timeout_seconds: a triggered"
            " attempt with no `started` report by then is timed out (and retried). Pass the"
            " same value to `streamcoord replay --default-start-timeout` to replay a log."
        ),
    )
    health_host: str = Field(
        "127.0.0.1", description="Address the health endpoints (/livez, /readyz, /healthz) "
        "bind; 0.0.0.0 in a container so that probes reach them.",
    )  # fmt: skip
    health_port: int | None = Field(
        None, ge=0, le=65535,
        description="Port of the health endpoints; unset serves none (`streamcoord run "
        "--health-port`).",
    )  # fmt: skip
    instance_id: str | None = Field(
        None, description="Static group membership: a quick restart keeps its partitions."
    )
    specs_wait_s: float = Field(
        30.0, gt=0,
        description="How long a partition waits for a spec version an activate event names "
        "before the member stops (specs from the topic only).",
    )  # fmt: skip
    retention_s: float = Field(
        604_800.0,
        gt=0,
        description="How long a finished run stays in the coordinator's state (7 days); its "
        "record stays in the runs topic. It becomes the catalog's retention, which decides "
        "expiry: replay a log with the same value.",
    )

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    @property
    def event_limits(self) -> DecodeLimits:
        """What the decoder accepts of one record of the events topic."""
        return DecodeLimits(
            max_bytes=self.max_event_bytes,
            max_depth=self.max_event_depth,
            max_string=self.max_event_string,
            max_attributes=self.max_event_attributes,
        )
