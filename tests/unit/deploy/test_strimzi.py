"""`streamcoord topics render --format strimzi`: KafkaTopics as the topics file declares them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.deploy.strimzi import kafka_topics, resource_name
from streamcoord.events import topology
from streamcoord.events.topics import PACKAGED_TOPICS_FILE, TopicSpec, parse_topics

_K8S_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


def _render(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(app, ["topics", "render", *args])
    assert result.exit_code == 0, result.output
    return list(YAML(typ="safe", pure=True).load_all(result.output))


def test_every_declared_topic_becomes_a_kafka_topic_with_its_partitions_and_configs() -> None:
    declared = parse_topics(PACKAGED_TOPICS_FILE.read_text()).topics
    resources = _render("--format", "strimzi", "--cluster", "prod-kafka")
    assert [r["spec"]["topicName"] for r in resources] == [t.name for t in declared]
    for resource, topic in zip(resources, declared, strict=True):
        assert resource["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert resource["kind"] == "KafkaTopic"
        assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "prod-kafka"
        assert resource["spec"]["partitions"] == topic.partitions
        assert resource["spec"]["replicas"] == topic.replication_factor
        assert resource["spec"].get("config", {}) == topic.configs


def test_compaction_and_retention_are_kept_as_declared() -> None:
    by_topic = {r["spec"]["topicName"]: r["spec"] for r in _render("--cluster", "c")}
    assert by_topic[topology.STATE]["config"]["cleanup.policy"] == "compact"
    assert by_topic[topology.EVENTS]["config"]["retention.ms"] == "604800000"
    assert by_topic[topology.SPECS]["partitions"] == 1


def test_prefix_replication_and_namespace_apply_to_every_resource() -> None:
    resources = _render(
        "--cluster", "c", "--prefix", "team_a.", "--replication-factor", "3",
        "--namespace", "kafka",
    )  # fmt: skip
    assert all(r["spec"]["topicName"].startswith("team_a.streamcoord.") for r in resources)
    assert {r["spec"]["replicas"] for r in resources} == {3}
    assert {r["metadata"]["namespace"] for r in resources} == {"kafka"}
    names = [r["metadata"]["name"] for r in resources]
    assert all(_K8S_NAME.match(name) for name in names), names
    assert len(set(names)) == len(names)


def test_a_topic_added_to_the_file_is_rendered(tmp_path: Path) -> None:
    topics = tmp_path / "topics.yaml"
    topics.write_text(
        PACKAGED_TOPICS_FILE.read_text()
        + "  - name: streamcoord.audit\n    partitions: 8\n"
        + "    configs:\n      cleanup.policy: compact\n"
    )
    resources = _render("--cluster", "c", "--file", str(topics))
    internal = [r for r in resources if r["spec"]["topicName"] == "streamcoord.audit"]
    assert internal[0]["spec"] == {
        "topicName": "streamcoord.audit", "partitions": 8, "replicas": 1,
        "config": {"cleanup.policy": "compact"},
    }  # fmt: skip


def test_render_writes_a_file_with_output(tmp_path: Path) -> None:
    target = tmp_path / "topics.k8s.yaml"
    result = CliRunner().invoke(app, ["topics", "render", "--cluster", "c", "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text().startswith("apiVersion: kafka.strimzi.io/v1beta2\n")


def test_names_kubernetes_refuses_get_a_valid_unique_resource_name() -> None:
    assert resource_name(topology.EVENTS) == topology.EVENTS
    upper, lower = resource_name("Orders_V1"), resource_name("orders-v1")
    assert _K8S_NAME.match(upper)
    assert upper != lower
    assert _K8S_NAME.match(resource_name("_" * 5))
    assert len(resource_name("a_" * 120)) <= 253


def test_descriptions_become_annotations_and_empty_configs_are_left_out() -> None:
    (resource,) = kafka_topics([TopicSpec(name="t", partitions=2)], cluster="c")
    assert "annotations" not in resource["metadata"]
    assert "config" not in resource["spec"]
