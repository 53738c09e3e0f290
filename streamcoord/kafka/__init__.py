"""Kafka adapters: connection settings and topic administration."""

from streamcoord.kafka.admin import (
    DEFAULT_TOPICS_FILE,
    ConfigDrift,
    ExistingTopic,
    KafkaAdminError,
    PartitionChange,
    TopicPlan,
    apply_topics,
    describe_topics,
    load_topics,
    plan_topics,
)
from streamcoord.kafka.settings import KafkaSettings, load_kafka_settings

__all__ = [
    "DEFAULT_TOPICS_FILE",
    "ConfigDrift",
    "ExistingTopic",
    "KafkaAdminError",
    "KafkaSettings",
    "PartitionChange",
    "TopicPlan",
    "apply_topics",
    "describe_topics",
    "load_kafka_settings",
    "load_topics",
    "plan_topics",
]
