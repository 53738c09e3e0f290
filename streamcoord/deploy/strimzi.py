"""Strimzi ``KafkaTopic`` resources for the declared topics, so that the topics live in the same
GitOps repository as the Helm chart and the Topic Operator creates them.

Each topic becomes one resource: ``spec.topicName`` is the topic's name on the cluster (prefix
included), ``spec.partitions``/``spec.replicas``/``spec.config`` are as declared, and
``metadata.name`` is that name made a valid Kubernetes name (lower case; a name that had to be
changed gets a short hash of the original, so that two topics never share a resource).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from typing import Any, Final

from ruamel.yaml import YAML

from streamcoord.events.topics import TopicSpec

__all__ = ["STRIMZI_API_VERSION", "kafka_topics", "render_kafka_topics", "resource_name"]

STRIMZI_API_VERSION: Final = "kafka.strimzi.io/v1beta2"
CLUSTER_LABEL: Final = "strimzi.io/cluster"
DESCRIPTION_ANNOTATION: Final = "streamcoord.io/description"
# RFC 1123 subdomain, which metadata.name of a custom resource must be.
_MAX_NAME: Final = 253
_INVALID: Final = re.compile(r"[^a-z0-9.-]+")
_EDGES: Final = re.compile(r"^[^a-z0-9]+|[^a-z0-9]+$")


def resource_name(topic: str) -> str:
    """A valid, unique ``metadata.name`` for ``topic`` (the topic itself when it already is one)."""
    cleaned = _EDGES.sub("", _INVALID.sub("-", topic.lower()))
    if cleaned == topic:
        return topic
    digest = hashlib.sha256(topic.encode()).hexdigest()[:8]
    return f"{cleaned[: _MAX_NAME - 9]}-{digest}" if cleaned else f"topic-{digest}"


def kafka_topics(
    topics: Sequence[TopicSpec], *, cluster: str, namespace: str | None = None
) -> list[dict[str, Any]]:
    """One ``KafkaTopic`` resource per topic, in declaration order (names as given: prefix them
    first with :meth:`TopicsFile.with_prefix`)."""
    return [_resource(topic, cluster, namespace) for topic in topics]


def render_kafka_topics(
    topics: Sequence[TopicSpec], *, cluster: str, namespace: str | None = None
) -> str:
    """The resources as one multi-document YAML stream."""
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096  # one line per description, as written in the topics file
    yaml.representer.sort_base_mapping_type_on_output = False  # kubectl's order: apiVersion first
    out = io.StringIO()
    yaml.dump_all(kafka_topics(topics, cluster=cluster, namespace=namespace), out)
    return out.getvalue()


def _resource(topic: TopicSpec, cluster: str, namespace: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": resource_name(topic.name),
        "labels": {CLUSTER_LABEL: cluster, "app.kubernetes.io/part-of": "streamcoord"},
    }
    if namespace:
        metadata["namespace"] = namespace
    if topic.description:
        metadata["annotations"] = {DESCRIPTION_ANNOTATION: topic.description}
    spec: dict[str, Any] = {
        "topicName": topic.name,
        "partitions": topic.partitions,
        "replicas": topic.replication_factor,
    }
    if topic.configs:
        spec["config"] = dict(sorted(topic.configs.items()))
    return {"apiVersion": STRIMZI_API_VERSION, "kind": "KafkaTopic", "metadata": metadata,
            "spec": spec}  # fmt: skip
