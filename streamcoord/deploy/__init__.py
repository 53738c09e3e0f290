"""Deployment artefacts generated from the models: Strimzi KafkaTopic resources from the topics
file (:mod:`streamcoord.deploy.strimzi`) and the configuration reference from the settings models
(:mod:`streamcoord.deploy.configuration`). Pure: each returns text, the CLI writes it."""

from __future__ import annotations

from streamcoord.deploy.configuration import SETTINGS_MODELS, render_configuration_reference
from streamcoord.deploy.strimzi import STRIMZI_API_VERSION, kafka_topics, render_kafka_topics

__all__ = [
    "SETTINGS_MODELS",
    "STRIMZI_API_VERSION",
    "kafka_topics",
    "render_configuration_reference",
    "render_kafka_topics",
]
