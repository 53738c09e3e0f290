"""Making the cluster's topics match the declared ones (``streamcoord/events/topics.yaml``).

:func:`plan_topics` is pure: it compares declared topics with what the cluster has and says what
to do. :func:`apply_topics` carries the plan out with aiokafka's admin client. Apply only ever
*adds*: it creates missing topics and raises partition counts. It never lowers a partition count
(Kafka cannot, and re-keying would break per-key ordering), never deletes a topic and never
changes the configs or replication factor of an existing topic: those differences are reported
as drift for an operator to fix deliberately.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from streamcoord.errors import ConfigError, EnvironmentProblem
from streamcoord.events.topics import PACKAGED_TOPICS_FILE, TopicsFile, TopicSpec, parse_topics
from streamcoord.kafka.refusal import refusal
from streamcoord.kafka.settings import KafkaSettings

__all__ = [
    "DEFAULT_TOPICS_FILE",
    "ConfigDrift",
    "ExistingTopic",
    "KafkaAdminError",
    "PartitionChange",
    "TopicPlan",
    "apply_topics",
    "describe_topics",
    "load_topics",
    "plan_topics",
]

DEFAULT_TOPICS_FILE: Final = PACKAGED_TOPICS_FILE
_UNKNOWN_TOPIC: Final = 3
_TOPIC_EXISTS: Final = 36
# Creates return once the controller has them; broker metadata catches up a little later.
_VISIBLE_TIMEOUT_S: Final = 30.0
_VISIBLE_POLL_S: Final = 0.05


class KafkaAdminError(EnvironmentProblem):
    """The cluster refused or failed an admin request."""

    retryable = True


@dataclass(frozen=True)
class ExistingTopic:
    """What the cluster has for one topic (configs limited to the keys asked for)."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionChange:
    """A topic whose partition count differs from the declaration."""

    topic: str
    current: int
    declared: int


@dataclass(frozen=True)
class ConfigDrift:
    """A declared topic config (or the replication factor) that the cluster has otherwise."""

    topic: str
    key: str
    declared: str
    actual: str | None


@dataclass(frozen=True)
class TopicPlan:
    """What apply does (``create``, ``raise_partitions``) and what it only reports."""

    create: tuple[TopicSpec, ...] = ()
    raise_partitions: tuple[PartitionChange, ...] = ()
    #: More partitions on the cluster than declared: never lowered, declare the higher count.
    partitions_above_declared: tuple[PartitionChange, ...] = ()
    config_drift: tuple[ConfigDrift, ...] = ()

    @property
    def has_changes(self) -> bool:
        """Whether apply would change the cluster."""
        return bool(self.create or self.raise_partitions)

    @property
    def in_sync(self) -> bool:
        """Whether the cluster matches the declaration exactly (nothing to apply or report)."""
        return not (self.has_changes or self.partitions_above_declared or self.config_drift)


def plan_topics(declared: Sequence[TopicSpec], existing: Mapping[str, ExistingTopic]) -> TopicPlan:
    """Compare declared topics (names already prefixed) with the cluster's; pure."""
    create: list[TopicSpec] = []
    raise_: list[PartitionChange] = []
    above: list[PartitionChange] = []
    drift: list[ConfigDrift] = []
    for spec in declared:
        current = existing.get(spec.name)
        if current is None:
            create.append(spec)
            continue
        change = PartitionChange(spec.name, current.partitions, spec.partitions)
        if current.partitions < spec.partitions:
            raise_.append(change)
        elif current.partitions > spec.partitions:
            above.append(change)
        drift.extend(_drift(spec, current))
    return TopicPlan(tuple(create), tuple(raise_), tuple(above), tuple(drift))


def _drift(spec: TopicSpec, current: ExistingTopic) -> list[ConfigDrift]:
    found = [
        ConfigDrift(spec.name, key, value, current.configs.get(key))
        for key, value in sorted(spec.configs.items())
        if current.configs.get(key) != value
    ]
    if current.replication_factor != spec.replication_factor:
        found.append(
            ConfigDrift(
                spec.name,
                "replication_factor",
                str(spec.replication_factor),
                str(current.replication_factor),
            )
        )
    return found


def load_topics(path: Path = DEFAULT_TOPICS_FILE) -> TopicsFile:
    """Read and validate a topics file; ``ConfigError`` when it is missing or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"cannot read the topics file {path}: {error.strerror}",
            hint=f"pass --file, or leave it out for the packaged {PACKAGED_TOPICS_FILE.name}",
        ) from None
    return parse_topics(text, source=str(path))


async def describe_topics(
    settings: KafkaSettings, declared: Sequence[TopicSpec]
) -> dict[str, ExistingTopic]:
    """The cluster's view of the declared topics that exist (by name)."""
    async with _admin(settings) as admin:
        return await _describe(admin, declared)


async def apply_topics(settings: KafkaSettings, declared: Sequence[TopicSpec]) -> TopicPlan:
    """Create missing topics and raise partition counts; returns the plan it carried out.

    Idempotent: a second call finds nothing to change. Config and replication drift is
    returned in the plan, not fixed.
    """
    async with _admin(settings) as admin:
        plan = plan_topics(declared, await _describe(admin, declared))
        await _create(admin, plan.create)
        await _raise_partitions(admin, plan.raise_partitions)
        await _await_visible(admin, declared, plan)
        return plan


class _admin:  # noqa: N801  # reads as a function at the call site: `async with _admin(...)`
    """A started admin client, closed on exit; connection failures become ``KafkaAdminError``."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._client = AIOKafkaAdminClient(**settings.client_kwargs(), request_timeout_ms=15_000)

    async def __aenter__(self) -> Any:
        try:
            await self._client.start()
        except KafkaError as error:
            await self._client.close()
            refused = await refusal(self._settings.client_kwargs())
            if refused is not None:
                raise refused from None
            raise KafkaAdminError(
                f"cannot reach Kafka at {self._settings.bootstrap_servers}: {error}",
                hint="start a broker (`streamcoord dev kafka`) or pass --bootstrap-servers",
            ) from None
        return self._client

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close()


async def _describe(admin: Any, declared: Sequence[TopicSpec]) -> dict[str, ExistingTopic]:
    names = [spec.name for spec in declared]
    metadata = await admin.describe_topics(names)
    sizes = {
        entry["topic"]: (len(entry["partitions"]), _replicas(entry))
        for entry in metadata
        if entry["error_code"] != _UNKNOWN_TOPIC and entry["partitions"]
    }
    configs = await _configs(admin, sorted(sizes))
    return {
        name: ExistingTopic(name, count, replicas, configs.get(name, {}))
        for name, (count, replicas) in sizes.items()
    }


def _replicas(entry: Mapping[str, Any]) -> int:
    return min(len(partition["replicas"]) for partition in entry["partitions"])


async def _configs(admin: Any, names: list[str]) -> dict[str, dict[str, str]]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    responses = await admin.describe_configs(resources)
    result: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            result[resource["resource_name"]] = {
                entry["config_names"]: entry["config_value"]
                for entry in resource["config_entries"]
                if entry["config_value"] is not None
            }
    return result


async def _create(admin: Any, topics: Sequence[TopicSpec]) -> None:
    if not topics:
        return
    new = [
        NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=dict(t.configs))
        for t in topics
    ]
    response = await admin.create_topics(new)
    failures = [
        f"{error['topic']}: {error['error_message'] or error['error_code']}"
        for error in response.to_object()["topic_errors"]
        # Another apply may have created it a moment ago: that is the outcome we wanted.
        if error["error_code"] not in (0, _TOPIC_EXISTS)
    ]
    if failures:
        raise KafkaAdminError(
            f"the cluster refused to create topics: {'; '.join(failures)}",
            hint="a replication factor above the broker count needs --replication-factor",
        )


async def _raise_partitions(admin: Any, changes: Sequence[PartitionChange]) -> None:
    if not changes:
        return
    try:
        await admin.create_partitions({c.topic: NewPartitions(c.declared) for c in changes})
    except KafkaError as error:
        raise KafkaAdminError(f"cannot raise partition counts: {error}") from None


async def _await_visible(admin: Any, declared: Sequence[TopicSpec], plan: TopicPlan) -> None:
    """Return once metadata shows what was applied, so a following describe or apply agrees."""
    if not plan.has_changes:
        return
    deadline = time.monotonic() + _VISIBLE_TIMEOUT_S
    delay = _VISIBLE_POLL_S
    while True:
        if not plan_topics(declared, await _describe(admin, declared)).has_changes:
            return
        if time.monotonic() > deadline:
            raise KafkaAdminError(
                f"topics were applied but metadata did not show them within "
                f"{_VISIBLE_TIMEOUT_S:.0f}s",
                hint="run `streamcoord topics diff` to check; the broker may be overloaded",
            )
        await asyncio.sleep(delay)  # metadata offers no notification to await
        delay = min(delay * 2, 1.0)
