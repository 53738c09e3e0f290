"""plan_topics: what apply would do, as a pure function."""

from __future__ import annotations

from streamcoord.events.topics import TopicSpec
from streamcoord.kafka.admin import ConfigDrift, ExistingTopic, PartitionChange, plan_topics

EVENTS = TopicSpec(name="events", partitions=8)
STATE = TopicSpec(name="state", partitions=8, configs={"cleanup.policy": "compact"})


def existing(name: str, partitions: int, rf: int = 1, **configs: str) -> ExistingTopic:
    return ExistingTopic(name, partitions, rf, configs)


def test_missing_topics_are_created() -> None:
    plan = plan_topics([EVENTS, STATE], {})
    assert plan.create == (EVENTS, STATE)
    assert plan.has_changes


def test_matching_cluster_is_in_sync() -> None:
    plan = plan_topics(
        [EVENTS, STATE],
        {
            "events": existing("events", 8),
            "state": existing("state", 8, **{"cleanup.policy": "compact"}),
        },
    )
    assert plan.in_sync
    assert not plan.has_changes


def test_partition_counts_are_raised() -> None:
    plan = plan_topics([EVENTS], {"events": existing("events", 3)})
    assert plan.raise_partitions == (PartitionChange("events", 3, 8),)


def test_partition_counts_are_never_lowered_only_reported() -> None:
    plan = plan_topics([EVENTS], {"events": existing("events", 12)})
    assert not plan.has_changes
    assert plan.partitions_above_declared == (PartitionChange("events", 12, 8),)
    assert not plan.in_sync


def test_config_and_replication_drift_are_reported_not_applied() -> None:
    plan = plan_topics(
        [STATE], {"state": existing("state", 8, rf=3, **{"cleanup.policy": "delete"})}
    )
    assert not plan.has_changes
    assert plan.config_drift == (
        ConfigDrift("state", "cleanup.policy", "compact", "delete"),
        ConfigDrift("state", "replication_factor", "1", "3"),
    )


def test_undeclared_cluster_topics_are_ignored() -> None:
    plan = plan_topics([EVENTS], {"events": existing("events", 8), "other": existing("other", 1)})
    assert plan.in_sync
