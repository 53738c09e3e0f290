"""``topics apply`` and ``topics diff`` against a real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from streamcoord.cli.main import app
from streamcoord.events.topics import PACKAGED_TOPICS_FILE, TopicSpec, parse_topics
from streamcoord.kafka import apply_topics, describe_topics, load_kafka_settings, plan_topics
from streamcoord.kafka.settings import KafkaSettings

TOPICS_FILE = PACKAGED_TOPICS_FILE

pytestmark = pytest.mark.kafka


@pytest.fixture
def prefix(unique_name: Callable[[str], str]) -> str:
    return unique_name("topics") + "."


@pytest.fixture
async def settings(kafka_bootstrap: str, prefix: str) -> AsyncIterator[KafkaSettings]:
    settings = load_kafka_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    yield settings
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        ours = [name for name in await admin.list_topics() if name.startswith(prefix)]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def declared(settings: KafkaSettings) -> list[TopicSpec]:
    return parse_topics(TOPICS_FILE.read_text()).with_prefix(settings.topic_prefix)


async def test_first_apply_creates_every_topic_as_declared(settings: KafkaSettings) -> None:
    topics = declared(settings)

    plan = await apply_topics(settings, topics)

    assert {t.name for t in plan.create} == {t.name for t in topics}
    existing = await describe_topics(settings, topics)
    for topic in topics:
        assert existing[topic.name].partitions == topic.partitions
        for key, value in topic.configs.items():
            assert existing[topic.name].configs[key] == value


async def test_second_apply_changes_nothing(settings: KafkaSettings) -> None:
    topics = declared(settings)
    await apply_topics(settings, topics)

    again = await apply_topics(settings, topics)

    assert not again.has_changes
    assert again.in_sync


async def test_apply_raises_partition_counts(settings: KafkaSettings) -> None:
    topics = declared(settings)
    await apply_topics(settings, topics)
    grown = [t.model_copy(update={"partitions": t.partitions + 2}) for t in topics[:2]]

    plan = await apply_topics(settings, grown)

    assert [(c.current, c.declared) for c in plan.raise_partitions] == [
        (t.partitions - 2, t.partitions) for t in grown
    ]
    existing = await describe_topics(settings, grown)
    assert [existing[t.name].partitions for t in grown] == [t.partitions for t in grown]


async def test_diff_reports_lower_declared_partitions_and_config_drift(
    settings: KafkaSettings,
) -> None:
    events, state = (
        next(t for t in declared(settings) if t.name.endswith(name))
        for name in (".streamcoord.events", ".streamcoord.state")
    )
    await apply_topics(settings, [events, state])
    shrunk = events.model_copy(update={"partitions": 2})
    recompacted = state.model_copy(update={"configs": {"cleanup.policy": "delete"}})

    plan = plan_topics(
        [shrunk, recompacted], await describe_topics(settings, [shrunk, recompacted])
    )

    assert not plan.has_changes
    assert [(c.topic, c.current, c.declared) for c in plan.partitions_above_declared] == [
        (events.name, events.partitions, 2)
    ]
    assert [(d.topic, d.key, d.declared, d.actual) for d in plan.config_drift] == [
        (state.name, "cleanup.policy", "delete", "compact")
    ]


def test_cli_diff_then_apply_then_diff(kafka_bootstrap: str, prefix: str) -> None:
    runner = CliRunner()
    args = ["--file", str(TOPICS_FILE), "-b", kafka_bootstrap, "--prefix", prefix]
    names = parse_topics(TOPICS_FILE.read_text()).with_prefix(prefix)

    before = runner.invoke(app, ["topics", "diff", *args])
    applied = runner.invoke(app, ["topics", "apply", *args])
    after = runner.invoke(app, ["topics", "diff", *args])

    assert before.exit_code == 0, before.output
    assert [line.split("\t")[:2] for line in before.output.splitlines()] == [
        ["create", t.name] for t in names
    ]
    assert applied.exit_code == 0, applied.output
    assert f"applied: {len(names)} created, 0 repartitioned" in applied.output
    assert after.output.strip() == f"{len(names)} topics in sync"


def test_cli_apply_works_from_any_directory_with_the_packaged_file(
    settings: KafkaSettings, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no topics/ here: the declarations come from the package
    names = parse_topics(PACKAGED_TOPICS_FILE.read_text()).with_prefix(settings.topic_prefix)

    applied = CliRunner().invoke(
        app, ["topics", "apply", "-b", kafka_bootstrap, "--prefix", settings.topic_prefix]
    )

    assert applied.exit_code == 0, applied.output
    assert f"applied: {len(names)} created, 0 repartitioned" in applied.output
