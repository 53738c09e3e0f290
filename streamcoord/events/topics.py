"""Topic declarations: the Kafka topics streamcoord uses, as written in ``topics.yaml``.

The declarations ship inside the package (:data:`PACKAGED_TOPICS_FILE`, package data), so
``streamcoord topics apply`` works from any directory. Pure: :func:`parse_topics` takes the
file's text. The spec validator reads the same models to check that every executor topic is
declared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from streamcoord.errors import ConfigError

__all__ = ["PACKAGED_TOPICS_FILE", "TopicSpec", "TopicsFile", "parse_topics"]

#: The topic declarations shipped with streamcoord (the default of every ``--file``/``--topics``).
PACKAGED_TOPICS_FILE: Final = Path(__file__).with_name("topics.yaml")

TopicName = Annotated[
    str,
    Field(
        pattern=r"^[a-zA-Z0-9._-]{1,200}$",
        description="Kafka topic name (letters, digits, '.', '_', '-'), before any prefix.",
    ),
]


class TopicSpec(BaseModel):
    """One topic: its name, size and the broker configs it must have."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: TopicName
    partitions: int = Field(ge=1, le=10_000)
    replication_factor: int = Field(
        1, ge=1, le=32, description="1 for local dev; production overrides it on the CLI."
    )
    configs: dict[str, str] = Field(
        default_factory=dict,
        description="Broker topic configs, e.g. cleanup.policy: compact (values as strings).",
    )
    description: str = ""

    def prefixed(self, prefix: str) -> TopicSpec:
        """This topic with its name under ``prefix`` (for clusters shared between teams)."""
        return self.model_copy(update={"name": prefix + self.name}) if prefix else self


class TopicsFile(BaseModel):
    """The whole topics file (``streamcoord/events/topics.yaml`` or one given with ``--file``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: list[TopicSpec] = Field(min_length=1)

    def names(self) -> frozenset[str]:
        """Declared names, without prefix."""
        return frozenset(topic.name for topic in self.topics)

    def with_prefix(self, prefix: str) -> list[TopicSpec]:
        """Declared topics with ``prefix`` in front of every name."""
        return [topic.prefixed(prefix) for topic in self.topics]


def parse_topics(text: str, *, source: str = "topics.yaml") -> TopicsFile:
    """Parse and validate a topics file; raises ``ConfigError`` naming the file and the field."""
    try:
        raw = YAML(typ="safe", pure=True).load(text)
    except YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    try:
        parsed = TopicsFile.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        )
        raise ConfigError(f"{source}: {problems}") from None
    _check_unique(parsed, source)
    return parsed


def _check_unique(parsed: TopicsFile, source: str) -> None:
    seen: set[str] = set()
    for topic in parsed.topics:
        if topic.name in seen:
            raise ConfigError(f"{source}: topic {topic.name!r} is declared twice")
        seen.add(topic.name)
