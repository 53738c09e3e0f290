"""The packaged ``topics.yaml`` and its parser."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from streamcoord.errors import ConfigError
from streamcoord.events import topology
from streamcoord.events.topics import PACKAGED_TOPICS_FILE, parse_topics

TOPICS_FILE = PACKAGED_TOPICS_FILE
ROOT = Path(__file__).parents[3]


def test_the_file_ships_in_the_package_so_commands_work_from_any_directory() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]["streamcoord"]
    assert TOPICS_FILE.relative_to(ROOT / "streamcoord").as_posix() in package_data
    assert not (ROOT / "topics" / "topics.yaml").exists()  # one source, no copy to drift


def test_the_committed_file_declares_every_topic_streamcoord_uses() -> None:
    declared = parse_topics(TOPICS_FILE.read_text())
    assert {t.name for t in topology.TOPOLOGY} <= declared.names()


def test_state_is_compacted_and_partitioned_like_events() -> None:
    by_name = {t.name: t for t in parse_topics(TOPICS_FILE.read_text()).topics}
    assert by_name[topology.STATE].configs["cleanup.policy"] == "compact"
    assert by_name[topology.RUNS].configs["cleanup.policy"] == "compact"
    assert by_name[topology.SPECS].configs["cleanup.policy"] == "compact"
    assert by_name[topology.SPECS].partitions == 1  # one log: one order of versions
    assert by_name[topology.STATE].partitions == by_name[topology.EVENTS].partitions


def test_prefix_applies_to_every_name() -> None:
    declared = parse_topics(TOPICS_FILE.read_text())
    assert all(t.name.startswith("team-a.streamcoord.") for t in declared.with_prefix("team-a."))


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("topics: [", "not valid YAML"),
        ("topics:\n  - name: a\n", "topics.0.partitions: Field required"),
        ("topics:\n  - name: a\n    partitions: 0\n", "topics.0.partitions"),
        ("topics:\n  - name: a b\n    partitions: 1\n", "topics.0.name"),
        ("topics:\n  - name: a\n    partitions: 1\n    partition: 2\n", "topics.0.partition"),
        ("topics:\n  - {name: a, partitions: 1}\n  - {name: a, partitions: 2}\n", "declared twice"),
    ],
)
def test_invalid_files_say_where(text: str, mentions: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_topics(text, source="t.yaml")
    assert str(caught.value).startswith("t.yaml: ")
    assert mentions in str(caught.value)
