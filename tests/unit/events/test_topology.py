"""The topology (names, roles, partitioning, writers) and the packaged topics.yaml agree."""

from __future__ import annotations

from streamcoord.devtools._acls import Operation, Resource, coordinator_acls, emitter_acls
from streamcoord.events.topics import PACKAGED_TOPICS_FILE, parse_topics
from streamcoord.events.topology import (
    INTERNAL,
    STATE,
    TOPOLOGY,
    partitioning_problems,
    topic,
    written_by,
)
from streamcoord.runtime.settings import TopicNames

DECLARED = parse_topics(PACKAGED_TOPICS_FILE.read_text())


def test_topics_yaml_declares_exactly_the_topology_in_its_order() -> None:
    assert [t.name for t in DECLARED.topics] == [t.name for t in TOPOLOGY]


def test_the_packaged_sizes_keep_the_partitioning_rules() -> None:
    sizes = {t.name: t.partitions for t in DECLARED.topics}
    assert partitioning_problems(sizes) == []
    assert {t.name for t in TOPOLOGY if t.partitions_as} == {INTERNAL, STATE}


def test_a_state_topic_sized_apart_from_events_is_a_problem() -> None:
    sizes = {t.name: t.partitions for t in DECLARED.topics} | {STATE: 3}
    [problem] = partitioning_problems(sizes)
    assert problem.startswith(f"{STATE} has 3 partitions but must have as many as")


def test_only_coordinators_write_the_internal_topic() -> None:
    assert topic(INTERNAL).writers == {"coordinator"}
    writes = {
        a.name
        for a in coordinator_acls("User:c", "g")
        if a.resource is Resource.TOPIC and a.operation is Operation.WRITE
    }
    assert writes == set(written_by("coordinator"))
    assert {a.name for a in emitter_acls("User:e", "p.")} == {"p.streamcoord.events"}


def test_the_coordinator_settings_name_topology_topics() -> None:
    names = TopicNames("x.")
    used = [names.events, names.internal, names.state, names.runs, names.deadletter, names.specs]
    assert all(n.startswith("x.") and topic(n[2:]) for n in used)
