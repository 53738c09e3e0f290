"""Fixtures shared by the whole suite: a Kafka broker for tests that need one, unique names.

A test that takes ``kafka_bootstrap`` (directly or through ``topic_factory``) is marked ``kafka``
automatically, so ``pytest -m kafka`` selects every broker test and ``-m "not kafka"`` none.
The broker starts once per session, on first use; see ``tests/kafka_fixtures.py`` for which one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Protocol

import pytest

from tests.kafka_fixtures import create_topics, provide_broker
from tests.kafka_fixtures import unique_name as make_unique_name

# The session ``jaeger`` fixture (a real Jaeger on free ports) and its ``jaeger`` marker; the
# dbt executor's ``dbt_python`` (a venv of its own) and ``shop_project``; ``airflow`` (opt-in).
pytest_plugins = ["tests.jaeger_fixtures", "tests.executor_fixtures", "tests.airflow_fixtures"]


class TopicFactory(Protocol):
    """``await topic_factory("orders", partitions=3)``: creates a fresh topic, returns its name."""

    def __call__(
        self, prefix: str = "topic", *, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> Awaitable[str]: ...


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka broker that lives for the whole session."""
    with provide_broker(tmp_path_factory.mktemp("broker")) as bootstrap:
        yield bootstrap


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """``unique_name("orders")``: a topic or group name no other test (or call) uses."""

    def make(prefix: str) -> str:
        return make_unique_name(prefix, request.node.name)

    return make


@pytest.fixture
def topic_factory(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> TopicFactory:
    """Creates topics with unique names on the session broker."""

    async def create(
        prefix: str = "topic", *, partitions: int = 1, config: Mapping[str, str] | None = None
    ) -> str:
        name = unique_name(prefix)
        await create_topics(kafka_bootstrap, [name], partitions=partitions, config=config)
        return name

    return create
